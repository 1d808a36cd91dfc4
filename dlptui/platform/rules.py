"""The rules both profiles apply: names (repos, branches, models, deployments), paths inside a
data repo and the local files a put sends to them, a canary's share, a feedback item, the one sentence for a full
disk (`disk_full`, `space_checked`). Backend-agnostic (the names are those every backend accepts: a
model name is never digits only, which Determined reads as a model id).

A repo path is absolute inside the repo ("/train/cat.1.jpg"): `clean_path` turns what a
person typed into that form, or refuses it in one sentence (`..`, `.`, an empty segment,
a NUL or other control character) so that no path can escape a folder it is written into.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dlptui.errors import InvalidInput, NotFound, PlatformError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
# pachd's rule for a branch (its ancestry.ValidateName: letters, digits, '_' and '-'), so that a branch made or
# named on one profile is one the other takes; at most 63 characters
BRANCH = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
DEFAULT_BRANCH = "master"  # pachd's default branch: where a put, a pipeline's input and its output go unless told
DEFAULT_CANARY_SHARE = 10  # percent of the requests a new canary takes unless told otherwise, on both profiles
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # what a SeldonDeployment (any Kubernetes object) may be named


def check_deployment_name(name: str, what: str = "deployment name") -> str:
    """A new deployment's name by the cluster's rule, so that a name used locally works on Kubernetes too."""
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        raise InvalidInput(
            f"The {what} {name!r} is not valid: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit."
        )
    return name


def check_canary_traffic(traffic: int) -> int:
    """A canary takes 1 to 99 percent: 0 is no canary (remove it), 100 is a switch of the primary."""
    if isinstance(traffic, bool) or not isinstance(traffic, int) or not 0 < traffic < 100:
        raise InvalidInput(f"A canary takes between 1 and 99 percent of the traffic, not {traffic!r}.")
    return traffic


KEEP_INPUTS_CAP_BYTES = 256 * 1024 * 1024  # what a deployment's kept inputs take at most unless told otherwise
KEEP_INPUTS_MAX = 1_000_000  # no more images than a prediction log keeps rows


def check_keep_inputs(keep: int, cap_bytes: int | None) -> tuple[int, int]:
    """(keep, cap_bytes): the images of the last 0 (off) to KEEP_INPUTS_MAX predictions, under a cap of at least 1 MiB."""
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= KEEP_INPUTS_MAX:
        raise InvalidInput(f"Keep the inputs of 0 (off) to {KEEP_INPUTS_MAX:,} predictions, not {keep!r}.")
    cap = KEEP_INPUTS_CAP_BYTES if cap_bytes is None else cap_bytes
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1024 * 1024:
        raise InvalidInput(f"The cap of the kept inputs must be at least 1 MiB, not {cap_bytes!r} bytes.")
    return keep, cap


def check_feedback(deployment: str, prediction: str, label: str | None, reward: float | None) -> None:
    """A feedback item says something: a label (not blank) and/or a finite reward (Seldon's message is JSON)."""
    import math

    if label is None and reward is None:
        raise InvalidInput(f"Feedback for {deployment}#{prediction} gives neither a label nor a reward.")
    if label is not None and not str(label).strip():
        raise InvalidInput(f"Feedback for {deployment}#{prediction} gives an empty label.")
    if reward is not None and (isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward)):
        raise InvalidInput(f"The reward for {deployment}#{prediction} must be a finite number, not {reward!r}.")


def check_repo_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            f"{name!r} is not a valid repo name; use letters, digits, '-' and '_' (at most 63 characters)."
        )
    return name


def check_model_name(name: str) -> str:
    """A model name both registries accept. Determined reads a model identifier of digits only as a model's id
    and refuses such names (api_model.go), so no profile takes one: `1` would name another model."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(f"{name!r} is not a valid model name; use letters, digits, '-' and '_'.")
    if name.isdigit():
        raise InvalidInput(f"{name!r} is not a valid model name: a name of digits only reads as a model id; add a letter.")
    return name


def check_branch_name(name: str) -> str:
    """A branch name as pachd takes it, on both profiles (a pipeline's output branch `v1.0` would be refused by
    pachd, and so it is here, before anything is created)."""
    if not isinstance(name, str) or not BRANCH.match(name):
        raise InvalidInput(f"{name!r} is not a valid branch name; use letters, digits, '-' and '_' (at most 63).")
    return name


def clean_path(path: str, folder: bool = False) -> str:
    """`path` as "/a/b", or InvalidInput. The root "/" is allowed only when `folder` is true."""
    if not isinstance(path, str):
        raise InvalidInput(f"The path {path!r} is not text.")
    if "\x00" in path:
        raise InvalidInput(f"The path {path!r} holds a NUL character; remove it.")
    if _CONTROL.search(path):
        raise InvalidInput(f"The path {path!r} holds a control character; remove it.")
    body = path[1:] if path.startswith("/") else path
    if folder:
        body = body.rstrip("/") if body.strip("/") else ""
        if body == "":
            return "/"
    if body == "":
        raise InvalidInput("The path is empty; give a file path such as /train/cat.1.jpg.")
    parts = body.split("/")
    for part in parts:
        if part == "":
            raise InvalidInput(f"The path {path!r} has an empty segment ('//' or a trailing '/'); remove it.")
        if part in (".", ".."):
            raise InvalidInput(f"The path {path!r} uses {part!r}; give a plain path inside the repo, without '.' or '..'.")
    return "/" + "/".join(parts)


def join(folder: str, *names: str) -> str:
    """A clean repo path of `names` below the clean folder `folder`."""
    return clean_path("/".join([folder.rstrip("/"), *names]))


def local_target(root: Path, repo_path: str) -> Path:
    """Where the repo path lands below the local folder `root`; never outside it."""
    clean = clean_path(repo_path)
    target = (root / clean.lstrip("/")).resolve()
    if not target.is_relative_to(root.resolve()):
        raise InvalidInput(f"The path {repo_path!r} would be written outside {root}; refusing.")
    return target


class Collected(dict):
    """What `collect` found: clean repo paths -> local files (no folders), so a store need not look again."""


def collect(sources: Iterable[Path], dest: str = "/") -> Collected:
    """The repo paths of local files and folders put below `dest`, like `cp -r SOURCES DEST`.

    A file lands at DEST/<its name>; a folder's files at DEST/<folder name>/<path inside it>, a
    folder's files before its subfolders', by name. A link inside a folder that resolves outside
    that folder is refused (a `cat.1.jpg -> ~/.ssh/id_rsa` must not land in a shared repo); a
    link to a folder is not followed; a file named on its own is taken as named. One `scandir`
    per folder and no stat per file (at 25,000 files the walk cost more than the copies).
    """
    folder = clean_path(dest, folder=True)
    files = Collected()
    for source in sources:
        source = Path(source).expanduser()
        if not source.exists():
            raise NotFound(f"There is no file or folder {source} on this machine; check the path.")
        if source.is_file():
            files[join(folder, source.name)] = source
            continue
        files.update(files_below(source, join(folder, source.resolve().name or "root")))
    if not files:
        raise InvalidInput("There are no files to put in " + ", ".join(str(s) for s in sources) + ".")
    return files


def files_below(source: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """(repo path, local file) of every file below the folder `source`, its repo path below `prefix`: the one walk of
    a folder that both profiles' puts take. A folder's files before its subfolders', by name; a link to a folder is
    not followed; a link that resolves outside `source` is refused in one sentence. One `scandir` per folder and
    no stat per file (at 25,000 files the walk cost more than the copies)."""

    def walk(path: str, prefix: str) -> Iterator[tuple[str, Path]]:
        with os.scandir(path) as found:
            entries = sorted(found, key=lambda e: e.name)
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) and entry.is_file():
                if entry.is_symlink():
                    check_inside(Path(entry.path), source)
                yield join(prefix, entry.name), Path(entry.path)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from walk(entry.path, join(prefix, entry.name))

    yield from walk(str(source), prefix)


def check_inside(path: Path, tree: Path) -> Path:
    """`path` (found below `tree` by a walk that does not follow folder links), refused in one
    sentence when it is a link to something outside `tree`."""
    if path.is_symlink():
        target, root = path.resolve(), tree.resolve()
        if root != target and root not in target.parents:
            raise InvalidInput(
                f"{path} is a link to {target}, outside {tree}; nothing was put: remove the link or copy the file in."
            )
    return path


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no room on the disk, over a quota, over a file-size limit


def disk_full(folder: Path) -> PlatformError:
    """What to say when a write finds no room: every writer removes what it half-wrote before this is raised."""
    return PlatformError(f"The disk holding {folder} is full; free some space there and try again (nothing was half-written).")


@contextmanager
def space_checked(folder: Path) -> Iterator[None]:
    """A write inside that finds the disk full (or a quota, or a file-size limit) ends in `disk_full(folder)`."""
    try:
        yield
    except OSError as e:
        if e.errno in NO_SPACE:
            raise disk_full(folder) from None
        raise
