"""Time-uniform boundaries: the two test martingales every verdict in this package is read from.

Both are mixtures of likelihood ratios, so each is a nonnegative martingale with expectation 1
under its hypothesis; by Ville's inequality it ever reaches 1/alpha with probability at most
alpha, however often it is looked at and whenever one stops (Robbins 1970; Howard, Ramdas,
McAuliffe and Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
Ann. Statist. 2021). A confidence sequence is the set of hypotheses whose martingale is still
below 1/alpha.

- `normal_mixture_log`: a statistic that is (asymptotically) Gaussian with the variance given,
  mixed over its mean with a N(0, tau^2) prior (the mSPRT of Johari, Pekelis and Walsh, "Always
  valid inference", Oper. Res. 2022). Used for the difference of two rates.
- `beta_binomial_log`: Bernoulli(p) observations, mixed over the rate with a Beta(a, b) prior.
  Exact for any number of observations. Used for a quantile's ranks (latency) and for a shadow's
  agreement.

Everything here takes and returns numpy arrays (or scalars), so that a simulation evaluates a
look of many runs at once with the very code a verdict uses.
"""

from __future__ import annotations

import math

import numpy as np

_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def lgamma(x) -> np.ndarray:
    return np.asarray(_lgamma(np.asarray(x, dtype=float)), dtype=float)


def lbeta(a, b) -> np.ndarray:
    return lgamma(a) + lgamma(b) - lgamma(np.asarray(a, dtype=float) + b)


def _normal_mixture_log_one(gap, v, tau: float) -> np.ndarray:
    t2 = float(tau) ** 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return -0.5 * np.log1p(t2 / v) + t2 * gap * gap / (2 * v * (v + t2))


def normal_mixture_log(gap, variance, taus, weights=None) -> np.ndarray:
    """log M for an estimate `gap` away from the hypothesis, with sampling variance `variance`.

    For one prior scale tau, M = sqrt(v / (v + tau^2)) exp(tau^2 gap^2 / (2 v (v + tau^2))); with
    several, M is their average with `weights` (summing to 1; equal by default), still a test
    martingale: a small tau is quick to show a small difference (or none), a large one a large
    difference. No information (v infinite) gives M = 1; no noise left (v = 0) gives M infinite
    unless the gap is 0."""
    gap = np.asarray(gap, dtype=float)
    v = np.asarray(variance, dtype=float)
    taus = np.atleast_1d(np.asarray(taus, dtype=float))
    weights = np.full(len(taus), 1 / len(taus)) if weights is None else np.asarray(weights, dtype=float)
    parts = [np.log(w) + _normal_mixture_log_one(gap, v, tau) for tau, w in zip(taus, weights)]
    with np.errstate(invalid="ignore"):
        out = parts[0] if len(parts) == 1 else np.logaddexp.reduce(np.stack(parts), axis=0)
    out = np.where(v <= 0, np.where(gap == 0, 0.0, np.inf), out)
    return np.where(np.isinf(v), 0.0, out)


def beta_binomial_log(successes, trials, p, a, b, constant=None) -> np.ndarray:
    """log M of `successes` in `trials` Bernoulli(p) draws, mixed over the rate with Beta(a, b).

    M = B(a + s, b + t - s) / (B(a, b) p^s (1 - p)^(t - s)), a martingale under rate p. The part
    that does not depend on p (`beta_binomial_constant`) may be passed in when p varies alone."""
    s = np.asarray(successes, dtype=float)
    t = np.asarray(trials, dtype=float)
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        hits = np.where(s == 0, 0.0, s * np.log(p))
        misses = np.where(t - s == 0, 0.0, (t - s) * np.log1p(-p))
    if constant is None:
        constant = beta_binomial_constant(s, t, a, b)
    return constant - hits - misses


def beta_binomial_constant(successes, trials, a, b) -> np.ndarray:
    s, t = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    return lbeta(a + s, b + t - s) - lbeta(a, b)


def rank_bounds(trials, p: float, alpha: float, concentration: float) -> tuple[np.ndarray, np.ndarray]:
    """(k_lo, k_hi): the counts N of observations at or below the true p-quantile that the
    beta-binomial test (prior Beta(c p, c (1 - p))) does not reject after `trials` observations.

    Under continuous data, N is Binomial(trials, p), so with probability 1 - alpha, at every
    number of observations at once, k_lo <= N <= k_hi: the quantile lies between the k_lo-th and
    the (k_hi + 1)-th smallest observation (Howard and Ramdas, "Sequential estimation of
    quantiles with applications to A/B-testing and best-arm identification", Bernoulli 2022).
    log M is convex in N, so the counts not rejected are one run of integers around t p."""
    t = np.atleast_1d(np.asarray(trials, dtype=np.int64))
    a, b = concentration * p, concentration * (1 - p)
    limit = math.log(1 / alpha)

    def rejected(n):
        return beta_binomial_log(n, t, p, a, b) >= limit

    middle = np.clip(np.rint(t * p).astype(np.int64), 0, t)
    steps = max(1, int(t.max(initial=1))).bit_length() + 1
    # below: the smallest N not rejected in [0, middle]
    lo, hi = np.zeros_like(t), middle.copy()
    k_lo = np.where(rejected(lo), -1, 0)
    for _ in range(steps):
        mid = (lo + hi) // 2
        r = rejected(mid)
        lo, hi = np.where(r, mid, lo), np.where(r, hi, mid)
    k_lo = np.where(k_lo == 0, 0, hi)
    # above: the largest N not rejected in [middle, t]
    lo, hi = middle.copy(), t.copy()
    top_ok = ~rejected(hi)
    for _ in range(steps):
        mid = (lo + hi + 1) // 2
        r = rejected(mid)
        lo, hi = np.where(r, lo, mid), np.where(r, mid - 1, hi)
    k_hi = np.where(top_ok, t, lo)
    return k_lo, k_hi
