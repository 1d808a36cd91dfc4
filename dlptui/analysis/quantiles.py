"""Latency quantiles (p50, p95): an exact, distribution-free confidence sequence per arm.

Method (Howard and Ramdas 2022, Theorem 1 with a beta-binomial mixture): at the true
p-quantile q of an arm's latency, each request is at or below q with probability p, whatever the
distribution, so the count N_t of the first t requests at or below q is a Binomial(t, p) walk. The
beta-binomial mixture martingale (`mixtures.rank_bounds`) keeps N_t between k_lo(t) and k_hi(t)
at every t at once with probability 1 - alpha; then q lies between the k_lo-th and the
(k_hi + 1)-th smallest latency seen. No normal approximation, no assumption on the shape of the
latencies (ties only make it more conservative), valid under continuous monitoring. The two arms'
sequences, each at alpha / 2, bound the ratio canary / primary (a union bound: exact too).

An arm is given either as its latencies (the prediction log's) or as a histogram (Envoy's or
Prometheus's buckets): an order statistic that falls in a bucket is bounded by that bucket's
edges, so a histogram gives a wider but still valid interval.

Arrays in, arrays out, so that a simulation computes many looks at once.
"""

from __future__ import annotations

import numpy as np

from dlptui.analysis.mixtures import rank_bounds

# the Beta prior's weight, in observations: the interval is narrowest from about this many requests
# per version on; 50 to 100 decided fastest in the simulations (a p50 or p95 20 % slower, equal ones)
CONCENTRATION = 100.0


def cumulative(lower, upper, counts):
    """A sorted arm as buckets: (lower edges, upper edges, cumulative counts). Samples are
    buckets of one with equal edges."""
    return np.asarray(lower, dtype=float), np.asarray(upper, dtype=float), np.cumsum(np.asarray(counts), axis=-1)


def from_samples(values):
    ordered = np.sort(np.asarray(values, dtype=float))
    return ordered, ordered, np.arange(1, len(ordered) + 1)


def from_histogram(bounds, counts):
    """Buckets (previous bound, bound], the first from 0: Envoy's and Prometheus's `le` buckets."""
    upper = np.asarray(bounds, dtype=float)
    lower = np.concatenate([[0.0], upper[:-1]])
    return lower, upper, np.cumsum(np.asarray(counts, dtype=np.int64), axis=-1)


def _edges(lower, upper, cum, index):
    if cum.ndim == 1:  # one arm, any shape of ranks
        return lower[index], upper[index]
    pick = lambda edges: np.take_along_axis(np.broadcast_to(edges, cum.shape), index[..., None], -1)[..., 0]  # noqa: E731
    return pick(lower), pick(upper)


def order_bounds(lower, upper, cum, k):
    """(low, high) edges of the k-th smallest observation (over cum's last axis); k < 1 gives 0,
    k > n gives inf. One arm takes ranks of any shape; many arms (cum of shape (..., buckets)) take
    one rank each (shape (...))."""
    k = np.asarray(k)
    n = cum[..., -1]
    wanted = np.clip(k, 1, None)
    if cum.ndim == 1:
        index = np.searchsorted(cum, wanted, side="left")
    else:
        index = (cum < wanted[..., None]).sum(axis=-1)
    low, high = _edges(lower, upper, cum, np.minimum(index, cum.shape[-1] - 1))
    over = k > n
    return np.where(over, np.inf, np.where(k < 1, 0.0, low)), np.where(over, np.inf, high)


def estimate(lower, upper, cum, p: float):
    """The sample p-quantile: the ceil(n p)-th smallest, taken in its bucket's middle (nan if empty)."""
    n = cum[..., -1]
    k = np.maximum(np.ceil(n * p), 1)
    low, high = order_bounds(lower, upper, cum, k)
    high = np.where(np.isinf(high), low, high)
    return np.where(n > 0, (low + high) / 2, np.nan)


def quantile_interval(lower, upper, cum, p: float, alpha: float, concentration: float | None = None):
    """(low, high) bounds on the arm's true p-quantile, valid at every look at once at level alpha."""
    n = cum[..., -1]
    sizes, where = np.unique(np.maximum(n, 1), return_inverse=True)  # the bounds depend on n alone
    k_lo, k_hi = rank_bounds(sizes, p, alpha, concentration or CONCENTRATION)
    k_lo, k_hi = k_lo[where].reshape(np.shape(n)), k_hi[where].reshape(np.shape(n))
    k_lo = np.where(n > 0, k_lo, 0)
    k_hi = np.where(n > 0, k_hi, 0)
    low, _ = order_bounds(lower, upper, cum, k_lo)
    _, high = order_bounds(lower, upper, cum, k_hi + 1)
    return np.where(n > 0, low, 0.0), np.where(n > 0, high, np.inf)


def ratio_interval(primary, canary, p: float, alpha: float, concentration: float | None = None):
    """(estimate, low, high) of canary / primary - 1 for the p-quantile: each arm at alpha / 2."""
    a_low, a_high = quantile_interval(*primary, p, alpha / 2, concentration)
    b_low, b_high = quantile_interval(*canary, p, alpha / 2, concentration)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = estimate(*canary, p) / estimate(*primary, p) - 1
        low = np.where(np.isinf(a_high), -1.0, b_low / a_high - 1)
        high = np.where(a_low > 0, b_high / a_low - 1, np.inf)
    return point, low, high
