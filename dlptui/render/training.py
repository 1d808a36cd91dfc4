"""Experiments, trials, checkpoints and metric points as table rows and describe blocks.

Accuracy and loss are read through the metric policy (`platform/metrics.py`) and written by the one metric rule
(`text.metric`: a share as a percent, anything else in 4 significant digits).
"""

from __future__ import annotations

from collections.abc import Sequence

from dlptui import text
from dlptui.platform.metrics import accuracy, loss
from dlptui.platform.model import Checkpoint, Experiment, MetricPoint, Trial
from dlptui.render import Block, Column, describer, joined


def batches(done: int, most: int) -> str:
    return f"{done}/{most}"


def searcher(e: Experiment) -> tuple[str, bool]:
    """(the searcher metric, whether smaller is better) of an experiment's config."""
    found = (e.config or {}).get("searcher") or {}
    return found.get("metric", "validation_loss"), found.get("smaller_is_better", True) is not False


EXPERIMENT_COLUMNS = [
    Column("id", "ID", lambda e: e.id),
    Column("name", "NAME", lambda e: e.name),
    Column("state", "STATE", lambda e: e.state.value),
    Column("batches", "BATCHES", lambda e: batches(e.batches_done, e.max_batches)),
    Column("accuracy", "BEST ACC", lambda e: text.metric("accuracy", e.best_accuracy)),
    Column("loss", "BEST VAL LOSS", lambda e: text.metric("validation_loss", e.best_validation_loss)),
    Column("data", "DATA", lambda e: text.data_ref(e.data_repo, e.data_commit)),
    Column("created", "CREATED", lambda e: text.timestamp(e.created)),
]

CHECKPOINT_COLUMNS = [
    Column("uuid", "CHECKPOINT", lambda c: text.uuid(c.uuid)),
    Column("trial", "TRIAL", lambda c: c.trial_id),
    Column("batch", "BATCH", lambda c: c.batch),
    Column("accuracy", "ACCURACY", lambda c: text.metric("accuracy", accuracy(c.metrics))),
    Column("loss", "VAL LOSS", lambda c: text.metric("validation_loss", loss(c.metrics))),
    Column("created", "CREATED", lambda c: text.timestamp(c.created)),
]

POINT_COLUMNS = [
    Column("batch", "BATCH", lambda p: p.batch),
    Column("group", "GROUP", lambda p: p.group),
    Column("name", "NAME", lambda p: p.name),
    Column("value", "VALUE", lambda p: text.metric(p.name, p.value)),
    Column("time", "TIME", lambda p: text.timestamp(p.time)),
]


def point_line(p: MetricPoint) -> str:
    """A metric point as one line of a followed stream."""
    return f"{p.batch:>7}  {p.group:<10}  {p.name:<16}  {text.metric(p.name, p.value)}"


def searched(trials: Sequence[Trial]) -> list[str]:
    """The hyperparameters a trial table shows as columns: every one a trial records."""
    return sorted({k for t in trials for k in t.hparams})


def trial_state(t: Trial) -> str:
    return t.state.value + (" (stopped early)" if t.stopped_early else "")


def trial_columns(trials: Sequence[Trial], metric: str = "validation_loss") -> list[Column]:
    """TRIAL, STATE, a column per searched hyperparameter, BATCHES, BEST <metric>, BEST CHECKPOINT."""
    columns = [Column("trial", "TRIAL", lambda t: t.id), Column("state", "STATE", trial_state)]
    columns += [Column(f"hp-{k}", k.upper(), lambda t, k=k: text.hparam(t.hparams.get(k))) for k in searched(trials)]
    columns += [
        Column("batches", "BATCHES", lambda t: batches(t.batches_done, t.max_batches)),
        Column("best", f"BEST {metric.upper()}", lambda t: text.metric(metric, t.best_metric)),
        Column("checkpoint", "BEST CHECKPOINT", lambda t: text.uuid(t.best_checkpoint)),
    ]
    return columns


def hparams(values: dict) -> str:
    """Hyperparameters as "lr=0.0031 frozen=true", by name."""
    return joined((f"{k}={text.hparam(v)}" for k, v in sorted(values.items())), sep=" ")


def metrics(values: dict[str, float]) -> str:
    """Metrics as "accuracy 97.3%, validation_loss 0.0812", by name."""
    return joined(f"{k} {text.metric(k, v)}" for k, v in sorted(values.items()))


def summary(e: Experiment) -> str:
    """An experiment in one line for a screen's heading (after its state and progress bar)."""
    return (f"{batches(e.batches_done, e.max_batches)} batches   {e.name}   data {text.data_ref(e.data_repo, e.data_commit)}"
            f"   best accuracy {text.metric('accuracy', e.best_accuracy)}, "
            f"validation loss {text.metric('validation_loss', e.best_validation_loss)}")


def trial_summary(t: Trial, metric: str) -> str:
    return (f"{batches(t.batches_done, t.max_batches)} batches   best {metric} {text.metric(metric, t.best_metric)}   "
            f"{hparams(t.hparams)}")


@describer(Experiment)
def describe_experiment(e: Experiment) -> Block:
    metric, smaller = searcher(e)
    block = [
        ("experiment", e.id),
        ("name", e.name),
        ("state", e.state.value),
    ]
    if e.detail:
        block.append(("detail", e.detail))
    if e.error:
        block.append(("error", e.error))
    block += [
        ("batches", batches(e.batches_done, e.max_batches)),
        ("best accuracy", text.metric("accuracy", e.best_accuracy)),
        ("best val loss", text.metric("validation_loss", e.best_validation_loss)),
        ("searcher", f"{metric} ({'smaller' if smaller else 'larger'} is better)"),
        ("data", text.data_ref(e.data_repo, e.data_commit)),
        ("started by job", e.data_job or text.MISSING),
        ("warm start", e.source_checkpoint or text.MISSING),
        ("created", text.timestamp(e.created)),
        ("ended", text.timestamp(e.ended)),
    ]
    return block


def trial_block(t: Trial, metric: str | None = None) -> Block:
    """A trial's describe block; `metric` (its experiment's searcher metric) names and writes its best value."""
    block = [
        ("trial", t.id),
        ("experiment", t.experiment_id),
        ("state", trial_state(t)),
        ("batches", batches(t.batches_done, t.max_batches)),
        ("hyperparameters", hparams(t.hparams)),
        (f"best {metric}" if metric else "best metric", text.metric(metric, t.best_metric) if metric else text.number(t.best_metric)),
        ("best checkpoint", t.best_checkpoint or text.MISSING),
    ]
    if t.error:
        block.append(("error", t.error))
    return block


@describer(Trial)
def describe_trial(t: Trial) -> Block:
    return trial_block(t)


@describer(Checkpoint)
def describe_checkpoint(c: Checkpoint) -> Block:
    return [("checkpoint", c.uuid), ("experiment", c.experiment_id), ("trial", c.trial_id), ("batch", str(c.batch)),
            ("metrics", metrics(c.metrics)), ("saved", text.timestamp(c.created)), ("location", c.location)]


def checkpoint_line(c: Checkpoint) -> str:
    """A checkpoint in one line (its uuid whole): for describe and for a choice in a dialog."""
    return (f"checkpoint {c.uuid}  batch {c.batch:<6} {text.timestamp(c.created)}  "
            f"accuracy {text.metric('accuracy', accuracy(c.metrics))}  loss {text.metric('validation_loss', loss(c.metrics))}")
