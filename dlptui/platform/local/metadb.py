"""The data store's metadata in SQLite (WAL): schema, one connection per thread, read and write transactions.

Writers take the write lock up front (`BEGIN IMMEDIATE`) and wait for it up to a busy timeout,
so two processes writing at once are serialised, never lost. `synchronous=NORMAL` in WAL mode
keeps a commit cheap (no fsync per transaction) and the database consistent after a crash.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dlptui.platform.errors import Conflict

BUSY_TIMEOUT_S = 300.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS repos (
    name TEXT PRIMARY KEY, created REAL NOT NULL, description TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS commits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, repo TEXT NOT NULL,
    branch TEXT NOT NULL, parent TEXT, message TEXT NOT NULL, created REAL NOT NULL,
    size_bytes INTEGER NOT NULL, files INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS commits_repo ON commits (repo, branch);
CREATE TABLE IF NOT EXISTS branches (
    repo TEXT NOT NULL, name TEXT NOT NULL, head INTEGER, PRIMARY KEY (repo, name));
CREATE TABLE IF NOT EXISTS entries (
    commit_seq INTEGER NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (commit_seq, path)) WITHOUT ROWID;
"""


class MetaDB:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
        finally:
            db.close()
        with self.write() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (opening one costs more than most queries), never reused after a fork."""
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            db = self._local.db = self._connect()
            self._local.pid = os.getpid()
            with self._lock:
                self._open.append(db)
        return db

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            db.execute(begin)
        except sqlite3.OperationalError as e:
            raise Conflict(f"The data store at {self.path.parent} is busy or locked ({e}); try again.") from None
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
