"""Kept inputs of the local deployments: the settings dlptui writes, the images the model servers keep.

    config.home/serving/<name>/keep_inputs.json   {"keep": N, "cap_bytes": C}: absent while keeping is off (the default)
    config.home/serving/<name>/inputs/<sha256>    an image a prediction was sent (0600, the folder 0700)
    predictions.sqlite, table `inputs`            which images are kept, their size and newest prediction

The model server that answers a prediction keeps its image on the request's path (serving/kept_inputs.py: one
file per image, named by its sha256, written once and renamed into place, pruned in the same transaction); this
side writes the settings, prunes at once when they shrink (off: everything goes), says what is held, and reads an
image back for the console and for `replay`, checked against its sha256. The rule of what is kept is the serving
module's own (`prune`), loaded here by its path: one rule, whoever applies it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sqlite3
from pathlib import Path

from dlptui.errors import NotFound, PlatformError
from dlptui.platform import rules
from dlptui.platform.local import backends, prediction_log, processes
from dlptui.platform.local.sqlite import storage_error
from dlptui.platform.model import KeptInputs, LoggedPrediction

LOG = "predictions.sqlite"
_rule = None


def rule():
    """serving/kept_inputs.py, the model server's own module (no dlptui import in it), loaded once by its path."""
    global _rule
    if _rule is None:
        path = backends.serving_dir() / "kept_inputs.py"
        spec = importlib.util.spec_from_file_location("dlptui_serving_kept_inputs", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        _rule = module
    return _rule


def held(folder: Path) -> tuple[int, int]:
    """(images, bytes) in the deployment's inputs folder, as they lie on disk."""
    images = total = 0
    try:
        with os.scandir(folder / backends.INPUTS) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    images += 1
                    total += entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        pass
    return images, total


def settings(folder: Path) -> tuple[int, int]:
    return rule().read_settings(str(folder / backends.KEEP_INPUTS))


def describe(name: str, folder: Path) -> KeptInputs:
    keep, cap = settings(folder)
    images, total = held(folder)
    return KeptInputs(name, keep, cap, images, total)


def apply(name: str, folder: Path, keep: int, cap_bytes: int | None) -> KeptInputs:
    """Write the settings, then prune what they no longer allow under the log's write lock (a model server checks
    the settings under the same lock, so none keeps an image after this by the old ones); off removes it all."""
    keep, cap = rules.check_keep_inputs(keep, cap_bytes)
    settings_file = folder / backends.KEEP_INPUTS
    processes.write_json(settings_file, {"keep": keep, "cap_bytes": cap})
    os.chmod(settings_file, 0o600)
    inputs = folder / backends.INPUTS
    log = folder / LOG
    if log.is_file():
        try:
            conn = sqlite3.connect(log, timeout=10.0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rule().prune(conn, str(inputs), keep, cap)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            broken = storage_error(e, log)
            raise (broken or PlatformError(f"The prediction log of {name} ({log}) is busy ({e}); try again.")) from None
    if keep == 0:
        settings_file.unlink(missing_ok=True)  # off: the model servers do not even look at the log for it
        shutil.rmtree(inputs, ignore_errors=True)  # with whatever a crash left half written
    else:
        rule().private_folder(str(inputs))
    return describe(name, folder)


def read(name: str, folder: Path, prediction_id: int) -> bytes:
    """The image prediction `prediction_id` of deployment `name` was sent, as kept (ports.Serving.kept_input)."""
    logged = prediction_log.get(folder / LOG, name, prediction_id)
    if logged is None:
        raise NotFound(f"Deployment {name!r} has no prediction {prediction_id} in its prediction log; "
                       f"see `dlptui predictions {name}` for the ids.")
    if not logged.image_sha256:
        raise NotFound(f"Prediction {name}#{prediction_id} was not sent as an image file (binData), so no image of it is kept.")
    if not _listed(folder / LOG, logged.image_sha256):
        keep, _ = settings(folder)
        if not keep:
            raise NotFound(f"Deployment {name!r} keeps no inputs; turn keeping on with "
                           f"`dlptui deployment keep-inputs {name} 1000` (predictions from then on are kept).")
        raise NotFound(f"The image of {name}#{prediction_id} is no longer kept ({name} keeps the images of its last "
                       f"{keep} predictions); pick a newer prediction.")
    path = folder / backends.INPUTS / logged.image_sha256
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"The kept image of {name}#{prediction_id} is gone from {path}; predictions from now on are "
                       "kept again.") from None
    except OSError as e:
        raise PlatformError(f"The kept image of {name}#{prediction_id} ({path}) cannot be read ({e.strerror or e}).") from None
    if hashlib.sha256(data).hexdigest() != logged.image_sha256:
        raise PlatformError(f"The kept image of {name}#{prediction_id} ({path}) is damaged (its bytes no longer match "
                            "the sha256 it was kept under); it cannot be shown or replayed.")
    return data


def kept_predictions(name: str, folder: Path, since: float | None, limit: int) -> list[LoggedPrediction]:
    """The last `limit` answered predictions (not a shadow's) after `since` whose image the `inputs` table lists."""
    log = folder / LOG
    if not log.is_file():
        return []
    conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=5.0)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inputs'").fetchone() is None:
            return []
        rows = conn.execute(
            f"{prediction_log._select(conn)} JOIN inputs i ON i.sha256 = p.image_sha256"
            " WHERE p.time > ? AND p.status = 200 AND p.role != 'shadow' ORDER BY p.id DESC LIMIT ?",
            (float(since or 0.0), max(0, int(limit)))).fetchall()
    except sqlite3.DatabaseError as e:
        raise storage_error(e, log) or PlatformError(f"The prediction log {log} cannot be read ({e}).") from None
    finally:
        conn.close()
    return [prediction_log._logged(r, name) for r in reversed(rows)]


def _listed(log: Path, sha256: str) -> bool:
    if not log.is_file():
        return False
    conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=5.0)
    try:
        return conn.execute("SELECT 1 FROM inputs WHERE sha256 = ?", (sha256,)).fetchone() is not None
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return False
        raise storage_error(e, log) or PlatformError(f"The prediction log {log} cannot be read ({e}).") from None
    except sqlite3.DatabaseError as e:
        raise storage_error(e, log) or PlatformError(f"The prediction log {log} cannot be read ({e}).") from None
    finally:
        conn.close()


class KeptInputsPart:
    """The Serving port's kept-inputs methods for LocalServing (DeploymentFolders gives _read, _folder, _locked)."""

    def kept_inputs(self, name: str) -> KeptInputs:
        self._read(name)
        return describe(name, self._folder(name))

    def set_keep_inputs(self, name: str, keep: int, cap_bytes: int | None = None) -> KeptInputs:
        rules.check_keep_inputs(keep, cap_bytes)
        with self._locked(name) as folder:
            self._read(name)
            return apply(name, folder, keep, cap_bytes)

    def kept_predictions(self, name: str, since: float | None = None, limit: int = 100_000) -> list[LoggedPrediction]:
        self._read(name)
        return kept_predictions(name, self._folder(name), since, limit)

    def kept_input(self, name: str, prediction_id: int) -> bytes:
        self._read(name)
        return read(name, self._folder(name), int(prediction_id))
