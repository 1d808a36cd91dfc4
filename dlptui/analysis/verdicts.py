"""A verdict per metric for a canary against its primary, and a shadow's agreement.

Each verdict reads an always-valid interval of the effect (canary minus primary for a rate,
canary / primary - 1 for a latency quantile): `worse` or `better` when the interval lies wholly on
one side of 0, `no difference` when it lies wholly inside (-delta, +delta), `not yet` otherwise.
`No difference` wins when both hold (an interval of +0.1 % to +5.5 % with a 10 % margin): the
margin is what the person said does not matter; the effect and its interval still show the slight
difference. Worse wins over better (an empty intersection, in theory). Because the interval covers
the true effect at every look at once with probability 1 - alpha, a verdict read at any moment,
as often as one likes, is wrong with probability at most alpha. How the intervals are built:
`proportions` (rates) and `quantiles` (latency).

`not yet: ~N more` is an estimate, not a promise: the number of further requests (both versions
together, at the current traffic split) after which the interval would decide if every future
request looked like those seen so far (the same rates; the same latency distributions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from dlptui.analysis import proportions, quantiles, wording
from dlptui.analysis.metrics import METRICS, Metric
from dlptui.analysis.mixtures import rank_bounds
from dlptui.errors import InvalidInput

FUTURE = np.unique(np.rint(10 ** np.linspace(0, 9, 271)).astype(np.int64))  # 'N more' candidates, 8 % apart


class Outcome(str, Enum):
    BETTER = "better"
    WORSE = "worse"
    SAME = "no difference"
    NOT_YET = "not yet"


CODES = (Outcome.NOT_YET, Outcome.BETTER, Outcome.WORSE, Outcome.SAME)  # classify()'s codes


@dataclass(frozen=True)
class Counts:
    """Events among trials of one version: errors among valid requests, or right answers among
    predictions that got ground-truth feedback. Counted since the canary started."""

    events: int
    trials: int

    def __post_init__(self):
        for name in ("events", "trials"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"The {name} of a count must be a whole number of at least 0, not {value!r}.")
        if self.events > self.trials:
            raise InvalidInput(f"A count cannot have more events ({self.events}) than trials ({self.trials}).")


@dataclass(frozen=True, eq=False)
class Latencies:
    """One version's request latencies in ms since the canary started: either the samples (the
    prediction log's) or a histogram: `bounds` the buckets' upper edges (Envoy's or Prometheus's
    `le`, the first bucket from 0, the last may be inf), `counts` the requests in each bucket."""

    samples: tuple[float, ...] | np.ndarray = ()
    bounds: tuple[float, ...] | np.ndarray = ()
    counts: tuple[int, ...] | np.ndarray = ()

    def __post_init__(self):
        samples, bounds, counts = (np.asarray(x, dtype=float) for x in (self.samples, self.bounds, self.counts))
        if len(samples) and len(bounds):
            raise InvalidInput("Latencies are either samples or a histogram, not both.")
        if len(samples) and not (np.isfinite(samples).all() and (samples >= 0).all()):
            raise InvalidInput("A latency must be a finite number of milliseconds of at least 0.")
        if len(bounds) != len(counts):
            raise InvalidInput(f"A latency histogram needs a count per bucket: {len(bounds)} bounds, {len(counts)} counts.")
        if len(bounds) and ((np.diff(bounds) <= 0).any() or bounds[0] <= 0 or np.isnan(bounds).any()):
            raise InvalidInput("A latency histogram's bucket bounds must rise from above 0.")
        if len(counts) and ((counts < 0).any() or (counts != np.floor(counts)).any()):
            raise InvalidInput("A latency histogram's counts must be whole numbers of at least 0.")

    @property
    def n(self) -> int:
        return int(np.sum(self.counts)) if len(self.bounds) else len(self.samples)

    def arm(self):
        """(lower edges, upper edges, cumulative counts) for `quantiles`."""
        if self.n == 0:  # one empty bucket
            return np.zeros(1), np.full(1, np.inf), np.zeros(1, dtype=np.int64)
        if len(self.bounds):
            return quantiles.from_histogram(self.bounds, self.counts)
        return quantiles.from_samples(self.samples)


@dataclass(frozen=True)
class Arm:
    """One version's numbers, since the canary started (both versions over the same period)."""

    requests: int  # valid requests it answered
    errors: int  # of them, those it answered with a 4xx or 5xx
    latencies: Latencies | None = None
    feedback: Counts | None = None  # right answers among its predictions that got ground truth

    def __post_init__(self):
        Counts(self.errors, self.requests)  # the same checks, the same sentences


@dataclass(frozen=True)
class Verdict:
    metric: str  # a name of metrics.METRICS
    outcome: Outcome
    primary: float | None  # the primary's estimate: a rate, or ms
    canary: float | None
    effect: float | None  # canary - primary (rates) or canary / primary - 1 (latency)
    low: float  # the always-valid interval of the effect (may be -inf/inf early on)
    high: float
    delta: float
    alpha: float
    primary_n: int
    canary_n: int
    more: int | None = None  # not yet: about this many more (see the module's docstring)
    guarded: bool = True

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]

    @property
    def label(self) -> str:
        """`worse`, `no difference within ±0.50 points`, `not yet: ~4,800 more requests`."""
        if self.outcome is Outcome.SAME:
            return f"no difference within ±{self._effect(self.delta).lstrip('+')}"
        if self.outcome is Outcome.NOT_YET:
            return f"not yet: {wording.about(self.more)} more {self.spec.unit}" if self.more else "not yet"
        return self.outcome.value

    def _effect(self, x: float) -> str:
        return wording.relative(x) if self.spec.relative else wording.points(x)

    def _value(self, x: float) -> str:
        return wording.ms(x) if self.spec.relative else wording.rate(x)

    def _interval(self) -> str:
        if self.low <= -1 and self.high >= (math.inf if self.spec.relative else 1):
            return "too few yet for an interval"
        low = "no lower bound yet" if self.low <= -1 and self.spec.relative else self._effect(self.low)
        high = "no upper bound yet" if math.isinf(self.high) else self._effect(self.high)
        return f"{wording.level(self.alpha)} interval {low} to {high}"

    @property
    def empty(self) -> bool:
        return self.effect is None or math.isnan(self.effect)

    @property
    def brief(self) -> str:
        """The verdict with its effect and interval: `error rate worse (+2.00 points, 98.3 % interval ...)`."""
        if self.empty:
            return f"{self.spec.title} {self.label} (no {self.spec.unit} on {self._which_empty()} yet)"
        return f"{self.spec.title} {self.label} ({self._effect(self.effect)}, {self._interval()})"

    def _which_empty(self) -> str:
        return "either version" if not (self.primary_n or self.canary_n) else ("the canary" if not self.canary_n else "the primary")

    @property
    def sentence(self) -> str:
        """One line a person reads: the verdict, both versions' figures, the effect and its interval."""
        if self.empty:
            return f"{self.spec.title}: {self.label}, no {self.spec.unit} on {self._which_empty()} yet."
        return (f"{self.spec.title}: {self.label}, {self._value(self.canary)} against {self._value(self.primary)} "
                f"({self._effect(self.effect)}, {self._interval()}) "
                f"after {wording.count(self.canary_n)} canary and {wording.count(self.primary_n)} primary {self.spec.unit}.")

    def to_dict(self) -> dict:
        finite = lambda x: None if x is None or not math.isfinite(x) else x  # noqa: E731 (JSON has no inf)
        return {"metric": self.metric, "verdict": self.outcome.value, "label": self.label, "guarded": self.guarded,
                "primary": finite(self.primary), "canary": finite(self.canary), "effect": finite(self.effect),
                "low": finite(self.low), "high": finite(self.high), "relative": self.spec.relative,
                "delta": self.delta, "alpha": self.alpha, "primary_n": self.primary_n, "canary_n": self.canary_n,
                "more": self.more, "sentence": self.sentence}


def classify(low, high, delta: float, higher_is_better: bool) -> np.ndarray:
    """Codes of CODES for intervals (low, high) of canary's effect: no difference within (-delta,
    delta), else worse, else better, else not yet (the module's docstring)."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    above, below = low > 0, high < 0
    better, worse = (above, below) if higher_is_better else (below, above)
    same = (low > -delta) & (high < delta)
    return np.where(same, 3, np.where(worse, 2, np.where(better, 1, 0)))


def _first_decided(decided: np.ndarray) -> int | None:
    hits = np.flatnonzero(decided)
    return int(FUTURE[hits[0]]) if len(hits) else None


def _spec(metric: str, latency: bool, delta: float | None, alpha: float) -> tuple[Metric, float]:
    """The metric and its margin, or one sentence on a wrong name, margin or level."""
    names = [name for name, m in METRICS.items() if m.relative == latency]
    if metric not in names:
        raise InvalidInput(f"{'Latency' if latency else 'A rate'} is judged on {' or '.join(names)}, not {metric!r}.")
    spec = METRICS[metric]
    delta = spec.delta if delta is None else delta
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta < 1:
        raise InvalidInput(f"The margin of {metric} must be a number above 0 and below 1, not {delta!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise InvalidInput(f"Alpha must be a number above 0 and below 0.5, not {alpha!r}.")
    return spec, float(delta)


def _share(primary_n: int, canary_n: int, canary_share: float | None) -> float | None:
    if canary_share is not None:
        if not 0 < canary_share < 1:
            raise InvalidInput(f"The canary's share of the traffic must be above 0 and below 1, not {canary_share!r}.")
        return canary_share
    return canary_n / (primary_n + canary_n) if primary_n and canary_n else None


def compare_rates(primary: Counts, canary: Counts, metric: str = "error_rate", delta: float | None = None,
                  alpha: float = 0.05, canary_share: float | None = None, guarded: bool = True) -> Verdict:
    """The verdict on a rate (error rate, accuracy): two Bernoulli streams, see `proportions`.
    `canary_share` (the canary's fraction of the traffic from now on) only feeds `not yet`'s
    estimate; by default the share seen so far."""
    spec, delta = _spec(metric, False, delta, alpha)
    prior = proportions.prior(delta)
    args = (canary.events, canary.trials, primary.events, primary.trials)
    effect, low, high = (float(x) for x in proportions.difference_interval(*args, alpha, prior))
    outcome = CODES[int(proportions.difference_outcome(*args, delta, alpha, prior, spec.higher_is_better))]
    more = None
    share = _share(primary.trials, canary.trials, canary_share)
    if outcome is Outcome.NOT_YET and share is not None and canary.trials and primary.trials:
        # the verdict the same tests would give if every future request showed the rates seen so
        # far (kept off 0 and 1): the counts to come as their expected values
        r1, r2 = (canary.events + 0.5) / (canary.trials + 1), (primary.events + 0.5) / (primary.trials + 1)
        n1, n2 = canary.trials + FUTURE * share, primary.trials + FUTURE * (1 - share)
        future = proportions.difference_outcome(r1 * n1, n1, r2 * n2, n2, delta, alpha, prior, spec.higher_is_better)
        more = _first_decided(future != 0)
    rate = lambda c: c.events / c.trials if c.trials else None  # noqa: E731
    return Verdict(metric, outcome, rate(primary), rate(canary), None if math.isnan(effect) else effect, low, high,
                   delta, alpha, primary.trials, canary.trials, more, guarded)


def compare_latency(primary: Latencies, canary: Latencies, metric: str = "p95_latency", delta: float | None = None,
                    alpha: float = 0.05, canary_share: float | None = None, guarded: bool = True) -> Verdict:
    """The verdict on a latency quantile (p50, p95): an exact confidence sequence per version, see
    `quantiles`; the effect is relative (canary / primary - 1), as is delta (0.10 = 10 %)."""
    spec, delta = _spec(metric, True, delta, alpha)
    p = spec.quantile
    a, b = primary.arm(), canary.arm()
    effect, low, high = (float(x) for x in quantiles.ratio_interval(a, b, p, alpha))
    outcome = CODES[int(classify(low, high, delta, spec.higher_is_better))]
    more = None
    share = _share(primary.n, canary.n, canary_share)
    if outcome is Outcome.NOT_YET and share is not None:
        bounds = [_projected(arm, n + FUTURE * s, p, alpha / 2) for arm, n, s in ((a, primary.n, 1 - share), (b, canary.n, share))]
        (a_low, a_high), (b_low, b_high) = bounds
        with np.errstate(divide="ignore", invalid="ignore"):
            p_low = np.where(np.isinf(a_high), -1.0, b_low / a_high - 1)
            p_high = np.where(a_low > 0, b_high / a_low - 1, np.inf)
        more = _first_decided(classify(p_low, p_high, delta, spec.higher_is_better) != 0)
    point = lambda arm, n: float(quantiles.estimate(*arm, p)) if n else None  # noqa: E731
    return Verdict(metric, outcome, point(a, primary.n), point(b, canary.n), None if math.isnan(effect) else effect,
                   low, high, delta, alpha, primary.n, canary.n, more, guarded)


def _projected(arm, sizes: np.ndarray, p: float, alpha: float):
    """The quantile's interval after `sizes` requests if they looked like those seen: the ranks the
    confidence sequence would keep at that size, read off the latencies seen at the same levels
    (the empirical quantile function, linear between observations or across a bucket), as
    proportions of the quantile seen, around the estimate the verdict shows."""
    lower, upper, cum = arm
    n = int(cum[-1]) if len(cum) else 0
    if n == 0:
        return np.zeros(len(sizes)), np.full(len(sizes), np.inf)
    future = np.floor(sizes).astype(np.int64)
    k_lo, k_hi = (np.asarray(k) for k in rank_bounds(future, p, alpha, quantiles.CONCENTRATION))
    tops = np.where(np.isinf(upper), lower, upper)  # an open last bucket: its lower edge
    positions, values = np.concatenate([[0.0], cum]), np.concatenate([[lower[0]], tops])
    at = lambda level: np.interp(level * n, positions, values)  # noqa: E731
    middle, centre = at(p), float(quantiles.estimate(lower, upper, cum, p))
    if middle <= 0:
        return np.zeros(len(sizes)), np.full(len(sizes), np.inf)
    # the widths of the future interval, around the estimate the verdict shows
    low = np.where(k_lo < 1, 0.0, centre * at(k_lo / future) / middle)
    high = np.where(k_hi + 1 > future, np.inf, centre * at((k_hi + 1) / future) / middle)
    return low, high


@dataclass(frozen=True)
class Agreement:
    """A shadow's agreement with its primary: the share of paired predictions with the same answer."""

    agreed: int
    paired: int
    rate: float | None
    low: float
    high: float
    alpha: float

    @property
    def sentence(self) -> str:
        if not self.paired:
            return "agreement: no prediction answered by both the shadow and the primary yet."
        return (f"agreement: {wording.rate(self.rate)} of {wording.count(self.paired)} paired predictions "
                f"({wording.level(self.alpha)} interval {wording.rate(self.low)} to {wording.rate(self.high)}).")

    def to_dict(self) -> dict:
        return {"agreed": self.agreed, "paired": self.paired, "rate": self.rate, "low": self.low, "high": self.high,
                "alpha": self.alpha, "sentence": self.sentence}


def shadow_agreement(pairs: Counts, alpha: float = 0.05) -> Agreement:
    """`pairs`: predictions answered by both (trials) and those with the same answer (events).
    The interval is the exact beta-binomial confidence sequence, valid at every look."""
    rate, low, high = (float(x) for x in proportions.rate_interval(pairs.events, pairs.trials, alpha))
    return Agreement(pairs.events, pairs.trials, None if math.isnan(rate) else rate, low, high, alpha)
