"""Which metric means what: the names the trial, Determined and older runs give accuracy and loss.

Every face reads a version's or a checkpoint's accuracy and loss through these two functions,
so a table, a dialog and a JSON listing never disagree on which number they show.
"""

from __future__ import annotations

from collections.abc import Mapping

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
