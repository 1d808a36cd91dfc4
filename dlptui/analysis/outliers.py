"""Outliers: one request whose embedding lies far from every training image.

    rule = outlier_rule(reference)                 # the threshold, from the reference alone
    scores = outlier_scores(reference, embeddings) # one per request
    flagged = scores > rule.threshold

The score of a request is the distance from its embedding (standardized by the reference, as the drift
test does) to its K-th nearest neighbour among the reference's embeddings. The threshold is a quantile
of the same score of each reference image against the others (leave one out): the
ceil((n + 1) QUANTILE)-th smallest of the n, the conformal rank, so that a request drawn like the
training images is flagged with probability at most 1 - QUANTILE (1 %), whatever the distribution.
A window of many outliers is drift as well; an outlier alone is a request to look at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlptui.analysis.drift import Reference

K = 5  # the neighbour whose distance is the score: the 5th, so that one near duplicate does not hide an outlier
QUANTILE = 0.99


@dataclass(frozen=True)
class OutlierRule:
    k: int
    quantile: float
    threshold: float  # a score above this is an outlier

    def to_json(self) -> dict:
        return {"k": self.k, "quantile": self.quantile, "threshold": round(self.threshold, 4)}


def _kth_distance(reference: Reference, points: np.ndarray, k: int, leave_out_self: bool) -> np.ndarray:
    base = reference.standardize(reference.embeddings)
    x = reference.standardize(points)
    squares = np.maximum((x**2).sum(1)[:, None] + (base**2).sum(1)[None, :] - 2.0 * x @ base.T, 0.0)
    if leave_out_self:
        np.fill_diagonal(squares, np.inf)
    kth = min(k, base.shape[0] - (1 if leave_out_self else 0))
    return np.sqrt(np.partition(squares, kth - 1, axis=1)[:, kth - 1])


def outlier_rule(reference: Reference, k: int = K, quantile: float = QUANTILE) -> OutlierRule:
    """The threshold from the reference's own leave-one-out scores (at least K + 2 images)."""
    if not 0 < quantile < 1:
        raise ValueError(f"the quantile is between 0 and 1, not {quantile}")
    n = reference.size
    if n < k + 2:
        raise ValueError(f"a reference of {n} images is too small for the {k}th neighbour's distance")
    own = np.sort(_kth_distance(reference, reference.embeddings, k, leave_out_self=True))
    rank = min(n, math.ceil((n + 1) * quantile))
    return OutlierRule(k=k, quantile=quantile, threshold=float(own[rank - 1]))


def outlier_scores(reference: Reference, embeddings, k: int = K) -> np.ndarray:
    """Each request's distance to its k-th nearest reference embedding (in the reference's standardized units)."""
    e = np.asarray(embeddings, dtype=float)
    if e.ndim != 2 or e.shape[1] != reference.embeddings.shape[1]:
        raise ValueError("the embeddings do not have the reference's dimensions")
    if not len(e):
        return np.zeros(0)
    return _kth_distance(reference, e, k, leave_out_self=False)
