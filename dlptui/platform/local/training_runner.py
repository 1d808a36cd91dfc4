"""The child process of one local experiment: `python -m dlptui.platform.local.training_runner HOME ID`.

Started by `LocalTraining` in its own session, from the trial folder (Determined copies the
working folder into each checkpoint), with XDG_DATA_HOME set so that Determined's checkpoints
land in the part's folder. It runs the trial's own `train.run` and records what the
Trainer reports through a `PyTorchCallback`: every training batch's loss, each validation,
each checkpoint. SIGTERM asks it to stop at the next boundary with a checkpoint (pause).
It writes its own final state: completed, paused, or error with one sentence.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from dlptui.errors import PlatformError
from dlptui.platform.local.training_db import TrainingDB
from dlptui.platform.model import ExperimentState

log = logging.getLogger("dlptui.training")

STORAGE = "determined"  # checkpoints: <part folder>/determined/<uuid>, as Determined's shared_fs default puts them
DATA = "data"  # data commits, materialized once per commit


class Stopper:
    """Turns SIGTERM into Determined's stop request, also when it comes before training started."""

    def __init__(self) -> None:
        self.requested = False
        self.context: Any = None
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.requested = True
        log.info("Pause requested: stopping at the next boundary with a checkpoint.")
        if self.context is not None:
            self.context.set_stop_requested(True)

    def attach(self, context: Any) -> None:
        self.context = context
        if self.requested:
            context.set_stop_requested(True)


def make_recorder(db: TrainingDB, experiment_id: int, start_batch: int):
    """A PyTorchCallback writing the Trainer's reports to the metric stream (built lazily: determined is heavy)."""
    from determined.pytorch import PyTorchCallback

    class Recorder(PyTorchCallback):
        def __init__(self) -> None:
            self.batch = start_batch
            self.written: Path | None = None

        def on_training_workload_end(self, avg_metrics: dict, batch_metrics: list) -> None:
            points = []
            for metrics in batch_metrics:
                self.batch += 1
                points += _scalars(metrics, self.batch)
            db.add_metrics(experiment_id, experiment_id, "training", points)

        def on_validation_end(self, metrics: dict) -> None:
            db.add_metrics(experiment_id, experiment_id, "validation", _scalars(metrics, self.batch))

        def on_checkpoint_write_end(self, checkpoint_dir: str) -> None:
            self.written = Path(checkpoint_dir)

        def on_checkpoint_upload_end(self, uuid: str) -> None:
            # Determined has written metadata.json by now: the checkpoint is whole, record it.
            where = self.written if self.written and self.written.name == uuid else db.root / STORAGE / uuid
            location = where.relative_to(db.root) if where.is_relative_to(db.root) else where
            db.add_checkpoint(uuid, experiment_id, experiment_id, self.batch, str(location))
            log.info("Checkpoint %s at batch %d recorded.", uuid, self.batch)

    return Recorder()


def _scalars(metrics: dict, batch: int) -> list[tuple[int, str, float]]:
    """(batch, name, value) for each finite number (torch reports numpy 0-d arrays); the rest is skipped."""
    points = []
    for name, value in metrics.items():
        if name in ("batches", "epochs") or isinstance(value, bool):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            points.append((batch, name, number))
        else:
            log.warning("The metric %s at batch %d is %s; not recorded.", name, batch, number)
    return points


def sentence(error: BaseException, experiment_id: int) -> str:
    """One sentence for the experiment's `error` field."""
    if isinstance(error, PlatformError) or getattr(error, "user_facing", False):  # the trial's own sentences
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return text if text.endswith(".") else text + "."
    return f"Training failed with {type(error).__name__}: {str(error).strip()[:200]}; see `dlptui experiment logs {experiment_id}`."


def main(argv: list[str]) -> int:
    stopper = Stopper()  # first: a pause that comes while torch imports must not be lost
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    home, experiment_id = Path(argv[0]), int(argv[1])
    root = home / "training"
    db = TrainingDB(root)
    row = db.row(experiment_id)
    checkpoints = db.checkpoints(experiment_id)
    latest = checkpoints[-1] if checkpoints else None
    start = latest.batch if latest else 0
    dropped = db.drop_metrics_after(experiment_id, start)
    log.info(
        "Experiment %d (%s) on %s@%s, %s.", experiment_id, row.name, row.data_repo, row.data_commit,
        f"resuming from checkpoint {latest.uuid} at batch {start} ({dropped} later points dropped)" if latest else "from the start",
    )
    config = dict(row.config)
    if config["data"].get("store") == "local":
        config["data"] = {**config["data"], "dir": str(root / DATA), "home": str(home)}
    sys.path.insert(0, row.trial_dir)
    recorder = None
    try:
        import train

        recorder = make_recorder(db, experiment_id, start)
        train.run(
            config,
            latest_checkpoint=latest.uuid if latest else None,
            start_batch=start,
            callbacks={"dlptui": recorder},
            on_context=stopper.attach,
        )
    except BaseException as e:  # the child's last word: one sentence in the record, the traceback in the log
        traceback.print_exc(file=sys.stdout)
        db.update(experiment_id, state=ExperimentState.ERROR, error=sentence(e, experiment_id), ended=time.time(), pid=None)
        return 1
    if stopper.requested and recorder.batch < row.max_batches:
        db.update(experiment_id, only_if=(ExperimentState.RUNNING,), state=ExperimentState.PAUSED, pid=None, request=None)
        log.info("Paused.")
    else:
        db.update(experiment_id, state=ExperimentState.COMPLETED, ended=time.time(), pid=None, request=None, error=None)
        log.info("Completed.")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
