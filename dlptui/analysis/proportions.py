"""Two Bernoulli streams (error rate, accuracy) and one (a shadow's agreement): always-valid intervals.

The difference of two rates, canary minus primary. Its estimate D = x1/n1 - x2/n2 has, at any
number of requests and whatever share of the traffic each arm had got, the canonical joint
distribution of a sequential comparison (Jennison and Turnbull, "Group Sequential Methods",
2000, ch. 3): (D - theta) / v is a Brownian motion in the information 1/v. Robbins' normal mixture
over that motion (`mixtures.normal_mixture_log`) is the two-sample mSPRT of Johari et al.; the set
of differences theta it does not reject at 1/alpha is a confidence sequence, valid at every
request at once. The variance v is not known: at each hypothesised theta it is taken at the
maximum-likelihood rates that obey theta (Farrington and Manning, Stat. Med. 1990), the score form
whose coverage holds up when errors are rare (1 % errors, a few dozen canary requests), where the
plain plug-in (Wald) variance is zero after a lucky run of successes and calls the canary better
at once. With plug-in variances the guarantee is asymptotic (Waudby-Smith, Arnold, Wu, Howard and
Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences", Ann. Statist.
2024); the simulations in tests/test_analysis_verdicts.py measure it at the rates that matter.

Arrays in, arrays out: arm 1 is the canary, arm 2 the primary.
"""

from __future__ import annotations

import math

import numpy as np

from dlptui.analysis.mixtures import beta_binomial_constant, beta_binomial_log, normal_mixture_halfwidth, normal_mixture_log

BISECTIONS = 34  # a difference of rates to about 1e-10
MAIN_WEIGHT = 0.9  # the mixture's weight on differences of about the margin (bench/verdicts.py)
MIN_EXPECTED = 5  # events and non-events each version must expect before its rate counts as evidence
AGREEMENT_PRIOR = (0.5, 0.5)  # Jeffreys' Beta prior over a shadow's agreement rate


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


def difference_log_evidence(x1, n1, x2, n2, theta, prior) -> np.ndarray:
    """log M at the hypothesis p1 - p2 = theta: 0 (no evidence) until `enough`."""
    x1, n1, x2, n2, theta = _arrays(x1, n1, x2, n2, theta)
    p1, p2 = restricted_rates(x1, n1, x2, n2, theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        gap = x1 / n1 - x2 / n2 - theta
    usable = enough(x1, n1, x2, n2)
    return np.where(usable, normal_mixture_log(np.where(usable, gap, 0.0), np.where(usable, variance, np.inf), *prior), 0.0)


def difference_outcome(x1, n1, x2, n2, delta: float, alpha: float, prior, higher_is_better: bool) -> np.ndarray:
    """The verdict codes of `verdicts.classify` straight from three tests: the interval excludes 0
    when the test at 0 rejects (worse or better by the estimate's sign), and lies inside (-delta,
    delta) when the tests at both margins reject and the estimate lies between them. The same as
    classifying `difference_interval`, at 3 evaluations instead of some 70."""
    x1, n1, x2, n2 = np.broadcast_arrays(*_arrays(x1, n1, x2, n2))
    limit = math.log(1 / alpha)
    at = lambda theta: difference_log_evidence(x1, n1, x2, n2, np.full(x1.shape, theta), prior) >= limit  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where((n1 > 0) & (n2 > 0), x1 / n1 - x2 / n2, 0.0)
    apart = at(0.0)
    up = estimate > 0
    better, worse = (apart & up, apart & ~up) if higher_is_better else (apart & ~up, apart & up)
    same = at(-delta) & at(delta) & (np.abs(estimate) < delta)
    return np.where(worse, 2, np.where(better, 1, np.where(same, 3, 0)))


def difference_interval(x1, n1, x2, n2, alpha: float, prior):
    """(estimate, low, high) of p1 - p2: the confidence sequence at this look, as wide as the
    bisection's outer ends (never narrower than the exact set). (nan, -1, 1) while an arm is empty."""
    x1, n1, x2, n2 = np.broadcast_arrays(*_arrays(x1, n1, x2, n2))
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
        # the outer end, unless even the edge itself is not rejected
        edge_kept = difference_log_evidence(x1, n1, x2, n2, np.full_like(centre, edge), prior) < limit
        ends.append(np.where(edge_kept | empty, edge, outside))
    return estimate, ends[0], ends[1]


def projected_halfwidth(rate1, n1, rate2, n2, alpha: float, prior):
    """The half-width the interval would have at n1 and n2 observations if the rates were these
    (the plain normal-mixture width at their variance): what `not yet` estimates from."""
    rate1, n1, rate2, n2 = _arrays(rate1, n1, rate2, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = rate1 * (1 - rate1) / n1 + rate2 * (1 - rate2) / n2
    return normal_mixture_halfwidth(variance, alpha, *prior)


def agreement_interval(agreed, paired, alpha: float):
    """(rate, low, high) of one Bernoulli stream (a shadow's agreement): the exact confidence
    sequence of the beta-binomial mixture with Jeffreys' prior, {p : log M(p) < log(1/alpha)}."""
    s, t = np.broadcast_arrays(*_arrays(agreed, paired))
    a, b = AGREEMENT_PRIOR
    limit = math.log(1 / alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(t > 0, s / t, np.nan)
    centre = np.where(t > 0, rate, 0.5)
    constant = beta_binomial_constant(s, t, a, b)
    ends = []
    for edge in (0.0, 1.0):
        inside, outside = centre.copy(), np.full_like(centre, edge)
        for _ in range(BISECTIONS):
            mid = (inside + outside) / 2
            rejected = beta_binomial_log(s, t, mid, a, b, constant) >= limit
            outside = np.where(rejected, mid, outside)
            inside = np.where(rejected, inside, mid)
        edge_kept = beta_binomial_log(s, t, np.full_like(centre, edge), a, b, constant) < limit
        ends.append(np.where(edge_kept | (t <= 0), edge, outside))
    return rate, ends[0], ends[1]
