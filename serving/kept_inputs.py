"""Kept inputs: the images of a deployment's last N predictions, when asked (off by default).

    KeptInputs(settings_file, folder).keep(conn, prediction_id, image_sha256, image)

`settings_file` (JSON `{"keep": N, "cap_bytes": C}`) is written by dlptui (`dlptui deployment keep-inputs`,
`deploy --keep-inputs`); while it is absent, unreadable or says keep 0, nothing is written. It is looked at (one
stat) on every answered request, so a change takes effect at the next prediction without a restart.

An image is one file `folder/<sha256 of its bytes>` (0600, in a 0700 folder inside the 0700 home), written once
however often it is sent (written beside, then renamed: whole or not at all), and one row of the prediction log's
`inputs` table: its sha256, size and `last_id`, the newest prediction that sent it. A prediction row names its
image by `image_sha256`, so the log row is the reference. What is kept: the most recent N distinct images whose
total stays under the cap and whose prediction the log still holds (its retention); the rest is deleted in the
same step, under the log's write lock (BEGIN IMMEDIATE), so two serving processes never keep or delete the same
file half. `prune` is what dlptui calls when the settings change (turned off: everything goes).

No dlptui import here: this module runs inside the model server (locally), and dlptui loads it by its path.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    sha256 TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL,
    last_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inputs_last ON inputs (last_id);
"""
DEFAULT_CAP_BYTES = 256 * 1024 * 1024


def read_settings(path: str) -> tuple[int, int]:
    """(keep, cap_bytes) of a settings file; (0, cap) when there is none or it cannot be read (keeping off)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        keep = int(data.get("keep") or 0)
        cap = int(data.get("cap_bytes") or DEFAULT_CAP_BYTES)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0, DEFAULT_CAP_BYTES
    return max(0, keep), max(0, cap)


def private_folder(folder: str) -> None:
    """`folder` made 0700 (chmod: a model server's umask is 0177, for its sockets)."""
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o700)


def write_file(folder: str, sha256: str, data: bytes) -> None:
    """`folder/sha256` holding `data`, 0600, whole or not at all; nothing when it is there already."""
    target = os.path.join(folder, sha256)
    if os.path.exists(target):
        return
    private_folder(folder)
    partial = os.path.join(folder, f".{sha256}.{os.getpid()}.{threading.get_ident()}.part")
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise


def prune(conn: sqlite3.Connection, folder: str, keep: int, cap: int) -> int:
    """Delete what is kept beyond the `keep` newest images, beyond `cap` bytes in all (newest first), or of a
    prediction the log no longer holds; inside the caller's transaction. How many went."""
    ensure_table(conn)
    count, total, oldest = conn.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0), MIN(last_id) FROM inputs").fetchone()
    first = conn.execute("SELECT COALESCE(MIN(id), 0) FROM predictions").fetchone()[0]
    if not count or (count <= keep and total <= cap and oldest >= first):
        return 0
    victims = [row[0] for row in conn.execute(
        "SELECT sha256 FROM (SELECT sha256, last_id, ROW_NUMBER() OVER (ORDER BY last_id DESC) AS n,"
        " SUM(bytes) OVER (ORDER BY last_id DESC ROWS UNBOUNDED PRECEDING) AS total FROM inputs)"
        " WHERE n > ? OR total > ? OR last_id < ?", (int(keep), int(cap), int(first)))]
    for start in range(0, len(victims), 500):
        chunk = victims[start:start + 500]
        conn.execute(f"DELETE FROM inputs WHERE sha256 IN ({', '.join('?' * len(chunk))})", chunk)
    for sha256 in victims:
        try:
            os.unlink(os.path.join(folder, sha256))
        except FileNotFoundError:
            pass
    return len(victims)


def ensure_table(conn: sqlite3.Connection) -> None:
    """The `inputs` table, made statement by statement (executescript would end the caller's transaction)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inputs'").fetchone() is None:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)


class KeptInputs:
    def __init__(self, settings_file: str, folder: str) -> None:
        self.settings_file = settings_file
        self.folder = folder
        self._seen: tuple | None = None
        self._settings = (0, DEFAULT_CAP_BYTES)

    def settings(self) -> tuple[int, int]:
        """(keep, cap_bytes), read again only when the file changed (one stat per call)."""
        try:
            info = os.stat(self.settings_file)
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None
        if stamp != self._seen:
            self._settings = read_settings(self.settings_file) if stamp else (0, DEFAULT_CAP_BYTES)
            self._seen = stamp
        return self._settings

    def keep(self, conn: sqlite3.Connection, prediction_id: int, sha256: str, image: bytes) -> None:
        """Keep `image` (the bytes of prediction `prediction_id`) when keeping is on, and prune; one transaction."""
        if not self.settings()[0] and self._seen is None:
            return  # never turned on: not even a look at the log
        conn.execute("BEGIN IMMEDIATE")
        try:
            ensure_table(conn)
            keep, cap = self.settings()  # under the write lock: a change dlptui made before it pruned is seen
            if keep and len(image) <= cap:
                write_file(self.folder, sha256, image)
                conn.execute("INSERT INTO inputs (sha256, bytes, last_id) VALUES (?, ?, ?)"
                             " ON CONFLICT(sha256) DO UPDATE SET last_id = excluded.last_id, bytes = excluded.bytes",
                             (sha256, len(image), int(prediction_id)))
            prune(conn, self.folder, keep, cap)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
