"""A file of a commit, saved to this machine or looked at: `data get -o` and the console's Data tree share both.

    save(store, repo, ref, path, target)      the file's checked bytes into `target` (a folder: under its name)
    preview(store, repo, ref, entry)          what a person sees of it: an image, its first lines, or its size and hash
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dlptui.errors import InvalidInput
from dlptui.platform.model import FileEntry

PREVIEW_BYTES = 8 << 20  # a file up to this size is read whole (and checked) to be shown; a larger one only described
PREVIEW_LINES = 40
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})  # what the image preview decodes (and the model takes)


def save(store, repo: str, ref: str, path: str, target: Path) -> Path:
    """The file's bytes into `target` (a folder that exists: the file keeps its name in it), written to a temp file
    beside it and renamed only once whole and checked (the store's iterator raises after its last chunk on a corrupt
    file); a full disk or a folder that cannot be written is one sentence, the temp file gone. Returns the path
    written."""
    target = Path(target).expanduser()
    if target.is_dir():
        target = target / PurePosixPath(path).name
    write_checked(store.iter_file(repo, ref, path), target)  # streamed: never whole in memory
    return target


def write_checked(chunks: Iterable[bytes], target: Path) -> None:
    from dlptui.platform.rules import NO_SPACE, disk_full

    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as e:
        raise InvalidInput(f"Cannot write {target} ({e.strerror}); check the folder exists and is writable.") from None
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, target)  # only a whole, checked file takes the name
    except OSError as e:
        if e.errno in NO_SPACE:
            raise disk_full(folder.resolve()) from None
        raise InvalidInput(f"Cannot write {target} ({e.strerror}); check the folder exists and is writable.") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass(frozen=True)
class FilePreview:
    """What the console shows of a file: `kind` is "image" (`data` holds its bytes), "text" (`lines` its first
    lines), or "other" (a binary or large file: its size and hash, `note` says why no more)."""

    path: str
    size_bytes: int
    sha256: str | None
    kind: str
    data: bytes = b""
    lines: tuple[str, ...] = ()
    more: bool = False  # the text goes on past `lines`
    note: str = ""


def preview(store, repo: str, ref: str, entry: FileEntry) -> FilePreview:
    """Read (and check) a file of up to PREVIEW_BYTES and say what it is; a larger one is only described."""
    base = dict(path=entry.path, size_bytes=entry.size_bytes, sha256=entry.hash)
    if entry.size_bytes > PREVIEW_BYTES:
        return FilePreview(**base, kind="other", note=f"too large to preview here (over {PREVIEW_BYTES >> 20} MiB)")
    data = store.get_file(repo, ref, entry.path)  # checked against its hash: a corrupt file is a sentence
    if PurePosixPath(entry.path).suffix.lower() in IMAGE_SUFFIXES:
        return FilePreview(**base, kind="image", data=data)
    if b"\x00" in data[:8192]:
        return FilePreview(**base, kind="other", note="a binary file")
    try:
        words = data.decode("utf-8")
    except UnicodeDecodeError:
        return FilePreview(**base, kind="other", note="not UTF-8 text")
    lines = words.splitlines()
    return FilePreview(**base, kind="text", lines=tuple(lines[:PREVIEW_LINES]), more=len(lines) > PREVIEW_LINES)
