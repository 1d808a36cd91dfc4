"""The local pipelines' records in SQLite: pipelines, jobs, datums (under `config.home / "pipelines"`).

The part (`pipelines.py`) and the runner processes (`pipeline_runner.py`) share it: WAL, one
writer at a time, readers never blocked (see `sqlite.py`).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from dlptui.platform.local.sqlite import Database
from dlptui.platform.model import CommitRef, Datum, Job, JobState

SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL, state TEXT NOT NULL,
    runner TEXT, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, pipeline TEXT NOT NULL, state TEXT NOT NULL,
    inputs TEXT NOT NULL, output_commit TEXT, created REAL NOT NULL, started REAL, finished REAL,
    reason TEXT NOT NULL DEFAULT '', total INTEGER NOT NULL DEFAULT 0, processed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_pipeline ON jobs (pipeline, inputs);
CREATE TABLE IF NOT EXISTS datums (
    job_id TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, files TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '', output TEXT, PRIMARY KEY (job_id, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS datums_id ON datums (id);
"""

BUSY_TIMEOUT_S = 300.0
DATUM_STATES = ("pending", "running", "success", "skipped", "failed")


def open_pipeline_db(root: Path) -> Database:
    root.mkdir(parents=True, exist_ok=True)
    return Database(root / "meta.db", SCHEMA, busy=f"The pipeline records at {root} are", timeout_s=BUSY_TIMEOUT_S)


def job_of(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], pipeline=row["pipeline"], state=JobState(row["state"]),
        input_commits=tuple(map(CommitRef, json.loads(row["inputs"]))),
        output_commit=CommitRef(row["output_commit"]) if row["output_commit"] else None,
        datums={"total": row["total"], "processed": row["processed"], "skipped": row["skipped"], "failed": row["failed"]},
        started=row["started"], finished=row["finished"], reason=row["reason"],
    )


def datum_of(row: sqlite3.Row) -> Datum:
    return Datum(id=row["id"], job_id=row["job_id"], state=row["state"], files=tuple(json.loads(row["files"])),
                 tries=row["tries"], reason=row["reason"])


JOB_COLUMNS = "seq, id, pipeline, state, inputs, output_commit, created, started, finished, reason, total, processed, skipped, failed"
