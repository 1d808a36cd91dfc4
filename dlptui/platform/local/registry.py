"""The embedded model registry: models, versions, aliases and the audit history, in SQLite.

Each version points at a checkpoint of the training part and carries what it was trained
on (the experiment and its data commit), so lineage needs no second look-up. An alias
(`staging`, `production`) names one version per model; moving it and writing the audit
entry happen in one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError
from dlptui.platform.local.sqlite import Database
from dlptui.platform.rules import check_model_name
from dlptui.platform.metrics import best_by_searcher  # the rule both profiles apply (training_db.py imports it from here)
from dlptui.platform.model import ALIASES, Model, ModelVersion, Promotion, Service

BUSY_TIMEOUT_S = 15.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS versions (
    model TEXT NOT NULL REFERENCES models(name),
    version INTEGER NOT NULL,
    checkpoint_uuid TEXT NOT NULL,
    checkpoint_location TEXT,
    created REAL NOT NULL,
    experiment_id TEXT,
    data_repo TEXT,
    data_commit TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    notes TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER NOT NULL,
    who TEXT NOT NULL,
    time REAL NOT NULL
);
"""

def current_user() -> str:
    """Who made a change, for the audit history: the OS account of this process, never $USER
    (which anyone sets to anything); `uid N` where the account has no name (some containers)."""
    import pwd

    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class LocalRegistry:
    def __init__(self, config, platform) -> None:
        self.config = config
        self.platform = platform
        self.root: Path = config.home / "registry"
        self.path = self.root / "registry.sqlite"
        self._database: Database | None = None

    # --- storage -------------------------------------------------------------

    def _db(self, write: bool = False):
        """A transaction; the first one makes the folder and the database."""
        if self._database is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._database = Database(
                self.path, SCHEMA, busy=f"The registry at {self.path} is", timeout_s=BUSY_TIMEOUT_S, foreign_keys=True
            )
        return self._database.write() if write else self._database.read()

    def close(self) -> None:
        if self._database is not None:
            self._database.close()

    def _model_row(self, conn, name: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT name FROM models ORDER BY name")]
            hint = f"the registered models are {', '.join(known)}" if known else "no model is registered yet"
            raise NotFound(f"There is no model named {name!r}; {hint}.")
        return row

    def _aliases(self, conn, model: str) -> dict[str, int]:
        rows = conn.execute("SELECT alias, version FROM aliases WHERE model = ? ORDER BY alias", (model,))
        return {r["alias"]: r["version"] for r in rows}

    def _model(self, conn, row: sqlite3.Row) -> Model:
        count = conn.execute("SELECT COUNT(*) FROM versions WHERE model = ?", (row["name"],)).fetchone()[0]
        return Model(
            name=row["name"],
            created=row["created"],
            description=row["description"],
            versions=count,
            aliases=self._aliases(conn, row["name"]),
        )

    def _version(self, row: sqlite3.Row, aliases: dict[str, int]) -> ModelVersion:
        return ModelVersion(
            model=row["model"],
            version=row["version"],
            checkpoint_uuid=row["checkpoint_uuid"],
            created=row["created"],
            experiment_id=row["experiment_id"],
            data_repo=row["data_repo"],
            data_commit=row["data_commit"],
            metrics=json.loads(row["metrics"]),
            aliases=tuple(a for a, v in aliases.items() if v == row["version"]),
            checkpoint_location=row["checkpoint_location"],
            notes=row["notes"],
        )

    # --- reading -------------------------------------------------------------

    def health(self) -> Service:
        try:
            with self._db() as conn:
                count = conn.execute("SELECT COUNT(*) FROM models").fetchone()[0]
            return Service("registry", "embedded registry", True, f"{count} models", endpoint=str(self.path))
        except PlatformError as e:  # a damaged file: the sentence says which and what to do
            return Service("registry", "embedded registry", False, str(e))
        except (sqlite3.Error, OSError) as e:
            return Service("registry", "embedded registry", False, f"The registry at {self.path} cannot be read: {e}.")

    def list_models(self) -> list[Model]:
        with self._db() as conn:
            rows = conn.execute("SELECT * FROM models ORDER BY name").fetchall()
            return [self._model(conn, r) for r in rows]

    def get_model(self, name: str) -> Model:
        with self._db() as conn:
            return self._model(conn, self._model_row(conn, name))

    def list_versions(self, model: str) -> list[ModelVersion]:
        with self._db() as conn:
            self._model_row(conn, model)
            aliases = self._aliases(conn, model)
            rows = conn.execute("SELECT * FROM versions WHERE model = ? ORDER BY version", (model,))
            return [self._version(r, aliases) for r in rows]

    def get_version(self, model: str, ref: str | int) -> ModelVersion:
        with self._db() as conn:
            self._model_row(conn, model)
            aliases = self._aliases(conn, model)
            number = self._resolve(conn, model, ref, aliases)
            row = conn.execute("SELECT * FROM versions WHERE model = ? AND version = ?", (model, number)).fetchone()
            if row is None:
                count = conn.execute("SELECT MAX(version) FROM versions WHERE model = ?", (model,)).fetchone()[0]
                raise NotFound(f"Model {model!r} has no version {number}; its versions are 1 to {count or 0}.")
            return self._version(row, aliases)

    def _resolve(self, conn, model: str, ref: str | int, aliases: dict[str, int]) -> int:
        text = str(ref).strip()
        if text.isdigit():
            return int(text)
        if text == "latest":
            latest = conn.execute("SELECT MAX(version) FROM versions WHERE model = ?", (model,)).fetchone()[0]
            if latest is None:
                raise NotFound(f"Model {model!r} has no versions yet; register one first.")
            return latest
        if text in ALIASES:
            if text not in aliases:
                raise NotFound(
                    f"No version of {model!r} is in {text} yet; promote one with "
                    f"`dlptui model promote {model} VERSION --to {text}`."
                )
            return aliases[text]
        raise InvalidInput(
            f"{ref!r} is not a version of {model!r}; give a number, 'latest', 'staging' or 'production'."
        )

    def history(self, model: str) -> list[Promotion]:
        with self._db() as conn:
            self._model_row(conn, model)
            rows = conn.execute("SELECT * FROM promotions WHERE model = ? ORDER BY id", (model,))
            return [
                Promotion(r["model"], r["alias"], r["from_version"], r["to_version"], r["who"], r["time"])
                for r in rows
            ]

    # --- writing -------------------------------------------------------------

    def register(
        self, model: str, experiment_id: str, checkpoint_uuid: str | None = None, notes: str = "",
        trial_id: str | None = None,
    ) -> ModelVersion:
        check_model_name(model)
        training = self.platform.training
        experiment = training.get_experiment(experiment_id)
        if trial_id is not None and not checkpoint_uuid:
            trial = training.get_trial(trial_id)
            if trial.experiment_id != experiment.id:
                raise InvalidInput(f"Trial {trial_id} belongs to experiment {trial.experiment_id}, not {experiment.id}; give one of its trials.")
            checkpoint = best_by_searcher(experiment.config, [c for c in training.checkpoints(experiment.id) if c.trial_id == trial.id])
            if checkpoint is None:
                raise Conflict(f"Trial {trial.id} of experiment {experiment.id} has no checkpoint yet; wait until it has saved one.")
        elif checkpoint_uuid:
            checkpoint = training.checkpoint(checkpoint_uuid)
            if checkpoint.experiment_id != experiment.id:
                raise InvalidInput(
                    f"Checkpoint {checkpoint_uuid} belongs to experiment {checkpoint.experiment_id}, "
                    f"not {experiment.id}; give one of this experiment's checkpoints."
                )
        else:
            checkpoint = best_by_searcher(experiment.config, training.checkpoints(experiment.id))
            if checkpoint is None:
                raise Conflict(
                    f"Experiment {experiment.id} has no checkpoint yet; wait until it has saved one."
                )
        now = time.time()
        with self._db(write=True) as conn:
            if conn.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is None:
                conn.execute("INSERT INTO models (name, created) VALUES (?, ?)", (model, now))
            twin = conn.execute(
                "SELECT version FROM versions WHERE model = ? AND checkpoint_uuid = ?", (model, checkpoint.uuid)
            ).fetchone()
            if twin is not None:
                raise Conflict(f"Checkpoint {checkpoint.uuid} is already version {twin[0]} of {model!r}.")
            number = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE model = ?", (model,))
            number = number.fetchone()[0]
            conn.execute(
                "INSERT INTO versions (model, version, checkpoint_uuid, checkpoint_location, created,"
                " experiment_id, data_repo, data_commit, metrics, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    number,
                    checkpoint.uuid,
                    checkpoint.location,
                    now,
                    experiment.id,
                    experiment.data_repo,
                    experiment.data_commit,
                    json.dumps(checkpoint.metrics),
                    notes,
                ),
            )
        return self.get_version(model, number)

    def promote(self, model: str, version: int, alias: str, who: str | None = None) -> Promotion:
        if alias not in ALIASES:
            raise InvalidInput(f"{alias!r} is not an alias; use one of {', '.join(ALIASES)}.")
        target = self.get_version(model, version)  # NotFound for an unknown model or version
        who = who or current_user()
        now = time.time()
        with self._db(write=True) as conn:
            row = conn.execute("SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)).fetchone()
            previous = row[0] if row else None
            conn.execute(
                "INSERT INTO aliases (model, alias, version) VALUES (?, ?, ?)"
                " ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
                (model, alias, target.version),
            )
            conn.execute(
                "INSERT INTO promotions (model, alias, from_version, to_version, who, time) VALUES (?, ?, ?, ?, ?, ?)",
                (model, alias, previous, target.version, who, now),
            )
        return Promotion(model, alias, previous, target.version, who, now)
