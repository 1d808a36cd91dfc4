"""The local Training part's records: experiments, their metric stream and checkpoints, in SQLite.

Written by two kinds of process at once: the caller (console, CLI) creates experiments and
changes their state; each experiment's child process appends metrics and checkpoints while
it trains. WAL mode lets readers poll while the child writes. Nothing here imports torch.

A metric is keyed by (experiment, trial, batch, group, name): a point written again (after a
resume from an earlier checkpoint) replaces the old one and gets a new sequence number, so a
cursor-based reader sees it again and never sees two values for one batch.
Checkpoint locations are stored relative to the part's folder, so a copied home still works.

At a team's scale (thousands of experiments) a listing reads its metrics once for all experiments
(`training_list.py`), and a config is parsed once per listing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlptui.errors import NotFound
from dlptui.platform.local.sqlite import Database
from dlptui.platform.local.training_list import Listing, best_validation
from dlptui.platform.model import Checkpoint, Experiment, ExperimentState, MetricPoint, Trial

BUSY_TIMEOUT_S = 30.0
ANY = object()  # `only_pid` not given: whatever process is recorded

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    ended REAL,
    config_file TEXT NOT NULL,
    trial_dir TEXT NOT NULL,
    config TEXT NOT NULL,
    data_repo TEXT,
    data_commit TEXT,
    max_batches INTEGER NOT NULL,
    pid INTEGER,
    pid_started REAL,
    request TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL,
    trial_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    grp TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    time REAL NOT NULL,
    UNIQUE (experiment_id, trial_id, batch, grp, name) ON CONFLICT REPLACE
);
CREATE INDEX IF NOT EXISTS metrics_by_experiment ON metrics (experiment_id, seq);
CREATE INDEX IF NOT EXISTS metrics_by_trial ON metrics (trial_id, seq);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    hparams TEXT NOT NULL,
    bracket INTEGER NOT NULL DEFAULT 0,
    target INTEGER NOT NULL,
    stopped_early INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    optuna_number INTEGER,
    pid INTEGER,
    pid_started REAL,
    error TEXT,
    created REAL NOT NULL,
    ended REAL
);
CREATE INDEX IF NOT EXISTS trials_by_experiment ON trials (experiment_id, id);
CREATE TABLE IF NOT EXISTS checkpoints (
    uuid TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    trial_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    created REAL NOT NULL,
    location TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Row:
    """One experiment as stored, with what only the part needs (process, request, trial folder)."""

    id: int
    name: str
    state: ExperimentState
    created: float
    ended: float | None
    config_file: str
    trial_dir: str
    config: dict[str, Any]
    data_repo: str | None
    data_commit: str | None
    max_batches: int
    pid: int | None
    pid_started: float | None
    request: str | None
    error: str | None


@dataclass(frozen=True)
class TrialRow:
    """One trial of a local search as stored: its leg's target batch, bracket and process."""

    id: int
    experiment_id: int
    state: ExperimentState
    hparams: dict[str, Any]
    bracket: int
    target: int
    stopped_early: bool
    restarts: int
    optuna_number: int | None
    pid: int | None
    pid_started: float | None
    error: str | None
    created: float
    ended: float | None


def parse_id(experiment_id: str | int) -> int:
    try:
        value = int(str(experiment_id).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise NotFound(f"There is no experiment {experiment_id!r}; experiment ids are numbers (see `dlptui experiment list`).")
    return value


class TrainingDB:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = root / "training.db"
        self._db = Database(self.path, SCHEMA, busy=f"The training records at {self.path} are", timeout_s=BUSY_TIMEOUT_S)
        self._parsed: dict[int, tuple[tuple, Row]] = {}  # id -> (the stored values, the Row made of them)
        self._listing = Listing()  # what the last listings made, kept while unchanged

    def stamp(self) -> int:
        """Changes whenever anything of these records changes (sqlite.Database.stamp)."""
        return self._db.stamp()

    def close(self) -> None:
        self._db.close()

    # --- experiments -------------------------------------------------------------

    def insert(self, name: str, config_file: str, trial_dir: str, config: dict, data_repo: str | None,
               data_commit: str | None, max_batches: int, before_commit: Callable[[int], None] | None = None) -> int:
        """A queued experiment; `before_commit(id)` runs before anyone can see it (its starter's claim)."""
        with self._db.write() as db:
            cursor = db.execute(
                "INSERT INTO experiments (name, state, created, config_file, trial_dir, config, data_repo,"
                " data_commit, max_batches) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, ExperimentState.QUEUED.value, time.time(), config_file, trial_dir, json.dumps(config),
                 data_repo, data_commit, max_batches),
            )
            if before_commit is not None:
                before_commit(int(cursor.lastrowid))
            return int(cursor.lastrowid)

    def row(self, experiment_id: str | int) -> Row:
        key = parse_id(experiment_id)
        with self._db.read() as db:
            found = db.execute("SELECT * FROM experiments WHERE id = ?", (key,)).fetchone()
        if found is None:
            raise NotFound(f"There is no experiment {experiment_id}; see `dlptui experiment list` for the ids.")
        return _row(found)

    def rows(self, states: tuple[ExperimentState, ...] | None = None) -> list[Row]:
        """Newest first; with `states`, those in one of them only (chosen by SQLite: the others are not read)."""
        with self._db.read() as db:
            if states is None:
                found = db.execute("SELECT * FROM experiments ORDER BY id DESC").fetchall()
            else:
                marks = ", ".join("?" for _ in states)
                found = db.execute(f"SELECT * FROM experiments WHERE state IN ({marks}) ORDER BY id DESC",
                                   [s.value for s in states]).fetchall()
        configs: dict[str, dict] = {}  # a config text parsed once per listing (thousands of experiments share a few)
        return [self._row(r, configs) for r in found]

    def count(self, states: tuple[ExperimentState, ...]) -> int:
        marks = ", ".join("?" for _ in states)
        with self._db.read() as db:
            return db.execute(f"SELECT count(*) FROM experiments WHERE state IN ({marks})", [s.value for s in states]).fetchone()[0]

    def _row(self, found: sqlite3.Row, configs: dict[str, dict] | None = None) -> Row:
        """The Row of stored values, made (its config parsed) once for the same values. Rows of one listing with the
        same config text share its parsed dict (`configs`): nothing changes a row's config in place."""
        values = tuple(found)
        known = self._parsed.get(values[0])
        if known is not None and known[0] == values:
            return known[1]
        row = _row(found, configs)
        self._parsed[row.id] = (values, row)
        return row

    def update(self, experiment_id: int, only_if: tuple[ExperimentState, ...] | None = None,
               only_pid: Any = ANY, **fields: Any) -> bool:
        """Set fields; with `only_if`, only while the state is one of those, with `only_pid`, only while
        the recorded process is that one (None: none). True when a row changed."""
        return self._update("experiments", experiment_id, only_if, fields, only_pid)

    def _update(self, table: str, row_id: int, only_if: tuple[ExperimentState, ...] | None, fields: dict[str, Any],
                only_pid: Any = ANY) -> bool:
        """One conditional update of an experiment or a trial (a compare-and-set on its state and process)."""
        if "state" in fields and isinstance(fields["state"], ExperimentState):
            fields["state"] = fields["state"].value
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE {table} SET {sets} WHERE id = ?"
        params: list[Any] = [*fields.values(), row_id]
        if only_if:
            sql += f" AND state IN ({', '.join('?' for _ in only_if)})"
            params += [s.value for s in only_if]
        if only_pid is not ANY:
            sql += " AND pid IS ?"
            params.append(only_pid)
        with self._db.write() as db:
            return db.execute(sql, params).rowcount > 0

    def experiment(self, row: Row) -> Experiment:
        return self.experiments([row])[0]

    def experiments(self, rows: list[Row]) -> list[Experiment]:
        """Each row as an Experiment (batches done, best validation), in the order given (training_list.py)."""
        with self._db.read() as db:
            return self._listing.experiments(db, rows)

    # --- metrics -----------------------------------------------------------------

    def add_metrics(self, experiment_id: int, trial_id: int, group: str, points: list[tuple[int, str, float]]) -> None:
        now = time.time()
        with self._db.write() as db:
            db.executemany(
                "INSERT INTO metrics (experiment_id, trial_id, batch, grp, name, value, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(experiment_id, trial_id, batch, group, name, float(value), now) for batch, name, value in points],
            )

    def drop_metrics_after(self, experiment_id: int, batch: int, trial_id: int | None = None) -> int:
        """Forget what was reported after `batch` (work that a resume from there repeats), of one trial or all."""
        with self._db.write() as db:
            if trial_id is None:
                return db.execute("DELETE FROM metrics WHERE experiment_id = ? AND batch > ?", (experiment_id, batch)).rowcount
            return db.execute(
                "DELETE FROM metrics WHERE experiment_id = ? AND trial_id = ? AND batch > ?", (experiment_id, trial_id, batch)
            ).rowcount

    def metrics(self, experiment_id: int, cursor: int, limit: int = 10000, trial_id: int | None = None) -> tuple[list[MetricPoint], int]:
        column, key = ("trial_id", trial_id) if trial_id is not None else ("experiment_id", experiment_id)
        with self._db.read() as db:
            found = db.execute(
                f"SELECT seq, batch, grp, name, value, time, trial_id FROM metrics WHERE {column} = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (key, cursor, limit),
            ).fetchall()
        points = [MetricPoint(r["batch"], r["grp"], r["name"], r["value"], r["time"], str(r["trial_id"])) for r in found]
        return points, (found[-1]["seq"] if found else cursor)

    def metric_at(self, trial_id: int, batch: int, name: str) -> float | None:
        """The validation metric `name` a trial reported at `batch` (a rung's result), or None."""
        with self._db.read() as db:
            found = db.execute(
                "SELECT value FROM metrics WHERE trial_id = ? AND batch = ? AND grp = 'validation' AND name = ?",
                (trial_id, batch, name),
            ).fetchone()
        return None if found is None else found["value"]

    # --- trials --------------------------------------------------------------------

    def insert_trial(self, experiment_id: int, hparams: dict, target: int, bracket: int = 0,
                     optuna_number: int | None = None) -> int:
        with self._db.write() as db:
            cursor = db.execute(
                "INSERT INTO trials (experiment_id, state, hparams, bracket, target, optuna_number, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (experiment_id, ExperimentState.QUEUED.value, json.dumps(hparams), bracket, target, optuna_number, time.time()),
            )
            return int(cursor.lastrowid)

    def trial_rows(self, experiment_id: int) -> list[TrialRow]:
        with self._db.read() as db:
            found = db.execute("SELECT * FROM trials WHERE experiment_id = ? ORDER BY id", (experiment_id,)).fetchall()
        return [_trial_row(r) for r in found]

    def trial_row(self, trial_id: str | int) -> TrialRow:
        try:
            key = int(str(trial_id).strip())
        except ValueError:
            key = 0
        with self._db.read() as db:
            found = db.execute("SELECT * FROM trials WHERE id = ?", (key,)).fetchone()
        if found is None:
            raise NotFound(f"There is no trial {trial_id}; see `dlptui trials EXPERIMENT` for the trial ids.")
        return _trial_row(found)

    def update_trial(self, trial_id: int, only_if: tuple[ExperimentState, ...] | None = None,
                     only_pid: Any = ANY, **fields: Any) -> bool:
        return self._update("trials", trial_id, only_if, fields, only_pid)

    def trials(self, experiment: Row) -> list[Trial]:
        """The experiment's trials, by id, each with its batches and best validation (by the searcher metric).
        An experiment recorded before trials were (one trial, numbered as the experiment) gets that one."""
        rows = self.trial_rows(experiment.id)
        searcher = (experiment.config or {}).get("searcher") or {}
        metric = searcher.get("metric")
        with self._db.read() as db:
            batches = {r["trial_id"]: r["b"] for r in db.execute(
                "SELECT trial_id, MAX(batch) AS b FROM metrics WHERE experiment_id = ? AND grp = 'training' GROUP BY trial_id",
                (experiment.id,))}
            validations: dict[int, dict[int, dict[str, float]]] = {}
            for r in db.execute(
                "SELECT trial_id, batch, name, value FROM metrics WHERE experiment_id = ? AND grp = 'validation' ORDER BY batch, seq",
                (experiment.id,),
            ):
                validations.setdefault(r["trial_id"], {}).setdefault(r["batch"], {})[r["name"]] = r["value"]
        checkpoints: dict[str, list[Checkpoint]] = {}
        for c in self.checkpoints(experiment.id):
            checkpoints.setdefault(c.trial_id, []).append(c)
        if not rows:
            ids = sorted(set(batches) | set(validations)) or []
            legacy = [TrialRow(i, experiment.id, experiment.state, {},
                               0, experiment.max_batches, False, 0, None, None, None, experiment.error, experiment.created,
                               experiment.ended) for i in ids]
            rows = legacy
        result = []
        for r in rows:
            best = best_validation(experiment.config, validations.get(r.id, {}))
            from dlptui.platform.local.registry import best_by_searcher  # torch-free, no cycle at import time

            top = best_by_searcher(experiment.config, checkpoints.get(str(r.id), []))
            result.append(Trial(
                id=str(r.id), experiment_id=str(r.experiment_id), state=r.state, batches_done=int(batches.get(r.id) or 0),
                hparams=r.hparams, max_batches=r.target, best_metric=best.get(metric) if metric else None,
                best_checkpoint=top.uuid if top else None, stopped_early=r.stopped_early, error=r.error,
            ))
        return result

    # --- checkpoints -------------------------------------------------------------

    def add_checkpoint(self, uuid: str, experiment_id: int, trial_id: int, batch: int, location: str) -> None:
        with self._db.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints (uuid, experiment_id, trial_id, batch, created, location)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (uuid, experiment_id, trial_id, batch, time.time(), location),
            )

    def checkpoints(self, experiment_id: int | None = None, uuid: str | None = None) -> list[Checkpoint]:
        where, params = ("c.uuid = ?", (uuid,)) if uuid else ("c.experiment_id = ?", (experiment_id,))
        with self._db.read() as db:
            found = db.execute(f"SELECT * FROM checkpoints c WHERE {where} ORDER BY c.batch, c.created", params).fetchall()
            result = []
            for r in found:
                metrics = db.execute(
                    "SELECT name, value FROM metrics WHERE experiment_id = ? AND trial_id = ? AND grp = 'validation'"
                    " AND batch = ?",
                    (r["experiment_id"], r["trial_id"], r["batch"]),
                ).fetchall()
                result.append(
                    Checkpoint(
                        uuid=r["uuid"],
                        experiment_id=str(r["experiment_id"]),
                        trial_id=str(r["trial_id"]),
                        batch=r["batch"],
                        created=r["created"],
                        location=str(self.root / r["location"]),
                        metrics={m["name"]: m["value"] for m in metrics},
                    )
                )
        return result


def _trial_row(r: sqlite3.Row) -> TrialRow:
    return TrialRow(
        id=r["id"], experiment_id=r["experiment_id"], state=ExperimentState(r["state"]), hparams=json.loads(r["hparams"]),
        bracket=r["bracket"], target=r["target"], stopped_early=bool(r["stopped_early"]), restarts=r["restarts"],
        optuna_number=r["optuna_number"], pid=r["pid"], pid_started=r["pid_started"], error=r["error"],
        created=r["created"], ended=r["ended"],
    )


def _row(r: sqlite3.Row, configs: dict[str, dict] | None = None) -> Row:
    text = r["config"]
    if configs is None:
        config = json.loads(text)
    elif (config := configs.get(text)) is None:
        config = configs[text] = json.loads(text)
    return Row(
        id=r["id"],
        name=r["name"],
        state=ExperimentState(r["state"]),
        created=r["created"],
        ended=r["ended"],
        config_file=r["config_file"],
        trial_dir=r["trial_dir"],
        config=config,
        data_repo=r["data_repo"],
        data_commit=r["data_commit"],
        max_batches=r["max_batches"],
        pid=r["pid"],
        pid_started=r["pid_started"],
        request=r["request"],
        error=r["error"],
    )
