"""SQLite for the local parts: one file in WAL mode, a connection per thread, read and write transactions.

WAL lets readers poll while another process writes. Writers take the write lock up front
(`BEGIN IMMEDIATE`) and wait for it up to a busy timeout, so two processes writing at once are
serialised, never lost. `synchronous=NORMAL` in WAL mode keeps a commit cheap (no fsync per
transaction) and the database consistent after a crash. A transaction that cannot start within
the timeout ends in one sentence (Conflict) naming the part.

Opening a connection costs more than most queries, so each thread keeps its own; one is never
used in a process it was not opened in (after a fork), and one whose thread has ended is closed
when the next is opened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from dlptui.errors import Conflict


class Database:
    def __init__(self, path: Path, schema: str, *, busy: str, timeout_s: float, foreign_keys: bool = False) -> None:
        """`busy`: who is busy, with its verb ("The data store at ... is"); `schema`: statements split by ';'."""
        self.path = path
        self._busy = busy
        self._timeout_s = timeout_s
        self._foreign_keys = foreign_keys
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: dict[sqlite3.Connection, tuple[int, threading.Thread]] = {}  # -> (its process, its thread)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")  # a property of the file: it stays
        with self.write() as db:
            for statement in schema.split(";"):
                if statement.strip():
                    db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=NORMAL")
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
            with self._lock:
                for other, (its_pid, thread) in list(self._open.items()):
                    if its_pid == pid and not thread.is_alive():
                        other.close()
                        del self._open[other]
                self._open[db] = (pid, threading.current_thread())
        return db

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            db.execute(begin)
        except sqlite3.OperationalError as e:
            raise Conflict(f"{self._busy} busy or locked ({e}); try again.") from None
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def read(self):
        """A snapshot: every query inside sees the same state."""
        return self._transaction("BEGIN")

    def write(self):
        return self._transaction("BEGIN IMMEDIATE")

    def close(self) -> None:
        with self._lock:
            for db in self._open:
                db.close()
            self._open.clear()
        self._local = threading.local()
