"""Seeded simulations of canaries, many runs at once, through the very code the verdicts use.

Each run sends requests one after another; each goes to the canary with the traffic share of its
run, and a look is taken every `every` requests. The verdict codes at every look come from the
vectorized cores (`proportions.difference_outcome`, `quantiles.ratio_interval` with
`verdicts.classify`), so a false-alarm rate measured here is the rate of `compare_rates` and
`compare_latency` looked at that often. Used by the tests and by bench/verdicts.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlptui.analysis import proportions, quantiles
from dlptui.analysis.gate import ABORT, PROMOTE, next_action
from dlptui.analysis.judgement import combine
from dlptui.analysis.metrics import METRICS
from dlptui.analysis.policy import Policy
from dlptui.analysis.verdicts import CODES, classify


@dataclass(frozen=True)
class Runs:
    """Per run: the first verdict's code (0: none within the horizon) and the requests (both
    versions) at that look (inf: none)."""

    codes: np.ndarray
    requests: np.ndarray

    def share(self, code: int) -> float:
        return float(np.mean(self.codes == code))

    def median_requests(self) -> float:
        return float(np.median(self.requests))


def first_verdicts(codes: np.ndarray, every: int) -> Runs:
    """From codes of shape (runs, looks): each run's first decided look."""
    decided = codes != 0
    hit = decided.any(axis=1)
    first = decided.argmax(axis=1)
    code = np.where(hit, codes[np.arange(len(codes)), first], 0)
    return Runs(code, np.where(hit, (first + 1.0) * every, np.inf))


def rate_streams(rng, primary_rate: float, canary_rate: float, share: float, runs: int, horizon: int, every: int):
    """Cumulative (canary events, canary trials, primary events, primary trials), each (runs, looks)."""
    looks = horizon // every
    n1 = rng.binomial(every, share, (runs, looks))
    x1 = rng.binomial(n1, canary_rate)
    x2 = rng.binomial(every - n1, primary_rate)
    n1, x1, x2 = n1.cumsum(axis=1), x1.cumsum(axis=1), x2.cumsum(axis=1)
    return x1, n1, x2, np.arange(1, looks + 1) * every - n1


def rate_runs(primary_rate: float, canary_rate: float, *, metric: str = "error_rate", delta: float | None = None,
              alpha: float = 0.05, share: float = 0.1, runs: int = 400, horizon: int = 20_000, every: int = 10,
              seed: int = 0) -> Runs:
    spec = METRICS[metric]
    delta = spec.delta if delta is None else delta
    streams = rate_streams(np.random.default_rng(seed), primary_rate, canary_rate, share, runs, horizon, every)
    codes = proportions.difference_outcome(*streams, delta, alpha, proportions.prior(delta), spec.higher_is_better)
    return first_verdicts(codes, every)


def log_buckets(low_ms: float = 2.0, high_ms: float = 2000.0, ratio: float = 1.03) -> np.ndarray:
    """Histogram bounds rising by `ratio` (3 % wide buckets), the last open."""
    count = int(np.ceil(np.log(high_ms / low_ms) / np.log(ratio)))
    return np.append(low_ms * ratio ** np.arange(count + 1), np.inf)


def latency_histograms(rng, draw, share: float, runs: int, horizon: int, every: int, bounds: np.ndarray, canary_factor: float):
    """Cumulative per-look histograms (runs, looks, buckets) of each version; `draw(rng, size)`
    gives primary latencies in ms, the canary's are the same times `canary_factor`."""
    looks = horizon // every
    to_canary = rng.random((runs, looks * every)) < share
    values = draw(rng, (runs, looks * every)) * np.where(to_canary, canary_factor, 1.0)
    bucket = np.searchsorted(bounds, values, side="left")  # (previous bound, bound]
    look = np.arange(looks * every) // every
    out = []
    for arm in (~to_canary, to_canary):
        counts = np.zeros((runs, looks, len(bounds)), dtype=np.int32)
        r, c = np.nonzero(arm)
        np.add.at(counts, (r, look[c], bucket[r, c]), 1)
        out.append(np.cumsum(np.cumsum(counts, axis=1), axis=2))  # cumulative over looks, then over buckets
    return out  # primary, canary


def latency_runs(draw, canary_factor: float, *, metric: str = "p95_latency", delta: float | None = None, alpha: float = 0.05,
                 share: float = 0.1, runs: int = 400, horizon: int = 5_000, every: int = 10, seed: int = 0,
                 chunk: int = 50, bounds: np.ndarray | None = None) -> Runs:
    """Verdicts on a latency quantile read from histograms (`log_buckets` by default) at every look."""
    spec = METRICS[metric]
    delta = spec.delta if delta is None else delta
    rng = np.random.default_rng(seed)
    bounds = log_buckets() if bounds is None else bounds
    lower = np.concatenate([[0.0], bounds[:-1]])
    codes = []
    for start in range(0, runs, chunk):
        primary, canary = latency_histograms(rng, draw, share, min(chunk, runs - start), horizon, every, bounds, canary_factor)
        _, low, high = quantiles.ratio_interval((lower, bounds, primary), (lower, bounds, canary), spec.quantile, alpha)
        codes.append(classify(low, high, delta, spec.higher_is_better))
    return first_verdicts(np.concatenate(codes), every)


def lognormal(median_ms: float = 40.0, sigma: float = 0.5):
    return lambda rng, size: median_ms * np.exp(sigma * rng.standard_normal(size))


@dataclass(frozen=True)
class GateRuns:
    actions: np.ndarray  # per run: ABORT, PROMOTE or "" (still running at the horizon)
    requests: np.ndarray  # requests (both versions) at the action (inf: none)
    traffic: np.ndarray  # the canary's traffic when the run ended


def gate_runs(policy: Policy, primary_error: float, canary_error: float, primary_accuracy: float | None = None,
              canary_accuracy: float | None = None, *, runs: int = 400, horizon: int = 60_000, every: int = 100,
              seed: int = 0) -> GateRuns:
    """Gates run to their end in lockstep: each look adds `every` requests split by each run's
    current traffic, judges its guarded rates (error_rate, and accuracy where every answer gets
    feedback) at the policy's per-metric alpha, combines them (`judgement.combine`) and moves the
    run by `gate.next_action`, steps and all. Latency is left out (its own simulations cover it)."""
    rng = np.random.default_rng(seed)
    rates = {"error_rate": (primary_error, canary_error)}
    if "accuracy" in policy.guard:
        rates["accuracy"] = (primary_accuracy, canary_accuracy)
    if set(policy.guard) - set(rates):
        raise ValueError("gate_runs simulates error_rate and accuracy only")
    counts = {name: np.zeros((4, runs), dtype=np.int64) for name in rates}  # x1, n1, x2, n2
    traffic = np.full(runs, policy.steps[0])
    at_step = np.zeros(runs, dtype=np.int64)
    actions = np.full(runs, "", dtype=object)
    ended = np.full(runs, np.inf)
    alpha = policy.metric_alpha
    for look in range(1, horizon // every + 1):
        live = actions == ""
        if not live.any():
            break
        n1 = rng.binomial(every, traffic / 100)
        at_step += n1
        for name, (p2, p1) in rates.items():
            c = counts[name]
            c[0] += rng.binomial(n1, p1)
            c[1] += n1
            c[2] += rng.binomial(every - n1, p2)
            c[3] += every - n1
        outcomes = {name: proportions.difference_outcome(*counts[name], policy.guard[name], alpha, proportions.prior(policy.guard[name]),
                                                         METRICS[name].higher_is_better) for name in rates}
        for run in np.flatnonzero(live):
            overall = combine([CODES[int(outcomes[name][run])] for name in rates], int(counts["error_rate"][1, run]), policy.min_requests)
            kind, after = next_action(overall, policy, int(traffic[run]), int(at_step[run]))
            if kind in (ABORT, PROMOTE):
                actions[run], ended[run] = kind, look * every
            elif after != traffic[run]:
                traffic[run], at_step[run] = after, 0
    return GateRuns(actions, ended, traffic)
