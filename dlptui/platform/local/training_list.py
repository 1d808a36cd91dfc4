"""The local experiments as a listing shows them: batches done and the best validation, for thousands at once.

`Listing().experiments(db, rows)` (inside one read transaction of the training records) reads the metrics once
for all experiments, not twice per experiment: one pass gives each trial's last training batch, the metrics'
count and their newest sequence number, a second the validations of the experiments that changed. It keeps what
it made: an experiment whose row and metrics (count, newest sequence number) are as before is the same object as
before, so a poller tells "unchanged" by identity. For a few experiments it asks per experiment instead.
`best_validation` is the rule both this and the trials' listing apply.
"""

from __future__ import annotations

from typing import Any

from dlptui.platform.model import Experiment

MANY = 50  # from this many experiments on, a listing scans the metrics once instead of asking per experiment


def best_validation(config: dict[str, Any], validations: dict[Any, dict[str, float]]) -> dict[str, float]:
    """The metrics of the best validation, as Determined ranks them: by the config's searcher metric
    (`smaller_is_better`), ties going to the later batch. Without that metric in any validation, the
    best of each: the highest accuracy and the lowest validation loss. Keys are batches, or
    (batch, trial) pairs for the validations of several trials."""
    searcher = (config or {}).get("searcher") or {}
    metric, smaller = searcher.get("metric"), searcher.get("smaller_is_better", True)
    scored = [(key, m) for key, m in sorted(validations.items()) if metric in m]
    if scored:
        sign = 1 if smaller else -1
        batch = lambda key: key[0] if isinstance(key, tuple) else key  # noqa: E731
        _, best = min(scored, key=lambda item: (sign * item[1][metric], -batch(item[0])))
        return best
    accuracies = [m["accuracy"] for m in validations.values() if "accuracy" in m]
    losses = [m["validation_loss"] for m in validations.values() if "validation_loss" in m]
    return {
        **({"accuracy": max(accuracies)} if accuracies else {}),
        **({"validation_loss": min(losses)} if losses else {}),
    }


class Listing:
    def __init__(self) -> None:
        self._made: dict[int, tuple[tuple, Experiment]] = {}  # id -> ((row, metric count, newest seq), Experiment)

    def experiments(self, db, rows: list) -> list[Experiment]:
        """Each row (training_db.Row) as an Experiment, in the order given; `db` a connection in a read transaction."""
        if not rows:
            return []
        ids = [r.id for r in rows]
        cursor = db.cursor()
        cursor.row_factory = None  # plain tuples: several times faster to read than sqlite3.Row, for many rows
        marks: dict[int, tuple[int, int | None]] = {}
        done: dict[int, int] = {}
        if len(rows) >= MANY:  # one pass over the metrics: each trial's last training batch, counts, newest seq
            for experiment, batch, count, newest in cursor.execute(
                    "SELECT experiment_id, MAX(CASE WHEN grp = 'training' THEN batch END), count(*), MAX(seq)"
                    " FROM metrics GROUP BY experiment_id, trial_id"):
                before = marks.get(experiment, (0, None))
                marks[experiment] = (before[0] + count, max(before[1] or 0, newest))
                done[experiment] = done.get(experiment, 0) + (batch or 0)
        else:
            for i in ids:
                marks[i] = tuple(cursor.execute("SELECT count(*), MAX(seq) FROM metrics WHERE experiment_id = ?",
                                                (i,)).fetchone())
                done[i] = cursor.execute(
                    "SELECT SUM(b) FROM (SELECT MAX(batch) AS b FROM metrics WHERE experiment_id = ? AND grp = 'training'"
                    " GROUP BY trial_id)", (i,)).fetchone()[0] or 0
        keys = {r.id: (r, *marks.get(r.id, (0, None))) for r in rows}
        stale = {r.id: r for r in rows if (self._made.get(r.id) or (None,))[0] != keys[r.id]}
        if stale:
            validations = self._validations(cursor, list(stale), all_of_them=len(stale) >= MANY)
            for i, row in stale.items():
                self._made[i] = (keys[i], self._summarized(row, done.get(i), validations.get(i, {})))
        return [self._made[r.id][1] for r in rows]

    @staticmethod
    def _validations(cursor, ids: list[int], all_of_them: bool) -> dict[int, dict]:
        """Per experiment, its validations: (batch, trial) -> name -> value, in one pass over the metrics (a name has
        one value per batch and trial: the table's unique key)."""
        where, params = ("", ()) if all_of_them else (f" AND experiment_id IN ({', '.join('?' for _ in ids)})", tuple(ids))
        validations: dict[int, dict[tuple[int, int], dict[str, float]]] = {}
        for experiment, batch, trial, name, value in cursor.execute(
                "SELECT experiment_id, batch, trial_id, name, value FROM metrics WHERE grp = 'validation'" + where, params):
            found = validations.get(experiment)
            if found is None:
                found = validations[experiment] = {}
            key = (batch, trial)
            at = found.get(key)
            if at is None:
                at = found[key] = {}
            at[name] = value
        return validations

    @staticmethod
    def _summarized(row, done: int | None, validations: dict) -> Experiment:
        best = best_validation(row.config, dict(sorted(validations.items())))
        return Experiment(
            id=str(row.id),
            name=row.name,
            state=row.state,
            created=row.created,
            data_repo=row.data_repo,
            data_commit=row.data_commit,
            ended=row.ended,
            batches_done=int(done or 0),
            max_batches=row.max_batches,
            best_accuracy=best.get("accuracy"),
            best_validation_loss=best.get("validation_loss"),
            config=row.config,
            error=row.error,
            source_checkpoint=((row.config or {}).get("searcher") or {}).get("source_checkpoint_uuid"),
            data_job=((row.config or {}).get("data") or {}).get("job"),
        )

