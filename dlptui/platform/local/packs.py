"""Packs: the small blobs of one put (or one pipeline job) appended to one file, and the index of where each is.

A temp pack lives under the blob store's `tmp/` (named like any temp file of its writer, so a
dead writer's is swept). Publishing renames it to `packs/<id>.pack`, syncs the folder, and
only then records each blob's place (pack, offset, size) in `packs.db`: the index never names
a pack that a crash could lose. The first place recorded for a content wins; a copy packed
meanwhile by another writer is dead bytes until its pack has no indexed blob left, when
`sweep` removes the pack (also one renamed by a publisher that died before it indexed it).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from dlptui.platform.local.durable import fsync_dir, remove
from dlptui.platform.local.sqlite import Database

PACK_LIMIT = 1 << 20  # blobs up to this size go into packs
SCHEMA = """
CREATE TABLE IF NOT EXISTS packed (
    hash TEXT PRIMARY KEY,
    pack TEXT NOT NULL,
    offset INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS packed_pack ON packed (pack)
"""


class Pack:
    """A temp pack that one put (or one pipeline job) appends its small blobs to; thread-safe."""

    def __init__(self, tmp: str) -> None:
        self.id = uuid.uuid4().hex
        self.tmp = tmp
        self.fd: int | None = None
        self.size = 0
        self.places: dict[str, tuple[int, int]] = {}  # hash -> (offset, size): the same content is written once
        self.lock = threading.Lock()
        self.done = False  # published or discarded

    def append(self, digest: str, data: bytes) -> int:
        with self.lock:
            if digest in self.places:
                return self.places[digest][0]
            if self.fd is None:
                self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            offset, view = self.size, memoryview(data)
            while view:
                view = view[os.pwrite(self.fd, view, self.size):]
                self.size = offset + len(data) - len(view)
            self.places[digest] = (offset, len(data))
            return offset

    def close(self) -> None:
        with self.lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


class PackIndex:
    """The packs folder of a blob store and `packs.db`, where each packed blob is."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "packs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = Database(root / "packs.db", SCHEMA, busy=f"The blob index at {root} is", timeout_s=30.0)

    def close(self) -> None:
        self.db.close()

    def read(self):
        return self.db.read()

    def known(self, digests: Sequence[str]) -> dict[str, int]:
        """hash -> size of the packed blobs among `digests`."""
        found: dict[str, int] = {}
        with self.db.read() as db:
            for start in range(0, len(digests), 500):
                chunk = list(digests[start:start + 500])
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT hash, size FROM packed WHERE hash IN ({marks})", chunk).fetchall())
        return found

    def place(self, digest: str) -> tuple[str, int, int] | None:
        """(pack file, offset, size) of a packed blob."""
        with self.db.read() as db:
            row = db.execute("SELECT pack, offset, size FROM packed WHERE hash = ?", (digest,)).fetchone()
        return (f"{self.folder}/{row[0]}.pack", row[1], row[2]) if row else None

    def publish(self, packs: list[Pack]) -> int:
        """Rename the (synced) temp packs into place, then index their blobs. Returns the new bytes."""
        rows = []
        for pack in packs:
            pack.done = True
            if pack.places:  # (an empty file is a place too)
                os.replace(pack.tmp, f"{self.folder}/{pack.id}.pack")
                rows += [(digest, pack.id, offset, size) for digest, (offset, size) in pack.places.items()]
        if not rows:
            return 0
        fsync_dir(str(self.folder))  # the renames durable before the index names the packs
        new_bytes = 0
        with self.db.write() as db:  # a blob another writer packed meanwhile keeps its first place
            for row in rows:
                new_bytes += row[3] if db.execute(
                    "INSERT OR IGNORE INTO packed (hash, pack, offset, size) VALUES (?, ?, ?, ?)", row).rowcount else 0
        return new_bytes

    def sweep(self, keep: set[str]) -> tuple[int, int]:
        """Forget the packed blobs not in `keep` and remove the packs left with none. Returns (blobs, bytes)."""
        with self.db.write() as db:
            dead = [(h, n) for h, n in db.execute("SELECT hash, size FROM packed") if h not in keep]
            db.executemany("DELETE FROM packed WHERE hash = ?", [(h,) for h, _ in dead])
            live = {r[0] for r in db.execute("SELECT DISTINCT pack FROM packed")}
        for name in os.listdir(self.folder):  # also a pack whose publisher died before it was indexed
            if name.endswith(".pack") and name[:-5] not in live:
                remove(self.folder / name)
        return len(dead), sum(n for _, n in dead)
