"""The data store's metadata in SQLite: its schema and busy timeout.

A commit's `error` is empty for data; a pipeline job that failed records its reason there (data_rules.py).

`sqlite.py` opens it: WAL, a connection per thread, writers serialised by `BEGIN IMMEDIATE`
(two processes writing at once wait for each other, nothing is lost), consistent after a crash.
"""

from __future__ import annotations

from pathlib import Path

from dlptui.platform.local.sqlite import Database

BUSY_TIMEOUT_S = 300.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS repos (
    name TEXT PRIMARY KEY, created REAL NOT NULL, description TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS commits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, repo TEXT NOT NULL,
    branch TEXT NOT NULL, parent TEXT, message TEXT NOT NULL, created REAL NOT NULL,
    size_bytes INTEGER NOT NULL, files INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS commits_repo ON commits (repo, branch);
CREATE TABLE IF NOT EXISTS branches (
    repo TEXT NOT NULL, name TEXT NOT NULL, head INTEGER, PRIMARY KEY (repo, name));
CREATE TABLE IF NOT EXISTS entries (
    commit_seq INTEGER NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (commit_seq, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provenance (
    commit_id TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (commit_id, source)) WITHOUT ROWID;
"""


def open_metadb(path: Path) -> Database:
    db = Database(path, SCHEMA, busy=f"The data store at {path.parent} is", timeout_s=BUSY_TIMEOUT_S)
    with db.write() as con:  # a store made before commits had an error (a failed job's output commit)
        if "error" not in {row[1] for row in con.execute("PRAGMA table_info(commits)")}:
            con.execute("ALTER TABLE commits ADD COLUMN error TEXT NOT NULL DEFAULT ''")
    return db
