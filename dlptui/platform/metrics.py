"""Which metric means what: the names the trial, Determined and older runs give accuracy and loss, and
which checkpoint is an experiment's best.

Every face reads a version's or a checkpoint's accuracy and loss through `accuracy` and `loss`, so a
table, a dialog and a JSON listing never disagree on which number they show; both profiles' registries
choose the checkpoint to register through `best_by_searcher`, so a profile never registers another one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlptui.platform.model import Checkpoint

ACCURACY = ("validation_accuracy", "accuracy", "val_accuracy")  # first found wins
LOSS = ("validation_loss", "val_loss", "loss")


def first(metrics: Mapping[str, float], names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in metrics:
            return metrics[name]
    return None


def accuracy(metrics: Mapping[str, float]) -> float | None:
    return first(metrics, ACCURACY)


def loss(metrics: Mapping[str, float]) -> float | None:
    return first(metrics, LOSS)


def best_checkpoint(checkpoints: Sequence[Checkpoint]) -> Checkpoint | None:
    """The highest validation accuracy; ties (and, without any accuracy, every checkpoint) go to the latest."""

    def rank(c: Checkpoint) -> tuple:
        acc = accuracy(c.metrics)
        return (acc is not None, acc if acc is not None else 0.0, c.batch, c.created)

    return max(checkpoints, key=rank, default=None)


def best_by_searcher(config: dict, checkpoints: Sequence[Checkpoint]) -> Checkpoint | None:
    """The experiment's best checkpoint as Determined ranks it: by the searcher metric of its config
    (`smaller_is_better`), ties going to the latest; when no checkpoint has that metric, `best_checkpoint`
    (the highest accuracy, else the latest), on both profiles."""
    searcher = (config or {}).get("searcher") or {}
    metric, smaller = searcher.get("metric"), searcher.get("smaller_is_better", True) is not False
    scored = [c for c in checkpoints if metric in c.metrics]
    if not scored:
        return best_checkpoint(checkpoints)
    sign = 1 if smaller else -1
    return min(scored, key=lambda c: (sign * c.metrics[metric], -c.batch, -c.created))
