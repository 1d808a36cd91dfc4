"""A model version's drift reference: where it is kept, and the child process that computes it (both profiles).

A reference is what a sample of the version's own training images looks like to the version's model: the
summary the model server keeps of every live request (serving/embedding_summary.py: a projection of the
embedding, the confidence), made by the same functions over the images (serving/reference.py, run here as a
child process with the model server's PYTHONPATH, so that the console never imports torch). It is one .npz
file of numpy arrays (read without pickle) with what it was made from:

    local profile    config.home/registry/references/<model>/<version>-<checkpoint uuid>.npz  (beside the registry)
    cluster profile  config.home/references/<model>/<version>-<checkpoint uuid>.npz           (the console's copy)

The checkpoint is read as a serving pod reads it: a folder in place, or the version's checkpoint storage
(gs://, s3://, a shared_fs folder) with the user's own storage credentials. Which images, and from which
commit, is the caller's (actions/drift.py follows the lineage).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlptui import resources
from dlptui.errors import NotAvailable, NotFound, PlatformError, Unreachable
from dlptui.platform.model import Checkpoint, ModelVersion

COMPUTE_TIMEOUT_S = float(os.environ.get("DLPTUI_REFERENCE_TIMEOUT", "900"))
# what the child may see of this process's environment: no console secret; the storage credentials a
# checkpoint in a bucket is read with (the user's own, as Determined's storage managers take them)
PASSED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
          "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR",
          "DLPTUI_CHECKPOINT_CACHE")
PASSED_PREFIXES = ("LC_", "AWS_", "GOOGLE_", "CLOUDSDK_")


@dataclass(frozen=True)
class StoredReference:
    model: str
    version: int
    checkpoint_uuid: str
    data: str  # "repo@commit" of the images
    images: int  # summarized
    skipped: int  # files of the sample the model server would refuse
    computed: float
    basis: str  # the projection (embedding_summary.basis_of); live summaries of another basis are not compared
    path: str
    embeddings: Any = field(repr=False, compare=False, default=None)  # numpy (n, 32)
    confidences: Any = field(repr=False, compare=False, default=None)  # numpy (n,)
    held_out: Any = field(repr=False, compare=False, default=None)  # numpy (n,) bool: an image the training never saw

    def to_json(self) -> dict:
        return {"model": self.model, "version": self.version, "checkpoint": self.checkpoint_uuid, "data": self.data,
                "images": self.images, "held_out": int(self.held_out.sum()) if self.held_out is not None else 0, "skipped": self.skipped, "computed": self.computed, "basis": self.basis,
                "path": self.path}


def folder(config) -> Path:
    return config.home / ("registry" if config.kind == "local" else "") / "references"


def path_of(config, version: ModelVersion) -> Path:
    uuid = "".join(c for c in version.checkpoint_uuid if c.isalnum() or c in "-_") or "none"
    return folder(config) / version.model / f"{int(version.version)}-{uuid}.npz"


def load(config, version: ModelVersion) -> StoredReference | None:
    """The version's reference, or None when none was computed; one sentence for a file that cannot be read."""
    import numpy as np

    path = path_of(config, version)
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            embeddings, confidences = stored["embeddings"].astype(float), stored["confidences"].astype(float)
            held_out = stored["held_out"].astype(bool) if "held_out" in stored.files else np.zeros(len(confidences), bool)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as e:
        raise PlatformError(f"The drift reference of {version} ({path}) cannot be read ({type(e).__name__}); "
                            f"compute it again with `dlptui drift {version} --reference`.") from None
    return StoredReference(model=version.model, version=version.version, checkpoint_uuid=version.checkpoint_uuid,
                           data=meta.get("data", ""), images=len(confidences), skipped=int(meta.get("skipped", 0)),
                           computed=float(meta.get("computed", 0.0)), basis=meta.get("basis", ""), path=str(path),
                           embeddings=embeddings, confidences=confidences, held_out=held_out)


def _checkpoint_args(version: ModelVersion, checkpoint: Checkpoint | None) -> list[str]:
    """Where the child reads the checkpoint: as the model server is told (a folder, or the storage's place)."""
    storage = version.checkpoint_storage
    if storage is not None:
        args = ["--checkpoint-uri", storage.url]
        return args + (["--storage-endpoint", storage.endpoint_url] if storage.endpoint_url else [])
    location = version.checkpoint_location or (checkpoint.location if checkpoint else "")
    if location and Path(location).is_dir():
        return ["--checkpoint-dir", str(Path(location).resolve())]
    raise NotFound(f"The checkpoint of {version} is not on this machine ({location or 'no location'}), so its drift "
                   "reference cannot be computed; register a version whose checkpoint exists.")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in PASSED or k.startswith(PASSED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join([str(resources.serving_dir()), str(resources.trial_dir())])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def compute(config, version: ModelVersion, checkpoint: Checkpoint | None, images: Mapping[str, bytes], data: str,
            held_out: Collection[str] = ()) -> StoredReference:
    """Summarize `images` (path -> bytes, of the commit `data`; `held_out`: those the training never saw) with the
    version's model and keep them as its reference."""
    import numpy as np

    if config.read_only:
        from dlptui.errors import ReadOnlyError

        raise ReadOnlyError("dlptui runs read-only (--read-only or DLPTUI_READ_ONLY), and computing a drift reference "
                            "writes one; run it without --read-only.")
    if importlib.util.find_spec("torch") is None:
        raise NotAvailable("Computing a drift reference runs the model, which needs torch: install dlptui with its local "
                           "extra, pip install 'dlptui[local]'.")
    args = _checkpoint_args(version, checkpoint)
    target = path_of(config, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reference-", dir=target.parent) as scratch:
        sample = Path(scratch) / "images"
        sample.mkdir()
        paths = sorted(images)
        for i, name in enumerate(paths):
            (sample / f"{i:05d}-{Path(name).name}").write_bytes(images[name])
        out = Path(scratch) / "reference.npz"
        argv = [sys.executable, str(resources.serving_dir() / "reference.py"), *args, "--images", str(sample), "--out", str(out)]
        try:
            done = subprocess.run(argv, env=_child_env(), cwd=scratch, capture_output=True, text=True,
                                  timeout=COMPUTE_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise Unreachable(f"Computing the drift reference of {version} took over {COMPUTE_TIMEOUT_S:.0f} s; "
                              "try again on a quieter machine (DLPTUI_REFERENCE_TIMEOUT sets the limit).") from None
        if done.returncode != 0 or not out.is_file():
            said = next((line for line in reversed(done.stderr.splitlines()) if line.startswith("the reference")), "")
            reason = said or (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise PlatformError(f"The drift reference of {version} could not be computed: {reason.rstrip('.')[:300]}.")
        counts = json.loads(done.stdout.strip().splitlines()[-1])
        with np.load(out, allow_pickle=False) as made:
            arrays = {k: made[k] for k in ("embeddings", "confidences", "names", "basis")}
        arrays["held_out"] = np.array([paths[int(str(n)[:5])] in set(held_out) for n in arrays["names"]], dtype=bool)
        meta = {"model": version.model, "version": version.version, "checkpoint": version.checkpoint_uuid, "data": data,
                "skipped": int(counts.get("skipped", 0)), "computed": time.time(), "basis": str(arrays["basis"])}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, meta=np.array(json.dumps(meta)))
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_bytes(buffer.getvalue())
        os.replace(partial, target)
    stored = load(config, version)
    assert stored is not None
    return stored


# --- in the background, when a version is deployed (local profile) ----------------------------------------------


def _marker(config, version: ModelVersion) -> Path:
    return path_of(config, version).with_suffix(".computing")


def computing(config, version: ModelVersion) -> bool:
    """Whether a background computation of the version's reference runs now (local profile)."""
    if config.kind != "local":
        return False
    from dlptui.platform.local import processes

    try:
        record = processes.ProcessRecord.from_json(json.loads(_marker(config, version).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return processes.alive(record)  # an exited child of this process is reaped, not taken for a live one


def start_background(config, version: ModelVersion) -> bool:
    """Compute the version's reference in a detached `dlptui drift MODEL@VERSION --reference` (its log beside the
    reference file), unless one is kept or being computed; local profile only. Whether one was started."""
    if config.kind != "local" or config.read_only or load(config, version) is not None or computing(config, version):
        return False
    from dlptui.platform.local import processes  # the local profile's way of starting a recorded child

    marker = _marker(config, version)
    marker.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "dlptui", "--profile", config.profile, "drift", f"{version.model}@{version.version}",
            "--reference"]
    extra = {k: os.environ[k] for k in ("DLPTUI_CONFIG", "DLPTUI_REFERENCE_TIMEOUT") if k in os.environ}
    record = processes.spawn(argv, marker.with_suffix(".log"), cwd=marker.parent, env=processes.child_env(extra), part="drift",
                             home=config.home)
    processes.write_json(marker, record.to_json())
    return True
