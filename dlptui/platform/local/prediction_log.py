"""Reading a deployment's prediction log (written by the model servers: serving/prediction_log.py).

The schema is that module's; this side only reads. A log that does not exist yet (or has no table
yet) is empty; one SQLite cannot use (overwritten, damaged, on a failing disk) is one sentence naming
it (`sqlite.storage_error`).

`summary` and `agreement` read the last 10,000 predictions; a log is only appended to (and pruned at its old
end), so what they found is kept with the newest id it had, and a poll of a log that got no prediction since
reads that one id and nothing more (the Deployments screen asks every 2 s).
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from dlptui.platform.local.sqlite import storage_error
from dlptui.platform.model import ArmFigures, Disagreement, LoggedPrediction, PredictionSummary

_SEEN: dict[tuple[str, str, int], tuple[tuple, object]] = {}  # (log, what, last) -> (newest id, result)
T = TypeVar("T")
COLUMNS = "id, time, model, version, role, request_id, input_sha256, input_bytes, label, probabilities, latency_ms, status"


def _reading(path: Path, empty: T, body: Callable[[sqlite3.Connection], T]) -> T:
    """`body(conn)` over one read-only connection to the log; `empty` for a log that does not exist yet or has no
    table yet; a log SQLite cannot use is its sentence (`storage_error`)."""
    if not path.is_file():
        return empty
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        return body(conn)
    except sqlite3.DatabaseError as e:
        broken = storage_error(e, path)
        if broken is not None:
            raise broken from None
        return empty
    finally:
        conn.close()


def _select(conn: sqlite3.Connection) -> str:
    """The columns of a prediction with its feedback; what a log written before puid, image_sha256 or feedback
    existed lacks reads as NULL."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
    extra = ", ".join(f"p.{c}" if c in have else "NULL" for c in ("puid", "image_sha256"))
    feedback = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone()
    given = "f.truth, f.reward, f.time" if feedback else "NULL, NULL, NULL"
    joined = " LEFT JOIN feedback f ON f.prediction_id = p.id" if feedback else ""
    columns = ", ".join(f"p.{c.strip()}" for c in COLUMNS.split(","))
    return f"SELECT {columns}, {extra}, {given} FROM predictions p{joined}"


def _logged(r, deployment: str) -> LoggedPrediction:
    return LoggedPrediction(
        id=r[0], deployment=deployment, time=r[1], model=r[2], version=r[3], role=r[4], request_id=r[5],
        input_sha256=r[6], input_bytes=r[7], label=r[8], probabilities=json.loads(r[9] or "{}"),
        latency_ms=r[10], status=r[11], puid=r[12] or "", image_sha256=r[13] or "", truth=r[14], reward=r[15],
        feedback_time=r[16],
    )


def read(path: Path, deployment: str, since: float | None = None, limit: int = 1000) -> list[LoggedPrediction]:
    """The last `limit` predictions (after `since`, seconds since the epoch), oldest first, with their feedback."""
    rows = _reading(path, [], lambda conn: conn.execute(
        f"{_select(conn)} WHERE p.time > ? ORDER BY p.id DESC LIMIT ?", (float(since or 0.0), max(0, int(limit)))
    ).fetchall())
    return [_logged(r, deployment) for r in reversed(rows)]


def get(path: Path, deployment: str, ident: int) -> LoggedPrediction | None:
    r = _reading(path, None, lambda conn: conn.execute(f"{_select(conn)} WHERE p.id = ?", (int(ident),)).fetchone())
    return None if r is None else _logged(r, deployment)


def get_many(path: Path, deployment: str, ids: list[int]) -> dict[int, LoggedPrediction]:
    """The predictions of `ids` the log holds, by id, read over one connection."""
    def body(conn: sqlite3.Connection) -> dict[int, LoggedPrediction]:
        found: dict[int, LoggedPrediction] = {}
        select = _select(conn)
        wanted = sorted({int(i) for i in ids})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for r in conn.execute(f"{select} WHERE p.id IN ({', '.join('?' * len(chunk))})", chunk):
                found[r[0]] = _logged(r, deployment)
        return found

    return _reading(path, {}, body)


def find(path: Path, deployment: str, keys: list[str]) -> list[LoggedPrediction | None]:
    """The answered predictions (not a shadow's) feedback names by each of `keys`, as the model server finds them
    (serving/prediction_log.py `find`): a 64-digit hex key is an image's sha256 (its newest answer), anything else
    the client's puid, else the log's id; None for a key the log holds no such prediction of. One connection for
    all of them (a labels file may name thousands)."""
    answered = "p.status = 200 AND p.role != 'shadow'"

    def body(conn: sqlite3.Connection) -> list[LoggedPrediction | None]:
        select = _select(conn)
        have = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
        found = []
        for key in keys:
            key, r = str(key).strip(), None
            if len(key) == 64 and all(c in "0123456789abcdef" for c in key.lower()):
                if "image_sha256" in have:
                    r = conn.execute(f"{select} WHERE p.image_sha256 = ? AND {answered} ORDER BY p.id DESC LIMIT 1", (key.lower(),)).fetchone()
            else:
                if key and "puid" in have:
                    r = conn.execute(f"{select} WHERE p.puid = ? AND {answered} ORDER BY p.id DESC LIMIT 1", (key,)).fetchone()
                if r is None and key.isdigit():
                    r = conn.execute(f"{select} WHERE p.id = ? AND {answered}", (int(key),)).fetchone()
            found.append(None if r is None else _logged(r, deployment))
        return found

    return _reading(path, [None] * len(keys), body)


def summaries(path: Path, version: int | None = None, limit: int = 1000) -> list[PredictionSummary]:
    """The last `limit` answered predictions that carry a summary (of `version` when given), oldest first; none
    from a log its servers wrote before summaries existed."""
    def body(conn: sqlite3.Connection) -> list:
        if "embedding" not in {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}:
            return []
        where, args = ("AND version = ?", (int(version),)) if version is not None else ("", ())
        return conn.execute(
            "SELECT id, time, version, role, confidence, embedding, basis FROM predictions"
            f" WHERE status = 200 AND embedding IS NOT NULL AND confidence IS NOT NULL {where} ORDER BY id DESC LIMIT ?",
            (*args, max(0, int(limit))),
        ).fetchall()

    rows = _reading(path, [], body)
    out = []
    for ident, when, ver, role, confidence, blob, basis in reversed(rows):
        if isinstance(blob, bytes) and blob and len(blob) % 4 == 0:  # anything else is not a server's summary
            out.append(PredictionSummary(ident, when, ver, role, float(confidence), struct.unpack(f"<{len(blob) // 4}f", blob), basis or ""))
    return out


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def _newest(conn: sqlite3.Connection) -> int | None:
    return conn.execute("SELECT MAX(id) FROM predictions").fetchone()[0]


def _remembered(path: Path, what: str, last: int, conn: sqlite3.Connection, compute, with_feedback: bool = False):
    """`compute()`'s result for this log, computed again only when a prediction came since the last time (or, with
    `with_feedback`, a feedback)."""
    key = (str(path), what, last)
    newest = (_newest(conn), os.stat(path).st_ino)  # a log made again under the same name is another log
    if with_feedback and conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone():
        newest += tuple(conn.execute("SELECT COUNT(*), MAX(time) FROM feedback").fetchone())
    seen = _SEEN.get(key)
    if seen is not None and seen[0] == newest:
        return seen[1]
    result = compute()
    if len(_SEEN) > 256:
        _SEEN.clear()
    _SEEN[key] = (newest, result)
    return result


def summary(path: Path, last: int = 10_000) -> dict[tuple[int, str], dict]:
    """(version, role) -> requests, errors, p50_ms, p95_ms and labels over the last `last` predictions."""
    return _reading(path, {}, lambda conn: _remembered(path, "summary", last, conn, lambda: _summary(conn, last)))


def _summary(conn: sqlite3.Connection, last: int) -> dict[tuple[int, str], dict]:
    rows = conn.execute(
        "SELECT version, role, label, latency_ms, status FROM predictions ORDER BY id DESC LIMIT ?", (last,)
    ).fetchall()
    out: dict[tuple[int, str], dict] = {}
    latencies: dict[tuple[int, str], list[float]] = {}
    for version, role, label, latency, status in rows:
        entry = out.setdefault((version, role), {"requests": 0, "errors": 0, "labels": {}})
        entry["requests"] += 1
        if status != 200:
            entry["errors"] += 1
        elif label is not None:
            entry["labels"][label] = entry["labels"].get(label, 0) + 1
        latencies.setdefault((version, role), []).append(latency)
    for key, values in latencies.items():
        out[key]["p50_ms"], out[key]["p95_ms"] = _quantile(values, 0.50), _quantile(values, 0.95)
    return out


def agreement(path: Path, last: int = 10_000) -> float | None:
    """Of the recent requests both the shadow and the primary answered, the share with the same label."""
    row = _reading(path, None, lambda conn: _remembered(path, "agreement", last, conn, lambda: conn.execute(
        "SELECT COUNT(*), SUM(s.label = p.label) FROM"
        " (SELECT request_id, label FROM predictions WHERE role = 'shadow' AND status = 200 AND request_id != ''"
        "  ORDER BY id DESC LIMIT ?) s"
        " JOIN predictions p ON p.request_id = s.request_id AND p.role != 'shadow' AND p.status = 200",
        (last,),
    ).fetchone()))
    if row is None:
        return None
    total, same = row
    return round((same or 0) / total, 4) if total else None


DISAGREEMENTS = 20  # the latest a shadow's comparison lists


def compare(path: Path, since: float, primary: int, other: int, role: str) -> tuple[ArmFigures, ArmFigures, int, int, tuple]:
    """The primary's and the canary's (or the shadow's) numbers since `since`, from every prediction the log still
    holds (not the last 10,000: a verdict counts from the start of the comparison), and for a shadow the requests it
    and the primary both answered, on how many they agreed, and the latest DISAGREEMENTS it answered otherwise:
    (primary, other, agreed, paired, disagreements). Requests are
    every logged request of the version in that role, errors those answered with another status than 200;
    latencies and feedback are of the answered ones."""
    empty = (ArmFigures(primary, "primary", 0, 0), ArmFigures(other, role, 0, 0), 0, 0, ())
    return _reading(path, empty, lambda conn: _remembered(path, f"compare:{since}:{primary}:{other}:{role}", 0, conn,
                                                          lambda: _compare(conn, since, primary, other, role),
                                                          with_feedback=True))


def _compare(conn: sqlite3.Connection, since: float, primary: int, other: int, role: str):
    feedback = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone()
    truth, joined = ("f.truth", " LEFT JOIN feedback f ON f.prediction_id = p.id") if feedback else ("NULL", "")
    arms = []
    for version, which in ((primary, "primary"), (other, role)):
        rows = conn.execute(
            f"SELECT p.status, p.latency_ms, p.label, {truth} FROM predictions p{joined}"
            " WHERE p.time >= ? AND p.version = ? AND p.role = ?", (float(since), int(version), which)).fetchall()
        answered = [r for r in rows if r[0] == 200]
        judged = [r for r in answered if r[3] is not None]
        arms.append(ArmFigures(version, which, len(rows), len(rows) - len(answered),
                               latencies_ms=tuple(float(r[1]) for r in answered),
                               right=sum(r[2] == r[3] for r in judged), judged=len(judged)))
    agreed = paired = 0
    disagreements: tuple = ()
    if role == "shadow":
        pairs = (" FROM predictions s JOIN predictions p"
                 " ON p.request_id = s.request_id AND p.role != 'shadow' AND p.status = 200 AND p.version = ?"
                 " WHERE s.role = 'shadow' AND s.version = ? AND s.status = 200 AND s.request_id != '' AND s.time >= ?")
        args = (int(primary), int(other), float(since))
        paired, agreed = conn.execute(f"SELECT COUNT(*), SUM(s.label = p.label){pairs}", args).fetchone()
        disagreements = tuple(Disagreement(*row) for row in conn.execute(
            f"SELECT p.id, p.label, s.id, s.label{pairs} AND s.label IS NOT p.label ORDER BY s.id DESC LIMIT ?",
            (*args, DISAGREEMENTS)))
    return arms[0], arms[1], int(agreed or 0), int(paired or 0), disagreements
