"""The Dogs-vs-Cats images of one data commit, as a folder and as a torch Dataset.

The folder holds `train/` and `eval/` with `cat.N.jpg` / `dog.N.jpg` (the Kaggle layout), or
a `data.tar.gz` holding them (what the reference example's create-dataset.py wrote). The
label is read from a file's base name, never from its full path.

`fetch` gets the commit that the config's `data` section names:

    data: {store: local, repo: dogs-and-cats, commit: <id or branch>}       # dlptui's embedded store
    data: {store: pachyderm, repo: dogs-and-cats, commit: master, host: ..., port: 30650}
    data: {store: folder, path: /some/folder}                                # a plain folder

The Pachyderm token comes from the environment (PACHD_TOKEN), never from the config.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from settings import SettingsError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LABELS = {"cat": 0, "dog": 1}  # index 0 is cat, 1 is dog
SPLITS = ("train", "eval")
MARKER = ".fetched"


def label_of(name: str) -> int | None:
    """0 for cat.N.jpg, 1 for dog.N.jpg, None for anything else; only the base name counts."""
    base = os.path.basename(name).lower()
    if not base.endswith(IMAGE_SUFFIXES):
        return None
    return LABELS.get(base.split(".", 1)[0])


def labelled_files(folder: Path) -> list[tuple[Path, int]]:
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        label = label_of(path.name)
        if label is not None and path.is_file():
            found.append((path, label))
    return found


class DogCatImages(Dataset):
    """(image tensor, label) pairs from the files of one split; decoding happens in the loader's workers."""

    def __init__(self, root: Path, split: str, transform: Callable) -> None:
        self.files = labelled_files(Path(root) / split)
        if not self.files:
            raise SettingsError(
                f"The folder {Path(root) / split} holds no labelled images; it needs cat.N.jpg and dog.N.jpg files."
            )
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        from PIL import Image

        path, label = self.files[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


def unpack(root: Path) -> None:
    """Unpack root/data.tar.gz into root when the splits are not there yet."""
    archive = root / "data.tar.gz"
    if all((root / s).is_dir() for s in SPLITS) or not archive.is_file():
        return
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")  # refuses absolute paths, '..' and links out of root


def fetch(data: dict[str, Any], dest: Path | None = None) -> Path:
    """A folder with train/ and eval/ for the data the config names; a complete earlier fetch is reused."""
    store = data["store"]
    if store == "folder":
        root = Path(data["path"]).expanduser()
        if not root.is_dir():
            raise SettingsError(f"The data folder {root} does not exist; check data.path in the config.")
        unpack(root)
    else:
        dest = Path(data.get("dir") or dest or tempfile.mkdtemp(prefix="dogcat-data-"))
        root = _fetch_local(data, dest) if store == "local" else _fetch_pachyderm(data, dest)
    for split in SPLITS:
        if not labelled_files(root / split):
            raise SettingsError(f"The data has no labelled images in {split}/; it needs cat.N.jpg and dog.N.jpg files there.")
    return root


def _fetch_local(data: dict[str, Any], dest: Path) -> Path:
    """The commit from dlptui's embedded store (DLPTUI_HOME, or data.home), through dlptui's own materialize."""
    from dlptui.config import load_config
    from dlptui.platform import Platform
    from dlptui.actions.datasets import materialize

    if data.get("home"):
        os.environ["DLPTUI_HOME"] = str(data["home"])
    platform = Platform(load_config(profile="local"))
    try:
        ref = platform.data.resolve(data["repo"], data.get("commit") or "master")
        return materialize(platform.data, ref, dest)
    finally:
        platform.close()


def _fetch_pachyderm(data: dict[str, Any], dest: Path) -> Path:
    """Every file of the commit from pachd, in dest (written aside, then renamed; reused when complete)."""
    key = f"{data['repo']}@{data.get('commit') or 'master'}"
    marker = dest / MARKER
    if marker.is_file() and marker.read_text() == key:
        return dest
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _download_pachyderm(data, partial)
    unpack(partial)
    marker = partial / MARKER
    marker.write_text(key)
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    return dest


def pachd_target(data: dict[str, Any], env) -> tuple[str, int, bool]:
    """(host, port, TLS) of pachd: the config's host/port/tls, else PACHD_ADDRESS, whose grpcs:// (or
    https://) scheme means TLS, so the token never crosses the network in clear when the address says so."""
    if data.get("host"):
        return str(data["host"]), int(data.get("port") or 30650), bool(data.get("tls", False))
    address = env.get("PACHD_ADDRESS", "")
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "grpc", address
    host, _, port = rest.partition(":")
    return host or "localhost", int(port or 30650), scheme in ("grpcs", "https")


def _download_pachyderm(data: dict[str, Any], dest: Path) -> None:
    """Every file of the commit from pachd, written below dest (never outside it)."""
    import python_pachyderm
    from python_pachyderm.proto.v2.pfs import pfs_pb2

    host, port, tls = pachd_target(data, os.environ)
    client = python_pachyderm.Client(host=host, port=port, auth_token=os.environ.get("PACHD_TOKEN") or None, tls=tls)
    commit = (data["repo"], data.get("commit") or "master")
    top = dest.resolve()
    for info in client.walk_file(commit, "/"):
        target = (dest / info.file.path.lstrip("/")).resolve()
        if not target.is_relative_to(top):
            raise SettingsError(f"The Pachyderm file {info.file.path!r} would land outside {dest}; refusing it.")
        if info.file_type == pfs_pb2.FileType.DIR:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            shutil.copyfileobj(client.get_file(commit, info.file.path), out)
