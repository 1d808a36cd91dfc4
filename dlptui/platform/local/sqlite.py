"""SQLite for the local parts: one file in WAL mode, a connection per thread, read and write transactions.

WAL lets readers poll while another process writes. Writers take the write lock up front
(`BEGIN IMMEDIATE`) and wait for it up to a busy timeout, so two processes writing at once are
serialised, never lost. `synchronous=FULL`: the write-ahead log is synced at every commit, so a
commit or a promotion reported done survives a power cut (NORMAL could undo the last ones). A
transaction that cannot start within the timeout ends in one sentence (Conflict) naming the part.

Opening a connection costs more than most queries, so each thread keeps its own; one is never
used in a process it was not opened in (after a fork), and one whose thread has ended is closed
when the next is opened. `close()` closes a connection only between two transactions (each holds
its connection's lock), so closing the platform while a worker thread reads cannot pull the
connection from under it (SQLite can crash the process then); one still busy after a grace
period is left to the process's exit.

`stamp()` tells whether anything changed: SQLite's `PRAGMA data_version` on a connection of its own that never
writes, so every commit to the file, by any connection of any process, moves it. A poller asks it first and
reads again only when it moved (a poll that finds nothing changed costs one pragma).

This is also the one place where a file SQLite cannot use becomes a sentence (`storage_error`): a
damaged or overwritten file ("file is not a database", "database disk image is malformed"), one that
cannot be opened, a disk I/O error, a full disk. Each is a PlatformError naming the file (or the
folder whose disk is full) and what to do, raised for the opening and for every transaction, so no
store built on `Database` shows an sqlite3 traceback. The prediction log, read by its own
read-only connection, goes through `storage_error` too.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from dlptui.errors import Conflict, PlatformError
from dlptui.platform.rules import NO_SPACE, disk_full

LOW_SPACE = 1 << 20  # free bytes under which a disk I/O error is taken for a full disk


def storage_error(error: BaseException, path: Path) -> PlatformError | None:
    """One sentence naming `path` for an SQLite file that cannot be used (damaged, unopenable, an I/O error,
    a full disk); None for any other error (a lock, a constraint), which the caller handles."""
    text = str(error).lower()
    path = Path(path)
    if isinstance(error, OSError) and error.errno in NO_SPACE:
        return disk_full(Path(error.filename).parent if error.filename else path.parent)
    if not isinstance(error, sqlite3.DatabaseError):
        return None
    if "database or disk is full" in text or ("disk i/o error" in text and _free(path.parent) < LOW_SPACE):
        return disk_full(path.parent)
    if "disk i/o error" in text:
        return PlatformError(f"{path} cannot be read or written (disk I/O error); check the disk under {path.parent} and try again.")
    if "unable to open database file" in text:
        return PlatformError(f"{path} cannot be opened; check that {path.parent} exists and that you can write to it.")
    if "not a database" in text or "malformed" in text or "database corrupt" in text:
        return PlatformError(
            f"{path} is damaged (SQLite: {error}); restore it from a backup, or move it aside so that dlptui starts "
            "an empty one (what it recorded is then lost)."
        )
    return None


def _free(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


class Database:
    def __init__(self, path: Path, schema: str, *, busy: str, timeout_s: float, foreign_keys: bool = False) -> None:
        """`busy`: who is busy, with its verb ("The data store at ... is"); `schema`: statements split by ';'."""
        self.path = path
        self._busy = busy
        self._timeout_s = timeout_s
        self._foreign_keys = foreign_keys
        self._local = threading.local()
        self._lock = threading.Lock()
        # connection -> (its process, its thread, the lock each transaction on it holds)
        self._open: dict[sqlite3.Connection, tuple[int, threading.Thread, threading.Lock]] = {}
        self._stamper: tuple[int, sqlite3.Connection] | None = None  # (its process, the connection stamp() reads)
        self._stamp_lock = threading.Lock()
        try:
            with closing(self._connect()) as db:
                self._use_wal(db)
        except sqlite3.DatabaseError as e:
            raise (storage_error(e, path) or e) from None
        with self.write() as db:
            for statement in schema.split(";"):
                if statement.strip():
                    db.execute(statement)

    def _use_wal(self, db: sqlite3.Connection) -> None:
        """WAL is a property of the file: it stays once set. Switching takes an exclusive lock that
        SQLite does not wait for (no busy handler), so an open racing another process's write
        tries again until the timeout."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if storage_error(error, self.path) is not None:
                    raise
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise Conflict(f"{self._busy} busy: it could not be opened within {self._timeout_s:g} s.") from error
                time.sleep(0.01)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        if self._foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        return db

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, never reused after a fork."""
        db = getattr(self._local, "db", None)
        pid = os.getpid()
        if db is None or self._local.pid != pid:
            db = self._local.db = self._connect()
            self._local.pid = pid
            self._local.lock = threading.Lock()
            with self._lock:
                for other, (its_pid, thread, _) in list(self._open.items()):
                    if its_pid == pid and not thread.is_alive():
                        other.close()
                        del self._open[other]
                self._open[db] = (pid, threading.current_thread(), self._local.lock)
        return db

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        try:
            db = self._connection()
            with self._local.lock:
                try:
                    db.execute(begin)
                except sqlite3.OperationalError as e:
                    if storage_error(e, self.path) is not None:
                        raise
                    raise Conflict(f"{self._busy} busy or locked ({e}); try again.") from None
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:  # a damaged file or a full disk: the first error is the one to tell
                        pass
                    raise
        except (sqlite3.DatabaseError, OSError) as e:
            broken = storage_error(e, self.path)
            if broken is None:
                raise
            raise broken from None

    def stamp(self) -> int:
        """A number that changes whenever a transaction that changed the file commits, from any connection of any
        process (compare two stamps for equality only)."""
        with self._stamp_lock:
            try:
                if self._stamper is None or self._stamper[0] != os.getpid():
                    self._stamper = (os.getpid(), self._connect())
                return int(self._stamper[1].execute("PRAGMA data_version").fetchone()[0])
            except (sqlite3.DatabaseError, OSError) as e:
                raise (storage_error(e, self.path) or e) from None

    def read(self):
        """A snapshot: every query inside sees the same state."""
        return self._transaction("BEGIN")

    def write(self):
        return self._transaction("BEGIN IMMEDIATE")

    def close(self, grace_s: float = 3.0) -> None:
        with self._lock:
            open_now = list(self._open.items())
            self._open.clear()
            self._local = threading.local()  # every thread opens a new connection from here on
        with self._stamp_lock:
            stamper, self._stamper = self._stamper, None
        if stamper is not None and stamper[0] == os.getpid():
            stamper[1].close()
        for db, (pid, _, lock) in open_now:
            if pid != os.getpid():
                continue  # a parent's connection, inherited through a fork: never touched here
            if lock.acquire(timeout=grace_s):
                try:
                    db.close()
                finally:
                    lock.release()
