"""Content-addressed blobs: each file's bytes stored once, under the sha256 of its content.

A blob is written to a temp file while it is hashed, made durable in a batch (one `syncfs`
for the whole batch where Linux has it, else one `fsync` per file), and only then renamed
to `<root>/<aa>/<rest of the hash>`; the folders that received renames are fsynced once per
batch, before the commit that refers to the blobs. A rename is atomic, so a blob path never
holds a partial file; reading a blob verifies its hash anyway, so a disk that lied is caught
and never passed on as data.

Small blobs (up to PACK_LIMIT, a photo) are packed: one put (or one pipeline job) appends
them to one temp pack file instead of a file each, and publishing renames the pack to
`packs/<id>.pack` and records each blob's place (pack, offset, size) in `packs.db`, only once
the pack is durable. At 25,000 photos a file per photo cost more than the bytes: the pack is
one file to create, sync and rename. A pack no blob of a commit needs any longer is removed
by `sweep`; one that holds some live blobs stays whole until all of them are gone.

Temp files (and temp packs) are named `tmp/<writer>.<n>`; a writer (one per store object and process) holds
an flock on `writers/<writer>` while it lives. Opening a store removes the temp files of
writers whose lock is free (dead), so a killed put leaves nothing behind for long and a live
one (another process, a pipeline job that stages for hours) is never disturbed. Temp files
with no lock file (an older layout) go once older than TMP_GRACE_S.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dlptui.errors import PlatformError
from dlptui.platform.local.durable import fsync_dir, remove, syncfs
from dlptui.platform.local.packs import PACK_LIMIT, Pack, PackIndex

__all__ = ["CHUNK", "PACK_LIMIT", "BlobStore", "CorruptBlob", "Pack", "Staged"]

CHUNK = 1 << 20
SMALL = 8 << 20  # files up to this size are read in one go
TMP_GRACE_S = 3600.0  # temp files with no writer lock that are older than this belong to a dead writer


class CorruptBlob(PlatformError):
    """A stored blob whose content no longer matches its hash."""


@dataclass
class Staged:
    """A blob written to a temp file or a temp pack, not yet in place."""

    hash: str
    size: int
    tmp: str | Path | None  # a loose blob's temp file; None: in the store already, or packed
    pack: Pack | None = None  # the temp pack that holds it, until published
    offset: int = 0


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
        self.index = PackIndex(root)
        self.packs = self.index.folder
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
            fsync_dir(self._root)
        self.sweep_tmp()

    def close(self) -> None:
        self.index.close()
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def path(self, digest: str) -> Path:
        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        return f"{self._root}/{digest[:2]}/{digest[2:]}"

    def has(self, digest: str, size: int) -> bool:
        return bool(self.index.known([digest]).get(digest) == size) or self._loose_has(digest, size)

    def _loose_has(self, digest: str, size: int) -> bool:
        try:
            return os.stat(self._file(digest)).st_size == size
        except FileNotFoundError:
            return False

    # --- writing -------------------------------------------------------------

    def new_pack(self) -> Pack:
        """A temp pack for the small blobs of one put or one job (created on its first blob)."""
        return Pack(self._tmp_name())

    def stage_many(self, sources: Sequence[Path | bytes], pack: Pack | None = None) -> list[Staged]:
        """`stage` for many sources, asking the pack index once for all of them."""
        read = [self._read_source(s) for s in sources]
        known = self.index.known([d for d, _, _ in read if d is not None])
        return [self._stage_read(s, r, known, pack) for s, r in zip(sources, read)]

    def stage(self, source: Path | bytes, pack: Pack | None = None) -> Staged:
        """Hash `source`; unless the store holds its content already, copy it to `pack` (when small and a
        pack is given) or to a temp file of its own."""
        return self.stage_many([source], pack)[0]

    def _read_source(self, source: Path | bytes) -> tuple[str | None, int, bytes | None]:
        """(hash, size, bytes) of a source read whole; (None, size, None) for a large file, streamed later."""
        if isinstance(source, bytes):
            return hashlib.sha256(source).hexdigest(), len(source), source
        fd = os.open(source, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size > SMALL:
                return None, size, None
            data = os.read(fd, size + 1)
            while len(data) <= size and (more := os.read(fd, CHUNK)):  # a file that grew, or a short read
                data += more
        except OSError as e:
            if e.filename is None:  # a read names no file: say which
                raise type(e)(e.errno, e.strerror, str(source)) from None
            raise
        finally:
            os.close(fd)
        return hashlib.sha256(data).hexdigest(), len(data), data

    def _stage_read(self, source: Path | bytes, read: tuple[str | None, int, bytes | None], known: dict[str, int],
                    pack: Pack | None) -> Staged:
        digest, size, data = read
        if digest is None or data is None:
            return self._stage_large(Path(source))  # type: ignore[arg-type]
        if known.get(digest) == size or self._loose_has(digest, size):
            return Staged(digest, size, None)
        if pack is not None and size <= PACK_LIMIT:
            return Staged(digest, size, None, pack, pack.append(digest, data))
        tmp = self._tmp_name()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:  # a full disk: the half-written temp file goes at once
            os.close(fd)
            remove(Path(tmp))
            raise
        os.close(fd)
        return Staged(digest, len(data), tmp)

    def _stage_large(self, source: Path) -> Staged:
        h = hashlib.sha256()
        tmp = Path(self._tmp_name())
        size = 0
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
        except BaseException:  # a full disk: the half-written temp file goes at once
            remove(tmp)
            raise
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
        """Make the staged temp files and packs durable, then move them into place (a pack's blobs are
        recorded in the index only then). Returns the new bytes."""
        staged = list(staged)
        fresh = [s for s in staged if s.tmp is not None]
        packs = list({id(s.pack): s.pack for s in staged if s.pack is not None and not s.pack.done}.values())
        if not fresh and not packs:
            return 0
        for pack in packs:
            pack.close()
        if not syncfs(self.tmp):
            for name in [s.tmp for s in fresh] + [p.tmp for p in packs if p.places]:
                fd = os.open(name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        new_bytes = self.index.publish(packs)
        for s in staged:
            s.pack = None
        new_bytes += self._publish_loose(fresh)
        return new_bytes

    def _publish_loose(self, fresh: list[Staged]) -> int:
        if not fresh:
            return 0
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
            fsync_dir(f"{self._root}/{sub}")
        return new_bytes

    def discard(self, staged: Iterable[Staged], *packs: Pack) -> None:
        """Remove what was staged and not published: temp files, and the temp packs (of `staged`, and `packs`)."""
        unpublished = list(packs)
        for s in staged:
            if s.tmp is not None:
                remove(Path(s.tmp))
                s.tmp = None
            if s.pack is not None:
                unpublished.append(s.pack)
                s.pack = None
        for pack in unpublished:
            if not pack.done:
                pack.done = True
                pack.close()
                remove(Path(pack.tmp))

    # --- reading -------------------------------------------------------------

    def _chunks(self, digest: str, chunk_size: int = CHUNK):
        """The stored bytes of a blob, loose or packed, in chunks (unverified); FileNotFoundError if absent."""
        try:
            f = open(self._file(digest), "rb")
        except FileNotFoundError:
            place = self.index.place(digest)
            if place is None:
                raise
            pack, offset, size = place
            fd = os.open(pack, os.O_RDONLY)
            try:
                end = offset + size
                while offset < end:
                    chunk = os.pread(fd, min(chunk_size, end - offset), offset)
                    if not chunk:
                        return  # a short pack: the hash check says so
                    offset += len(chunk)
                    yield chunk
            finally:
                os.close(fd)
            return
        with f:
            while chunk := f.read(chunk_size):
                yield chunk

    def read(self, digest: str, label: str) -> bytes:
        """The blob's bytes, verified; `label` names the file in error sentences."""
        return b"".join(self.iter(digest, label))

    def iter(self, digest: str, label: str, chunk_size: int = CHUNK):
        """The blob's bytes in chunks, hashed on the way: CorruptBlob after the last chunk if they do not match."""
        h = hashlib.sha256()
        try:
            for chunk in self._chunks(digest, chunk_size):
                h.update(chunk)
                yield chunk
        except FileNotFoundError:
            raise CorruptBlob(f"The stored content of {label} is missing from {self.root}; put the file again.") from None
        if h.hexdigest() != digest:
            raise CorruptBlob(f"The stored content of {label} is corrupt (its hash does not match); put the file again.")

    def copy_to(self, digest: str, target: Path, label: str = "a file") -> None:
        """Write the blob's verified bytes to the local file `target`."""
        with open(target, "wb") as out:
            for chunk in self.iter(digest, label):
                out.write(chunk)

    def verify(self, digest: str) -> bool:
        try:
            h = hashlib.sha256()
            for chunk in self._chunks(digest):
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
        packed, packed_bytes = self.index.sweep(keep)
        removed += packed
        freed += packed_bytes
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
                    removed += remove(self.tmp / n)
                (self.writers / owner).unlink(missing_ok=True)
            finally:
                os.close(fd)
        return removed


def _remove_if_older(path: Path, cutoff: float) -> int:
    try:
        return remove(path) if path.stat().st_mtime < cutoff else 0
    except FileNotFoundError:
        return 0
