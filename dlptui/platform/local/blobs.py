"""Content-addressed blobs: each file's bytes stored once, under the sha256 of its content.

A blob is written to a temp file while it is hashed, made durable in a batch (one `syncfs`
for the whole batch where Linux has it, else one `fsync` per file), and only then renamed
to `<root>/<aa>/<rest of the hash>`; the folders that received renames are fsynced once per
batch, before the commit that refers to the blobs. A rename is atomic, so a blob path never
holds a partial file; reading a blob verifies its hash anyway, so a disk that lied is caught
and never passed on as data.

Temp files are named `tmp/<writer>.<n>`; a writer (one per store object and process) holds
an flock on `writers/<writer>` while it lives. Opening a store removes the temp files of
writers whose lock is free (dead), so a killed put leaves nothing behind for long and a live
one (another process, a pipeline job that stages for hours) is never disturbed. Temp files
with no lock file (an older layout) go once older than TMP_GRACE_S.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import itertools
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dlptui.errors import PlatformError

CHUNK = 1 << 20
SMALL = 8 << 20  # files up to this size are read in one go
TMP_GRACE_S = 3600.0  # temp files with no writer lock that are older than this belong to a dead writer


class CorruptBlob(PlatformError):
    """A stored blob whose content no longer matches its hash."""


@dataclass
class Staged:
    """A blob written to a temp file, not yet in place."""

    hash: str
    size: int
    tmp: str | Path | None  # None: the blob was in the store already


def _syncfs(folder: Path) -> bool:
    """Flush the filesystem holding `folder` in one call; False where the OS lacks syncfs."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return fn(fd) == 0
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Writer:
    """This process's claim on its temp files: an flock held on `writers/<id>` as long as the writer lives."""

    def __init__(self, writers: Path) -> None:
        self.pid = os.getpid()
        self.id = f"{self.pid}-{os.urandom(6).hex()}"
        self.path = writers / self.id
        fresh = writers / f".{self.id}"  # locked before it gets its name: a sweep never sees it unlocked
        self.fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.rename(fresh, self.path)
        self.count = itertools.count()
        self._closer = weakref.finalize(self, _release, self.path, self.fd)

    def close(self) -> None:
        self._closer()


def _release(path: Path, fd: int) -> None:
    if os.getpid() == int(path.name.split("-")[0]):  # a forked child leaves its parent's claim alone
        path.unlink(missing_ok=True)
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.writers = root / "writers"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.writers.mkdir(exist_ok=True)
        self._root = str(root)
        self._tmp = str(self.tmp)
        self._writer: _Writer | None = None
        self._writer_lock = threading.Lock()
        present = set(os.listdir(root))
        made = False
        for i in range(256):  # the fan-out folders, made once so that a put never has to
            if f"{i:02x}" not in present:
                os.makedirs(os.path.join(self._root, f"{i:02x}"), exist_ok=True)
                made = True
        if made:
            _fsync_dir(self._root)
        self.sweep_tmp()

    def close(self) -> None:
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def path(self, digest: str) -> Path:
        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        return f"{self._root}/{digest[:2]}/{digest[2:]}"

    def has(self, digest: str, size: int) -> bool:
        try:
            return os.stat(self._file(digest)).st_size == size
        except FileNotFoundError:
            return False

    # --- writing -------------------------------------------------------------

    def stage(self, source: Path | bytes) -> Staged:
        """Hash `source`; copy it to a temp file unless the store holds its content already."""
        if isinstance(source, bytes):
            data = source
        else:
            fd = os.open(source, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                if size > SMALL:
                    return self._stage_large(Path(source))
                data = os.read(fd, size + 1)
                while len(data) <= size and (more := os.read(fd, CHUNK)):  # a file that grew, or a short read
                    data += more
            finally:
                os.close(fd)
        digest = hashlib.sha256(data).hexdigest()
        if self.has(digest, len(data)):
            return Staged(digest, len(data), None)
        tmp = self._tmp_name()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return Staged(digest, len(data), tmp)

    def _stage_large(self, source: Path) -> Staged:
        h = hashlib.sha256()
        tmp = Path(self._tmp_name())
        size = 0
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        digest = h.hexdigest()
        if self.has(digest, size):
            tmp.unlink()
            return Staged(digest, size, None)
        return Staged(digest, size, tmp)

    def _tmp_name(self) -> str:
        writer = self._writer
        if writer is None or writer.pid != os.getpid():
            with self._writer_lock:
                if self._writer is None or self._writer.pid != os.getpid():
                    self._writer = _Writer(self.writers)
                writer = self._writer
        return f"{self._tmp}/{writer.id}.{next(writer.count)}"

    def publish(self, staged: Iterable[Staged]) -> int:
        """Make the staged temp files durable, then move them into place. Returns the new bytes."""
        fresh = [s for s in staged if s.tmp is not None]
        if not fresh:
            return 0
        if not _syncfs(self.tmp):
            for s in fresh:
                fd = os.open(s.tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        new_bytes = 0
        done: set[str] = set()
        for s in fresh:  # the caller holds the write lock: no other writer publishes meanwhile
            if s.hash in done:  # the same content twice in this batch
                os.unlink(s.tmp)
            else:
                os.replace(s.tmp, self._file(s.hash))
                done.add(s.hash)
                new_bytes += s.size
            s.tmp = None
        for sub in sorted({h[:2] for h in done}):  # the renames themselves durable, before the commit names them
            _fsync_dir(f"{self._root}/{sub}")
        return new_bytes

    def discard(self, staged: Iterable[Staged]) -> None:
        for s in staged:
            if s.tmp is not None:
                try:
                    os.unlink(s.tmp)
                except FileNotFoundError:
                    pass
                s.tmp = None

    # --- reading -------------------------------------------------------------

    def read(self, digest: str, label: str) -> bytes:
        """The blob's bytes, verified; `label` names the file in error sentences."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise CorruptBlob(
                f"The stored content of {label} is missing from {self.root}; put the file again."
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptBlob(f"The stored content of {label} is corrupt (its hash does not match); put the file again.")
        return data

    def iter(self, digest: str, label: str, chunk_size: int = CHUNK):
        """The blob's bytes in chunks, hashed on the way: CorruptBlob after the last chunk if they do not match."""
        try:
            f = open(self.path(digest), "rb")
        except FileNotFoundError:
            raise CorruptBlob(f"The stored content of {label} is missing from {self.root}; put the file again.") from None
        h = hashlib.sha256()
        with f:
            while chunk := f.read(chunk_size):
                h.update(chunk)
                yield chunk
        if h.hexdigest() != digest:
            raise CorruptBlob(f"The stored content of {label} is corrupt (its hash does not match); put the file again.")

    def verify(self, digest: str) -> bool:
        try:
            h = hashlib.sha256()
            with open(self.path(digest), "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
            return h.hexdigest() == digest
        except FileNotFoundError:
            return False

    # --- garbage -------------------------------------------------------------

    def sweep(self, keep: set[str]) -> tuple[int, int]:
        """Remove every blob not in `keep`, and stale temp files. Returns (blobs, bytes) removed."""
        removed = freed = 0
        for sub in self.root.iterdir():
            if sub == self.tmp or not sub.is_dir() or len(sub.name) != 2:
                continue
            for blob in sub.iterdir():
                if sub.name + blob.name not in keep:
                    freed += blob.stat().st_size
                    blob.unlink(missing_ok=True)
                    removed += 1
        self.sweep_tmp()
        return removed, freed

    def sweep_tmp(self) -> int:
        """Remove the temp files of dead writers (their lock is free), and lock-less ones older than
        TMP_GRACE_S. A live writer's files stay, however old. Returns the temp files removed."""
        owners: dict[str, list[str]] = {}
        for name in os.listdir(self._tmp):
            owners.setdefault(name.partition(".")[0], []).append(name)
        mine = self._writer.id if self._writer is not None else None
        cutoff = time.time() - TMP_GRACE_S
        removed = 0
        for owner in set(owners) | set(os.listdir(self.writers)):
            if owner == mine:
                continue
            if owner.startswith("."):  # a lock file not yet named (or its writer died right then)
                _remove_if_older(self.writers / owner, cutoff)
                continue
            names = owners.get(owner, [])
            try:
                fd = os.open(self.writers / owner, os.O_RDWR)
            except FileNotFoundError:  # no writer on record: by age
                removed += sum(_remove_if_older(self.tmp / n, cutoff) for n in names)
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # alive
                for n in names:
                    removed += _remove(self.tmp / n)
                (self.writers / owner).unlink(missing_ok=True)
            finally:
                os.close(fd)
        return removed


def _remove(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0


def _remove_if_older(path: Path, cutoff: float) -> int:
    try:
        return _remove(path) if path.stat().st_mtime < cutoff else 0
    except FileNotFoundError:
        return 0
