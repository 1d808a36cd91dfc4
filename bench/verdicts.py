"""Requests to a canary verdict: the always-valid sequential verdicts against a fixed-sample test of the same power.

    .venv/bin/python bench/verdicts.py [--runs 200] [--share 0.1] [--every 10] [--seed 0]

For each effect (error rate 1 % -> 2 % and 1 % -> 3 %, accuracy 90 % -> 85 %, p50 and p95 latency
+20 % on log-normal latencies), seeded canaries send requests one by one, a share `--share` of them
to the canary, and dlptui.analysis's verdict (alpha 0.05, the metric's default margin) is read
after every `--every` requests until it is decided: the requests (both versions) at the first
verdict, per run. The baseline, in the same process on the same kind of streams: the two-sided
fixed-sample z-test at alpha 0.05 planned for 80 % power, whose size `fixed_n` comes from the
normal approximation (difference of rates; difference of log-quantiles, Var = p(1-p)
sigma^2 / (n phi(z_p)^2)) and whose power at `fixed_n` is measured on simulated streams.

Same power: `p80` is the requests by which 80 % of the sequential runs have their (right)
verdict, against `fixed_n`, the requests the fixed test needs to be right 80 % of the time, read
once. The sequential verdict may be read at any moment; the fixed test only once, at fixed_n.
Latency runs read histograms of 1 %-wide buckets (as from Envoy or Prometheus), a little wider
than exact samples would give.

The last line is one JSON object: per effect `<name>_median_ratio` (sequential median / fixed_n)
and `<name>_p80_ratio` (sequential p80 / fixed_n); below 1 the sequential verdict is quicker.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from statistics import NormalDist

import numpy as np

from dlptui.analysis import simulate

Z = NormalDist().inv_cdf
ALPHA, POWER = 0.05, 0.80
SIGMA = 0.5  # log-normal latencies: median 40 ms, p95 about 91 ms


def fixed_n_rates(p_primary: float, p_canary: float, share: float) -> int:
    """Total requests a two-sided two-proportion z-test needs for POWER (pooled under H0)."""
    pooled = share * p_canary + (1 - share) * p_primary
    null = math.sqrt(pooled * (1 - pooled) * (1 / share + 1 / (1 - share)))
    alt = math.sqrt(p_canary * (1 - p_canary) / share + p_primary * (1 - p_primary) / (1 - share))
    return math.ceil(((Z(1 - ALPHA / 2) * null + Z(POWER) * alt) / (p_canary - p_primary)) ** 2)


def fixed_n_quantile(q: float, factor: float, share: float) -> int:
    """Total requests a two-sided z-test on the difference of log sample quantiles needs for POWER."""
    per_request = q * (1 - q) * SIGMA**2 / NormalDist().pdf(Z(q)) ** 2
    return math.ceil((Z(1 - ALPHA / 2) + Z(POWER)) ** 2 * per_request * (1 / share + 1 / (1 - share)) / math.log(factor) ** 2)


def fixed_power_rates(p_primary: float, p_canary: float, share: float, n: int, runs: int, seed: int) -> float:
    """The fixed test's power, measured: read once at n requests."""
    rng = np.random.default_rng(seed)
    n1 = rng.binomial(n, share, runs)
    x1, x2 = rng.binomial(n1, p_canary), rng.binomial(n - n1, p_primary)
    pooled = (x1 + x2) / n
    z = (x1 / n1 - x2 / (n - n1)) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / (n - n1)))
    return float(np.mean(np.abs(z) > Z(1 - ALPHA / 2)))


def fixed_power_quantile(q: float, factor: float, share: float, n: int, runs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(runs):
        canary = rng.random(n) < share
        logs = math.log(40) + SIGMA * rng.standard_normal(n) + np.where(canary, math.log(factor), 0.0)
        a, b = np.quantile(logs[~canary], q), np.quantile(logs[canary], q)
        se = math.sqrt(q * (1 - q) * SIGMA**2 / NormalDist().pdf(Z(q)) ** 2 * (1 / canary.sum() + 1 / (~canary).sum()))
        hits += abs(b - a) / se > Z(1 - ALPHA / 2)
    return hits / runs


def summary(name: str, runs: simulate.Runs, right: int, fixed_n: int, fixed_power: float, seconds: float) -> dict:
    requests = np.where(runs.codes == right, runs.requests, np.inf)  # a wrong or no verdict never counts as reached
    median, p80 = float(np.median(requests)), float(np.quantile(requests, POWER))
    row = {"fixed_n": fixed_n, "fixed_power": round(fixed_power, 3), "median": median, "p80": p80,
           "right": round(runs.share(right), 3), "wrong": round(float(np.mean((runs.codes != right) & (runs.codes != 0))), 3),
           "median_ratio": round(median / fixed_n, 3), "p80_ratio": round(p80 / fixed_n, 3)}
    print(f"{name:>18}: fixed test {fixed_n:>7,} requests (power {fixed_power:.2f} measured); sequential median "
          f"{median:>9,.0f}, 80 % decided by {p80:>9,.0f}; right {row['right']:.3f}, wrong {row['wrong']:.3f}; "
          f"ratios {row['median_ratio']:.2f} / {row['p80_ratio']:.2f} ({seconds:.1f} s)", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--share", type=float, default=0.1, help="the canary's share of the traffic")
    parser.add_argument("--every", type=int, default=10, help="requests between looks")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    share, rows = args.share, {}

    rates = [("error_1_to_2", "error_rate", 0.01, 0.02, 2), ("error_1_to_3", "error_rate", 0.01, 0.03, 2),
             ("accuracy_90_to_85", "accuracy", 0.90, 0.85, 2)]
    for name, metric, before, after, worse in rates:
        started = time.perf_counter()
        fixed = fixed_n_rates(before, after, share)
        runs = simulate.rate_runs(before, after, metric=metric, share=share, runs=args.runs, horizon=5 * fixed,
                                  every=args.every, seed=args.seed)
        rows[name] = summary(name, runs, worse, fixed, fixed_power_rates(before, after, share, fixed, 2000, args.seed),
                             time.perf_counter() - started)

    bounds = simulate.log_buckets(ratio=1.01)
    for name, metric, q in (("p50_plus_20pct", "p50_latency", 0.5), ("p95_plus_20pct", "p95_latency", 0.95)):
        started = time.perf_counter()
        fixed = fixed_n_quantile(q, 1.2, share)
        runs = simulate.latency_runs(simulate.lognormal(40.0, SIGMA), 1.2, metric=metric, share=share, runs=args.runs,
                                     horizon=5 * fixed, every=max(args.every, fixed // 400), seed=args.seed, chunk=20, bounds=bounds)
        rows[name] = summary(name, runs, 2, fixed, fixed_power_quantile(q, 1.2, share, fixed, 400, args.seed),
                             time.perf_counter() - started)

    # no difference: how long `no difference within the margin` takes, and the false verdicts
    started = time.perf_counter()
    equal = simulate.rate_runs(0.01, 0.01, share=share, runs=args.runs, horizon=200_000, every=max(args.every, 100), seed=args.seed)
    same_median = float(np.median(np.where(equal.codes == 3, equal.requests, np.inf)))
    print(f"{'error 1 % = 1 %':>18}: no difference within ±0.5 points after a median of {same_median:,.0f} requests; "
          f"false worse/better {equal.share(1) + equal.share(2):.3f} ({time.perf_counter() - started:.1f} s)", flush=True)

    result = {f"{name}_{key}": row[key] for name, row in rows.items() for key in ("median_ratio", "p80_ratio")}
    result.update({f"{name}_fixed_n": row["fixed_n"] for name, row in rows.items()})
    result.update({f"{name}_median": row["median"] for name, row in rows.items()})
    result.update({"error_equal_same_median": same_median, "error_equal_false": round(equal.share(1) + equal.share(2), 3),
                   "share": share, "every": args.every, "runs": args.runs,
                   "load_average": round(os.getloadavg()[0], 2), "cores": len(os.sched_getaffinity(0))})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
