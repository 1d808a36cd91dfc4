"""The Dogs-vs-Cats images of one data commit, as a folder and as a torch Dataset.

The folder holds `train/` and `eval/` with `cat.N.jpg` / `dog.N.jpg` (the Kaggle layout), or
a `data.tar.gz` holding them (what the reference example's create-dataset.py wrote). The
label is read from a file's base name, never from its full path.

`fetch` gets the commit that the config's `data` section names:

    data: {store: local, repo: dogs-and-cats, commit: <id or branch>}       # dlptui's embedded store
    data: {store: pachyderm, repo: dogs-and-cats, commit: master, host: ..., port: 30650}
    data: {store: folder, path: /some/folder}                                # a plain folder

The Pachyderm token comes from the environment (PACHD_TOKEN), never from the config.

What the loader opens is bounded: only Pillow's JPEG and PNG parsers (a file named cat.1.jpg that
holds EPS would start Ghostscript under another parser), at most MAX_PIXELS pixels an image; a
file that fails either is skipped, counted and logged (and reported as the validation metric
`skipped_images`), never a crash. A data.tar.gz unpacks to at most MAX_ARCHIVE_BYTES in at most
MAX_MEMBERS members of at most MAX_MEMBER_BYTES each, files and folders only (no link, no absolute
path, no `..`); anything else refuses the whole archive in one sentence and leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import warnings
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from torch.utils.data import Dataset

from settings import SettingsError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FORMATS = ("JPEG", "PNG")  # the only Pillow parsers the loader uses
MAX_PIXELS = 50_000_000  # an image's width x height (Kaggle's photos are under 0.25 million)
MAX_MEMBER_BYTES = 64 << 20  # one file of a data.tar.gz
MAX_ARCHIVE_BYTES = 16 << 30  # all of it (Kaggle's train set is about 0.55 GiB)
MAX_MEMBERS = 1_000_000  # files and folders in it (Kaggle's train set: 25,000)
LABELS = {"cat": 0, "dog": 1}  # index 0 is cat, 1 is dog
SPLITS = ("train", "eval")
MARKER = ".fetched"
SHOWN = 5  # skipped names a log line lists

log = logging.getLogger("dlptui.trial")


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


def unfit(path: Path) -> str | None:
    """Why the loader will not open `path` (not JPEG or PNG, too many pixels, unreadable), or None.
    Only the header is read: the JPEG and PNG parsers alone, so no other parser ever sees the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the cap below says it
            with Image.open(path, formats=FORMATS) as image:
                width, height = image.size
    except UnidentifiedImageError:
        return "not JPEG or PNG"
    except Image.DecompressionBombError:
        return f"over {MAX_PIXELS:,} pixels"
    except (OSError, SyntaxError, ValueError):
        return "unreadable"
    return f"over {MAX_PIXELS:,} pixels" if width * height > MAX_PIXELS else None


def open_rgb(path: Path):
    """The decoded RGB image, through the JPEG and PNG parsers alone, within the pixel cap (checked on the header,
    before anything is decoded)."""
    from PIL import Image

    with Image.open(path, formats=FORMATS) as image:
        if image.size[0] * image.size[1] > MAX_PIXELS:
            raise ValueError(f"over {MAX_PIXELS:,} pixels")
        return image.convert("RGB")


class DogCatImages(Dataset):
    """(image tensor, label) pairs from the files of one split; decoding happens in the loader's workers.

    Files the loader will not open (`unfit`) are left out when the split is listed, counted in
    `skipped` (reason -> names) and logged in one line. A file that passed that check and still fails
    to decode (truncated after its header) is logged and replaced by the next image of the split."""

    def __init__(self, root: Path, split: str, transform: Callable) -> None:
        folder = Path(root) / split
        self.files: list[tuple[Path, int]] = []
        self.skipped: dict[str, list[str]] = {}
        for path, label in labelled_files(folder):
            reason = unfit(path)
            if reason is None:
                self.files.append((path, label))
            else:
                self.skipped.setdefault(reason, []).append(path.name)
        if self.skipped:
            log.warning("Skipped %d of %d files in %s: %s.", self.skipped_count, self.skipped_count + len(self.files),
                        folder, "; ".join(_listed(reason, names) for reason, names in sorted(self.skipped.items())))
        if not self.files:
            raise SettingsError(
                f"The folder {folder} holds no labelled images the loader can open; it needs cat.N.jpg and dog.N.jpg "
                "files (JPEG or PNG)."
            )
        self.transform = transform

    @property
    def skipped_count(self) -> int:
        return sum(len(names) for names in self.skipped.values())

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        for step in range(len(self.files)):
            path, label = self.files[(index + step) % len(self.files)]
            try:
                image = open_rgb(path)
            except Exception as e:  # noqa: BLE001 - any decoder failure is one skipped file, not a dead trial
                log.warning("Skipped %s: it cannot be decoded (%s: %s).", path.name, type(e).__name__, e)
                continue
            return self.transform(image), label
        raise SettingsError(f"No image of {Path(self.files[0][0]).parent} can be decoded; check the data.")


def _listed(reason: str, names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    return f"{len(names)} {reason} ({shown})"


def unpack(root: Path) -> None:
    """Unpack root/data.tar.gz into root when the splits are not there yet, within the caps above.
    The members go to a hidden folder first and move into root only when all of them are in."""
    archive = root / "data.tar.gz"
    if all((root / s).is_dir() for s in SPLITS) or not archive.is_file():
        return
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        try:
            with tarfile.open(archive) as tar:
                _extract_capped(tar, work, archive.name)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise SettingsError(f"The archive {archive} cannot be unpacked ({e}); make it again.") from None
        for entry in sorted(work.iterdir()):
            target = root / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract_capped(tar: tarfile.TarFile, into: Path, name: str) -> None:
    """Every member of `tar` into `into`, one at a time as the stream gives them, or SettingsError at the
    first one that breaks a rule (what was extracted stays in `into`, for the caller to remove)."""
    total = count = 0
    for member in tar:
        count += 1
        path = PurePosixPath(member.name)
        if count > MAX_MEMBERS:
            raise SettingsError(f"The archive {name} holds more than {MAX_MEMBERS:,} files; nothing was unpacked.")
        if path.is_absolute() or ".." in path.parts:
            raise SettingsError(f"The archive {name} has a member {member.name!r} outside its folder; nothing was unpacked.")
        if not (member.isfile() or member.isdir()):
            raise SettingsError(f"The archive {name} has a member {member.name!r} that is a link or a device, not a "
                                "file; nothing was unpacked.")
        total += member.size
        if member.size > MAX_MEMBER_BYTES:
            raise SettingsError(f"The archive {name} has a member {member.name!r} over {MAX_MEMBER_BYTES >> 20} MiB, too "
                                "big for an image; nothing was unpacked.")
        if total > MAX_ARCHIVE_BYTES:
            raise SettingsError(f"The archive {name} unpacks to more than {MAX_ARCHIVE_BYTES >> 30} GiB; nothing was unpacked.")
        tar.extract(member, into, filter="data")  # the data filter again: no mode bits or owners from the archive


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
