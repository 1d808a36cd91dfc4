"""The prediction log a model server writes: one row per prediction, in SQLite, bounded.

    PredictionLog(path, keep=100_000).record(...)

Every serving process (gunicorn workers, one server per version) opens the same file: SQLite
in WAL mode takes one writer at a time and waits for the lock (busy timeout), so concurrent
workers never lose a row to each other. A row is committed before the answer leaves the
server. Every PRUNE_EVERY rows a writer deletes what is older than the last `keep`.

The schema is the contract with dlptui's reader (`dlptui/platform/local/prediction_log.py`).
`embedding`, `confidence` and `basis` are the request's summary (embedding_summary.py: a projection
of the model's embedding, 128 bytes, and its confidence; never the image), NULL for a failed request;
a log written before they existed gets them added (SUMMARY_COLUMNS) when a server opens it.
`puid` is the Seldon `meta.puid` the client sent with the request (NULL when it sent none) and
`image_sha256` the sha256 of the image's own bytes (a `binData` request's decoded JPEG or PNG; NULL for
an image sent as numbers): what ground-truth feedback names a prediction by, besides its `id`.

Ground truth comes back in the `feedback` table, one row per prediction it answers (`record_feedback`):
the true label (`truth`) and/or a `reward`, with the time; a second feedback for the same prediction
replaces the first. Feedback goes with its prediction when the log is pruned.
No dlptui import here: this module runs inside the model server (locally and in the image).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    role TEXT NOT NULL,
    request_id TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    input_bytes INTEGER NOT NULL,
    label TEXT,
    probabilities TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    status INTEGER NOT NULL,
    embedding BLOB,
    confidence REAL,
    basis TEXT,
    puid TEXT,
    image_sha256 TEXT
);
CREATE INDEX IF NOT EXISTS predictions_time ON predictions (time);
CREATE INDEX IF NOT EXISTS predictions_request ON predictions (request_id);
CREATE TABLE IF NOT EXISTS feedback (
    prediction_id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    truth TEXT,
    reward REAL
);
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS predictions_puid ON predictions (puid);
CREATE INDEX IF NOT EXISTS predictions_image ON predictions (image_sha256);
"""
PRUNE_EVERY = 1000
SUMMARY_COLUMNS = (("embedding", "BLOB"), ("confidence", "REAL"), ("basis", "TEXT"), ("puid", "TEXT"), ("image_sha256", "TEXT"))


def connect(path: str, timeout: float = 10.0) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    _use_wal(conn, timeout)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    _add_summary_columns(conn)
    conn.executescript(INDEXES)
    return conn


def _add_summary_columns(conn: sqlite3.Connection) -> None:
    """The summary's columns on a log an older server made (another worker may add them at the same time)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
    for name, kind in SUMMARY_COLUMNS:
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as error:
                if "duplicate column" not in str(error):
                    raise


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """WAL is a property of the file: set once. Switching to it takes an exclusive lock that SQLite
    does not wait for (no busy handler), so a worker opening while another writes tries again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class PredictionLog:
    def __init__(self, path: str, keep: int = 100_000) -> None:
        self.path = path
        self.keep = max(1, int(keep))
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._written = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # a forked worker opens its own
            self._conn = connect(self.path)
            self._pid = os.getpid()
        return self._conn

    def record(self, *, model: str, version: int, role: str, request_id: str, input_sha256: str, input_bytes: int,
               label: str | None, probabilities: dict, latency_ms: float, status: int,
               summary=None, puid: str | None = None, image_sha256: str | None = None) -> int:
        """The new row's id. `summary`: the request's embedding_summary.Summary, or None (a failed request)."""
        embedding, confidence, basis = (summary.embedding or None, summary.confidence, summary.basis or None) if summary else (None, None, None)
        row = (time.time(), model, int(version), role, request_id, input_sha256, int(input_bytes), label,
               json.dumps(probabilities), float(latency_ms), int(status), embedding, confidence, basis, puid or None,
               image_sha256 or None)
        with self._lock:
            conn = self._connection()
            ident = conn.execute(
                "INSERT INTO predictions (time, model, version, role, request_id, input_sha256, input_bytes, label,"
                " probabilities, latency_ms, status, embedding, confidence, basis, puid, image_sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ).lastrowid
            self._written += 1
            if self._written % PRUNE_EVERY == 1 or self.keep < PRUNE_EVERY:
                conn.execute("DELETE FROM predictions WHERE id <= (SELECT MAX(id) FROM predictions) - ?", (self.keep,))
                conn.execute("DELETE FROM feedback WHERE prediction_id < (SELECT MIN(id) FROM predictions)")
            return int(ident)

    @contextlib.contextmanager
    def locked(self):
        """This process's connection to the log, no other thread of it using it meanwhile (kept_inputs.py writes
        its table in a transaction of its own through it)."""
        with self._lock:
            yield self._connection()

    def find(self, *, puid: str = "", image_sha256: str = "") -> tuple[int, dict] | None:
        """The answered prediction feedback names, as (id, its probabilities): by `puid` (the client's meta.puid,
        else the log's own id as text), else the newest answer to the image with that sha256; a shadow's answer
        never (it reached no client). None when the log has no such prediction."""
        answered = "status = 200 AND role != 'shadow'"
        with self._lock:
            conn = self._connection()
            row = None
            if puid:
                row = conn.execute(f"SELECT id, probabilities FROM predictions WHERE puid = ? AND {answered}"
                                   " ORDER BY id DESC LIMIT 1", (puid,)).fetchone()
                if row is None and puid.isdigit():
                    row = conn.execute(f"SELECT id, probabilities FROM predictions WHERE id = ? AND {answered}",
                                       (int(puid),)).fetchone()
            elif image_sha256:
                row = conn.execute(f"SELECT id, probabilities FROM predictions WHERE image_sha256 = ? AND {answered}"
                                   " ORDER BY id DESC LIMIT 1", (image_sha256,)).fetchone()
        return (int(row[0]), json.loads(row[1] or "{}")) if row else None

    def record_feedback(self, prediction_id: int, truth: str | None, reward: float | None) -> None:
        """Ground truth and/or a reward for a logged prediction; a second feedback for it replaces the first."""
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO feedback (prediction_id, time, truth, reward) VALUES (?, ?, ?, ?)",
                (int(prediction_id), time.time(), truth, None if reward is None else float(reward)),
            )
