"""Drift: is a window of live predictions drawn from the same world as the version's training images?

    result = test_window(reference, embeddings, confidences, seed=last_id)
    result.verdict, result.p_value, result.score          # "stable" or "drifting"

Two two-sample tests between the reference (the summaries of a sample of the version's training
images) and the window (the summaries of the version's last `WINDOW` answered requests), each at
alpha / 2, combined by Bonferroni (p = min(1, 2 min(p1, p2))), so that a window drawn from the
reference's own distribution is called drifting with probability at most alpha:

- embeddings: the maximum mean discrepancy (MMD, Gretton et al. 2012) with a Gaussian kernel on the
  embeddings standardized by the reference, its bandwidth the median squared distance of the pooled
  points (a choice blind to which point is which, so the test stays exact), and its p-value from
  PERMUTATIONS random relabellings of the pooled points: (1 + exceedances) / (1 + permutations), an
  exact level whatever the distribution, for exchangeable points;
- confidences: the Kolmogorov-Smirnov test of the top-class probabilities (scipy's `ks_2samp`; its
  p-value is exact for continuous values and conservative with ties).

The rate holds for one evaluation. A sliding window evaluated every STEP requests looks again and
again at overlapping data: over a long stable stream some evaluations will cross alpha (about alpha
of them), which is why the default alpha is 0.01 and the verdict is the latest window's, with its
p-value shown. `score` is -log10(p), capped at SCORE_CAP: the alarm line is -log10(alpha) = 2.

Pure: numbers in, numbers out; scipy for the KS test, numpy for the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.01  # the false-alarm probability of one evaluated window
WINDOW = 200  # live predictions per window
MIN_WINDOW = 50  # fewer than this: not yet judged
STEP = 50  # a sliding window is evaluated every STEP predictions
PERMUTATIONS = 499  # p-values down to 1/500, below alpha / 2
SCORE_CAP = 10.0
STABLE, DRIFTING, NOT_YET = "stable", "drifting", "not yet"


@dataclass(frozen=True)
class Reference:
    """What the version's training images look like to the model: (n, d) embeddings and n confidences."""

    embeddings: np.ndarray
    confidences: np.ndarray

    def __post_init__(self) -> None:
        e, c = np.asarray(self.embeddings, dtype=float), np.asarray(self.confidences, dtype=float)
        if e.ndim != 2 or c.ndim != 1 or len(e) != len(c) or len(e) < 2:
            raise ValueError("a reference is (n, d) embeddings and n confidences, n >= 2")
        object.__setattr__(self, "embeddings", e)
        object.__setattr__(self, "confidences", c)

    @property
    def size(self) -> int:
        return len(self.confidences)

    def standardize(self, x) -> np.ndarray:
        """Each dimension centred on the reference's mean and divided by its spread (1 where it has none)."""
        mean = self.embeddings.mean(axis=0)
        spread = self.embeddings.std(axis=0)
        return (np.asarray(x, dtype=float) - mean) / np.where(spread > 0, spread, 1.0)


@dataclass(frozen=True)
class DriftResult:
    """One window against the reference."""

    window: int  # predictions in the window
    reference: int  # images in the reference
    mmd: float  # the squared MMD of the embeddings (biased estimate)
    p_embeddings: float
    ks: float  # the KS distance of the confidences
    p_confidences: float
    alpha: float = ALPHA

    @property
    def p_value(self) -> float:
        return min(1.0, 2.0 * min(self.p_embeddings, self.p_confidences))

    @property
    def verdict(self) -> str:
        return DRIFTING if self.p_value < self.alpha else STABLE

    @property
    def score(self) -> float:
        return round(min(SCORE_CAP, -math.log10(max(self.p_value, 10 ** -SCORE_CAP))), 3)

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "p_value": _round(self.p_value), "score": self.score, "window": self.window,
                "reference": self.reference, "alpha": self.alpha, "mmd2": _round(self.mmd),
                "p_embeddings": _round(self.p_embeddings), "ks": _round(self.ks), "p_confidences": _round(self.p_confidences)}


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def mmd_test(x, y, permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[float, float]:
    """(squared MMD, permutation p-value) of samples x (n, d) and y (m, d)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    pooled = np.concatenate([x, y])
    n, total = len(x), len(pooled)
    squares = (pooled**2).sum(axis=1)
    distances = np.maximum(squares[:, None] + squares[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    off = distances[~np.eye(total, dtype=bool)]
    bandwidth = float(np.median(off)) or float(off.mean()) or 1.0
    kernel = np.exp(-distances / bandwidth)
    rng = np.random.default_rng(seed)
    # each row a labelling of the pooled points: +1/n for the first sample, -1/m for the second
    weights = np.empty((permutations + 1, total))
    base = np.concatenate([np.full(n, 1.0 / n), np.full(total - n, -1.0 / (total - n))])
    weights[0] = base
    for row in range(1, permutations + 1):
        weights[row] = base[rng.permutation(total)]
    stats = np.einsum("ij,ij->i", weights @ kernel, weights)
    observed = stats[0]
    exceed = int(np.sum(stats[1:] >= observed - 1e-12 * abs(observed)))
    return float(observed), (1 + exceed) / (1 + permutations)


def ks_test(a, b) -> tuple[float, float]:
    """(KS distance, p-value) of two samples of confidences (scipy's two-sample test, exact where it can be)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return float(result.statistic), float(result.pvalue)


def test_window(reference: Reference, embeddings, confidences, alpha: float = ALPHA,
                permutations: int = PERMUTATIONS, seed: int = 0) -> DriftResult:
    """The window's embeddings (m, d) and confidences (m,) against the reference."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha is a probability between 0 and 1, not {alpha}")
    e = np.asarray(embeddings, dtype=float)
    c = np.asarray(confidences, dtype=float)
    if e.ndim != 2 or e.shape[1] != reference.embeddings.shape[1] or len(e) != len(c):
        raise ValueError("the window's embeddings do not have the reference's dimensions")
    if len(c) < 2:
        raise ValueError("a window holds at least 2 predictions")
    mmd, p_mmd = mmd_test(reference.standardize(reference.embeddings), reference.standardize(e), permutations, seed)
    ks, p_ks = ks_test(reference.confidences, c)
    return DriftResult(window=len(c), reference=reference.size, mmd=mmd, p_embeddings=p_mmd, ks=ks,
                       p_confidences=p_ks, alpha=alpha)


def window_ends(count: int, first_new: int, judged: bool = False, step: int = STEP, most: int = 10) -> list[int]:
    """Where the windows to judge end, as exclusive indices into `count` predictions (oldest first) of which those from
    `first_new` on are new: the newest, then every `step` back while a window still ends on a new one and holds
    MIN_WINDOW, at most `most`, oldest first. None before MIN_WINDOW predictions, and none while fewer than `step`
    are new since a window was `judged`. A window holds the WINDOW predictions before its end (all there are, fewer)."""
    fresh = count - first_new
    if count < MIN_WINDOW or fresh <= 0 or (judged and fresh < step):
        return []
    return sorted(e for e in (count - j * step for j in range(most)) if e > first_new and e >= MIN_WINDOW)
