"""The child process of one trial: `python -m dlptui.platform.local.training_runner HOME ID TRIAL`.

Started by the experiment's search runner (`search_runner.py`, in its process group), from the trial folder (Determined copies the
working folder into each checkpoint), with XDG_DATA_HOME set so that Determined's checkpoints
land in the part's folder. It runs the trial's own `train.run` and records what the
Trainer reports through a `PyTorchCallback`: every training batch's loss, each validation,
each checkpoint. SIGTERM asks it to stop at the next boundary with a checkpoint (pause).
It trains the trial's hyperparameters from its latest checkpoint to its target (the whole length, or
the end of its ASHA rung) and writes the trial's state: completed (the whole length), paused (at its
rung, or stopped by SIGTERM), or error with one sentence. It records its own pid first, and writes
its end only while the trial is still running as its own: a kill that settled the trial first stays.
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
from dlptui.platform.local import training_start
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


def make_recorder(db: TrainingDB, experiment_id: int, start_batch: int, trial_id: int | None = None):
    """A PyTorchCallback writing the Trainer's reports to the metric stream (built lazily: determined is heavy)."""
    from determined.pytorch import PyTorchCallback

    trial = experiment_id if trial_id is None else trial_id

    class Recorder(PyTorchCallback):
        def __init__(self) -> None:
            self.batch = start_batch
            self.written: Path | None = None

        def on_training_workload_end(self, avg_metrics: dict, batch_metrics: list) -> None:
            points = []
            for metrics in batch_metrics:
                self.batch += 1
                points += _scalars(metrics, self.batch)
            db.add_metrics(experiment_id, trial, "training", points)

        def on_validation_end(self, metrics: dict) -> None:
            db.add_metrics(experiment_id, trial, "validation", _scalars(metrics, self.batch))

        def on_checkpoint_write_end(self, checkpoint_dir: str) -> None:
            self.written = Path(checkpoint_dir)

        def on_checkpoint_upload_end(self, uuid: str) -> None:
            # Determined has written metadata.json by now: the checkpoint is whole, record it.
            where = self.written if self.written and self.written.name == uuid else db.root / STORAGE / uuid
            location = where.relative_to(db.root) if where.is_relative_to(db.root) else where
            db.add_checkpoint(uuid, experiment_id, trial, self.batch, str(location))
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


def claim(db: TrainingDB, trial_id: int) -> bool:
    """Record this process as the trial's; False when the trial was ended (killed) before it came."""
    me = os.getpid()
    return db.update_trial(trial_id, only_if=(ExperimentState.QUEUED, ExperimentState.RUNNING),
                           state=ExperimentState.RUNNING, pid=me, pid_started=training_start.started(me))


def last_word(db: TrainingDB, trial_id: int, state: ExperimentState, **fields: Any) -> bool:
    """The trial's end (completed, paused, error), only while it is running as this process's."""
    return db.update_trial(trial_id, only_if=(ExperimentState.RUNNING,), only_pid=os.getpid(), state=state, pid=None,
                           **fields)


def die_with_parent() -> None:
    """A trial ends when its search runner does (kill -9 of the runner included): Linux's parent-death
    signal. The resumed runner then starts it again from its checkpoint, and no orphan trains on."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the runner kills what it left behind when it starts again
        return
    if os.getppid() == 1:  # the runner died before the call
        os._exit(1)


def main(argv: list[str]) -> int:
    stopper = Stopper()  # first: a pause that comes while torch imports must not be lost
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    home, experiment_id, trial_id = Path(argv[0]), int(argv[1]), int(argv[2])
    root = home / "training"
    db = TrainingDB(root)
    if not claim(db, trial_id):
        log.info("Trial %d ended before its process started; nothing to run.", trial_id)
        return 0
    row = db.row(experiment_id)
    trial = db.trial_row(trial_id)
    checkpoints = [c for c in db.checkpoints(experiment_id) if c.trial_id == str(trial_id)]
    latest = checkpoints[-1] if checkpoints else None
    start = latest.batch if latest else 0
    dropped = db.drop_metrics_after(experiment_id, start, trial_id)
    log.info(
        "Experiment %d trial %d (%s) on %s@%s, to batch %d, %s.", experiment_id, trial_id, row.name, row.data_repo,
        row.data_commit, trial.target,
        f"resuming from checkpoint {latest.uuid} at batch {start} ({dropped} later points dropped)" if latest else "from the start",
    )
    sys.path.insert(0, row.trial_dir)
    recorder = None
    try:
        import settings
        import train

        config = settings.trial_config(row.config, trial.hparams)
        length = settings.periods(config)[0]
        if config["data"].get("store") == "local":
            config["data"] = {**config["data"], "dir": str(root / DATA), "home": str(home)}
        recorder = make_recorder(db, experiment_id, start, trial_id)
        if start < trial.target:
            train.run(
                config,
                latest_checkpoint=latest.uuid if latest else None,
                start_batch=start,
                callbacks={"dlptui": recorder},
                on_context=stopper.attach,
                stop_at=trial.target,
            )
    except BaseException as e:  # the trial's last word: one sentence in the record, the traceback in the log
        traceback.print_exc(file=sys.stdout)
        last_word(db, trial_id, ExperimentState.ERROR, error=sentence(e, experiment_id), ended=time.time())
        return 1
    if recorder.batch >= length:
        last_word(db, trial_id, ExperimentState.COMPLETED, ended=time.time(), error=None)
        log.info("Trial %d reached batch %d.", trial_id, recorder.batch)
    else:
        last_word(db, trial_id, ExperimentState.PAUSED)
        log.info("Trial %d %s at batch %d.", trial_id, "paused" if stopper.requested else "waits at its rung", recorder.batch)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
