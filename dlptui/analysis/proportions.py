"""Two Bernoulli streams (error rate, accuracy) and one (a shadow's agreement): always-valid intervals.

The difference of two rates, canary minus primary, D = x1/n1 - x2/n2. At any number of requests,
whatever share of the traffic each version had (traffic steps included), D has the canonical
joint distribution of a sequential comparison (Jennison and Turnbull, "Group Sequential Methods",
2000, ch. 3): (D - theta) / v is a Brownian motion in the information 1/v. Robbins' normal mixture
over it (`mixtures.normal_mixture_log`, the two-sample mSPRT of Johari, Pekelis and Walsh) is a
test martingale; the differences theta it does not reject at 1/alpha form a confidence sequence,
valid at every request at once. Three choices make it hold where canaries live (rare errors, a
small canary share); each was measured in simulation (tests/test_analysis_verdicts.py):

- the variance at each theta is the one at the maximum-likelihood rates that obey theta
  (Farrington and Manning, Stat. Med. 1990), and the squared distance read by the mixture is the
  likelihood-ratio deviance (equal to (D - theta)^2 / v for Gaussian data): the plain plug-in
  form is sure of itself after a lucky run of successes, and an error count's skew made equal
  canaries `worse` several times as often as `better`;
- no evidence (M = 1) until each version expects MIN_EXPECTED errors and as many successes at the
  pooled rate (the textbook rule for a binomial): before that one or two early errors on a handful
  of canary requests read as `worse`;
- the interval is intersected with an exact one (each version's rate by its beta-binomial
  sequence at EXACT_SHARE * alpha / 2, `rate_interval`), the normal one taking the rest of alpha,
  so that a service with no errors at all still gets `no difference`.

With estimated variances the normal part is asymptotically valid (Waudby-Smith, Arnold, Wu, Howard
and Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences", Ann. Statist.
2024); the exact part is valid at any size.

Arrays in, arrays out (a simulation evaluates many looks at once): arm 1 is the canary, arm 2 the
primary.
"""

from __future__ import annotations

import math

import numpy as np

from dlptui.analysis.mixtures import beta_binomial_constant, normal_mixture_log

BISECTIONS = 34  # a difference of rates to about 1e-10
NEWTON_STEPS = 14
MAIN_WEIGHT = 0.9  # the mixture's weight on differences of about the margin (bench/verdicts.py)
MIN_EXPECTED = 5  # events and non-events each version must expect before its rate counts as evidence
JEFFREYS = (0.5, 0.5)  # the Beta prior of the exact sequences of one rate
EXACT_SHARE = 0.2  # the share of alpha spent on the exact per-version sequences of difference_interval


def prior(delta: float) -> tuple[np.ndarray, np.ndarray]:
    """(taus, weights) of the normal mixture for a margin delta: most weight on true differences
    of about delta (where `no difference` and a small `worse` are decided), the rest spread over
    2, 4, 8, ... times delta below 1 (a difference of two rates is at most 1), so that a canary
    far worse is stopped within a few hundred requests rather than a thousand."""
    big = [delta * 2.0**k for k in range(1, 12) if delta * 2.0**k < 1]
    if not big:
        return np.asarray([delta]), np.asarray([1.0])
    return np.asarray([delta, *big]), np.asarray([MAIN_WEIGHT] + [(1 - MAIN_WEIGHT) / len(big)] * len(big))


def _arrays(*values):
    return [np.asarray(v, dtype=float) for v in values]


def restricted_rates(x1, n1, x2, n2, d):
    """The maximum-likelihood (p1, p2) with p1 - p2 = d: the root in [0, 1] of the likelihood
    equation's cubic, in closed form (Farrington and Manning 1990, Miettinen and Nurminen 1985)."""
    x1, n1, x2, n2, d = _arrays(x1, n1, x2, n2, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = x1 / n1, x2 / n2
        theta = n2 / n1
        a = 1 + theta
        b = -(1 + theta + r1 + theta * r2 + d * (theta + 2))
        c = d * d + d * (2 * r1 + theta + 1) + r1 + theta * r2
        e = -r1 * d * (1 + d)
        v = b**3 / (27 * a**3) - b * c / (6 * a * a) + e / (2 * a)
        u = np.where(v < 0, -1.0, 1.0) * np.sqrt(np.maximum(b * b / (9 * a * a) - c / (3 * a), 0.0))
        cosine = np.clip(np.where(u == 0, 0.0, v / u**3), -1.0, 1.0)
        w = (math.pi + np.arccos(cosine)) / 3
        p1 = np.clip(2 * u * np.cos(w) - b / (3 * a), np.maximum(d, 0.0), np.minimum(1.0, 1.0 + d))
    return p1, p1 - d


def enough(x1, n1, x2, n2) -> np.ndarray:
    """Whether the normal approximation may be used: each version expects at least MIN_EXPECTED
    events and as many non-events at the pooled rate (the textbook rule for a binomial). Before
    that, a run of one or two early errors on a few canary requests would read as `worse`."""
    x1, n1, x2, n2 = _arrays(x1, n1, x2, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
    cells = np.minimum(np.minimum(n1 * pooled, n1 * (1 - pooled)), np.minimum(n2 * pooled, n2 * (1 - pooled)))
    return np.nan_to_num(cells, nan=0.0) >= MIN_EXPECTED


def _loglik(x, n, p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(p)) + np.where(n - x == 0, 0.0, (n - x) * np.log1p(-p))


def difference_log_evidence(x1, n1, x2, n2, theta, prior) -> np.ndarray:
    """log M at the hypothesis p1 - p2 = theta: 0 (no evidence) until `enough`.

    The mixture reads the squared distance of the estimate from theta in standard errors; here it
    is the likelihood-ratio deviance against the restricted rates, which equals (D - theta)^2 / v
    for Gaussian data and keeps the two tails as rare as each other when errors are few (the
    plain score form, skewed like a Poisson count, called equal canaries worse twice to five
    times as often as better)."""
    x1, n1, x2, n2, theta = _arrays(x1, n1, x2, n2, theta)
    p1, p2 = restricted_rates(x1, n1, x2, n2, theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        deviance = 2 * (_loglik(x1, n1, x1 / n1) + _loglik(x2, n2, x2 / n2) - _loglik(x1, n1, p1) - _loglik(x2, n2, p2))
    deviance = np.maximum(np.nan_to_num(deviance, nan=0.0, posinf=np.inf), 0.0)
    degenerate = ~(variance > 0)  # theta at an end: only data exactly there are not rejected
    safe = np.where(degenerate, 1.0, variance)
    with np.errstate(invalid="ignore"):
        evidence = normal_mixture_log(np.sqrt(deviance * safe), safe, *prior)
    evidence = np.where(degenerate, np.where(deviance > 0, np.inf, 0.0), evidence)
    return np.where(enough(x1, n1, x2, n2), evidence, 0.0)


def _normal_tests(x1, n1, x2, n2, delta: float, alpha: float, prior):
    """Where the normal-mixture sequence lies, from three tests: (low > 0, high < 0, low > -delta,
    high < delta). The sequence excludes 0 when the test at 0 rejects (on the estimate's side of 0),
    and lies above -delta when the test at -delta rejects and the estimate is above it."""
    limit = math.log(1 / alpha)
    at = lambda theta: difference_log_evidence(x1, n1, x2, n2, np.full(x1.shape, theta), prior) >= limit  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where((n1 > 0) & (n2 > 0), x1 / n1 - x2 / n2, 0.0)
    apart = at(0.0)
    return apart & (estimate > 0), apart & (estimate < 0), at(-delta) & (estimate > -delta), at(delta) & (estimate < delta)


def _normal_interval(x1, n1, x2, n2, alpha: float, prior):
    limit = math.log(1 / alpha)
    empty = (n1 <= 0) | (n2 <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(empty, np.nan, x1 / n1 - x2 / n2)
    centre = np.where(empty, 0.0, estimate)
    ends = []
    for edge in (-1.0, 1.0):
        inside, outside = centre.copy(), np.full_like(centre, edge)
        for _ in range(BISECTIONS):
            mid = (inside + outside) / 2
            rejected = difference_log_evidence(x1, n1, x2, n2, mid, prior) >= limit
            outside = np.where(rejected, mid, outside)
            inside = np.where(rejected, inside, mid)
        # the outer end (never narrower than the exact set), unless even the edge is not rejected
        edge_kept = difference_log_evidence(x1, n1, x2, n2, np.full_like(centre, edge), prior) < limit
        ends.append(np.where(edge_kept | empty, edge, outside))
    return estimate, ends[0], ends[1]


def _exact_interval(x1, n1, x2, n2, alpha: float):
    """Each version's rate by its exact sequence at alpha / 2: the difference lies between."""
    _, low1, high1 = rate_interval(x1, n1, alpha / 2)
    _, low2, high2 = rate_interval(x2, n2, alpha / 2)
    return low1 - high2, high1 - low2


def difference_outcome(x1, n1, x2, n2, delta: float, alpha: float, prior, higher_is_better: bool) -> np.ndarray:
    """The codes of `verdicts.classify` for `difference_interval`, computed from three tests of the
    normal mixture (instead of its some 70 evaluations for the interval's ends) and the exact
    sequences: what a simulation evaluates at every look."""
    x1, n1, x2, n2 = np.broadcast_arrays(*_arrays(x1, n1, x2, n2))
    above, below, over_margin, under_margin = _normal_tests(x1, n1, x2, n2, delta, (1 - EXACT_SHARE) * alpha, prior)
    low, high = _exact_interval(x1, n1, x2, n2, EXACT_SHARE * alpha)
    above, below = above | (low > 0), below | (high < 0)
    same = (over_margin | (low > -delta)) & (under_margin | (high < delta))
    better, worse = (above, below) if higher_is_better else (below, above)
    return np.where(same, 3, np.where(worse, 2, np.where(better, 1, 0)))


def difference_interval(x1, n1, x2, n2, alpha: float, prior):
    """(estimate, low, high) of p1 - p2 at this look: the intersection of the normal-mixture
    sequence at (1 - EXACT_SHARE) alpha and the exact per-version one at EXACT_SHARE alpha, so
    that both together miss at most alpha. The exact one decides where errors are too few for the
    normal approximation: no errors on either version in thousands of requests is `no difference`.
    (nan, -1, 1) while a version has no observation."""
    x1, n1, x2, n2 = np.broadcast_arrays(*_arrays(x1, n1, x2, n2))
    estimate, low, high = _normal_interval(x1, n1, x2, n2, (1 - EXACT_SHARE) * alpha, prior)
    exact_low, exact_high = _exact_interval(x1, n1, x2, n2, EXACT_SHARE * alpha)
    return estimate, np.maximum(low, exact_low), np.minimum(high, exact_high)


def rate_interval(events, trials, alpha: float):
    """(rate, low, high) of one Bernoulli stream (a version's rate, a shadow's agreement): the exact
    confidence sequence of the beta-binomial mixture with Jeffreys' prior, {p : log M(p) <
    log(1/alpha)}, valid at every look for any number of observations. (nan, 0, 1) when empty.

    log M is convex in log p (and in log(1 - p)), so Newton's method from far outside each end
    closes in on it from outside: the ends returned are never inside the exact ones."""
    s, t = np.broadcast_arrays(*_arrays(events, trials))
    a, b = JEFFREYS
    limit = math.log(1 / alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(t > 0, s / t, np.nan)
    excess = beta_binomial_constant(s, t, a, b) - limit  # log M - limit = excess - s log p - (t - s) log(1 - p)
    ends = []
    for hits, misses, edge in ((s, t - s, 0.0), (t - s, s, 1.0)):
        # in u = log p for the low end (log(1 - p) for the high end, the counts swapped)
        u = np.full(s.shape, -700.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for _ in range(NEWTON_STEPS):
                rest = -np.expm1(u)  # 1 - e^u
                value = excess - hits * u - misses * np.log(rest)
                slope = -hits + misses * np.exp(u) / rest
                u = np.where(value > 0, u - value / slope, u)
            end = np.exp(u)
        kept = (hits == 0) | (t <= 0)  # log M stays below the limit all the way to the edge
        ends.append(np.where(kept, edge, end if edge == 0.0 else 1 - end))
    return rate, ends[0], ends[1]
