"""The statistics of canary verdicts, alone, on seeded simulations (no server, no files).

The claim under test: under no difference, a verdict read after every 10 requests, for as long as
the canary runs, is falsely `worse` or `better` in at most alpha of the canaries; with a real
difference a verdict is reached; `no difference` is found when there is none and refused at the
margin; `not yet`'s estimate is of the right size. Each false-alarm bound allows for simulation
error: with 400 runs a true rate of 5 % would be seen above 7.5 % about once in a hundred seeds.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from dlptui.analysis import Arm, Counts, Latencies, Outcome, compare_latency, compare_rates, shadow_agreement, simulate
from dlptui.analysis import proportions, quantiles
from dlptui.analysis.mixtures import rank_bounds
from dlptui.analysis.verdicts import CODES, classify
from dlptui.errors import InvalidInput

ALPHA = 0.05
RUNS = 400
BOUND = 0.075  # ALPHA plus 2.3 standard errors of a rate measured over RUNS runs
BETTER, WORSE, SAME = 1, 2, 3


def false_rate(runs: simulate.Runs) -> float:
    return runs.share(BETTER) + runs.share(WORSE)


def test_error_rates_equal_at_1_percent_give_no_false_verdict_beyond_alpha_looking_every_10_requests():
    runs = simulate.rate_runs(0.01, 0.01, share=0.1, runs=RUNS, horizon=20_000, every=10, seed=1)
    assert false_rate(runs) <= BOUND, false_rate(runs)


def test_accuracies_equal_at_90_percent_give_no_false_verdict_beyond_alpha_looking_every_10_requests():
    runs = simulate.rate_runs(0.9, 0.9, metric="accuracy", share=0.5, runs=RUNS, horizon=10_000, every=10, seed=2)
    assert false_rate(runs) <= BOUND, false_rate(runs)


def naive_false_rate(streams, every_z: float = 1.96) -> float:
    """A fixed-sample two-proportion z-test (pooled variance) read at every look: what is not done."""
    x1, n1, x2, n2 = (a.astype(float) for a in streams)
    pooled = (x1 + x2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x1 / n1 - x2 / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float((np.abs(np.nan_to_num(z)) > every_z).any(axis=1).mean())


def test_a_fixed_sample_test_looked_at_every_10_requests_raises_false_alarms_far_beyond_alpha():
    """Why the design: the textbook test, fine when read once at a planned size, is read here as a
    dashboard is, after every 10 requests, on canaries no different from their primary."""
    streams = simulate.rate_streams(np.random.default_rng(3), 0.1, 0.1, 0.5, RUNS, 10_000, 10)
    naive = naive_false_rate(streams)
    codes = proportions.difference_outcome(*streams, 0.02, ALPHA, proportions.prior(0.02), False)
    sequential = false_rate(simulate.first_verdicts(codes, 10))
    assert naive > 4 * ALPHA, naive  # about half the equal canaries would be called different
    assert sequential <= BOUND, sequential


def test_a_real_difference_in_error_rate_is_found_in_the_right_direction():
    worse = simulate.rate_runs(0.01, 0.03, share=0.1, runs=200, horizon=30_000, every=50, seed=4)
    assert worse.share(WORSE) == 1.0
    assert worse.median_requests() < 10_000
    better = simulate.rate_runs(0.03, 0.01, share=0.1, runs=200, horizon=30_000, every=50, seed=5)
    assert better.share(BETTER) >= 0.95 and better.share(WORSE) == 0


def test_a_drop_in_accuracy_is_found_worse():
    runs = simulate.rate_runs(0.9, 0.85, metric="accuracy", share=0.5, runs=200, horizon=10_000, every=20, seed=6)
    assert runs.share(WORSE) >= 0.98 and runs.share(BETTER) == 0


def test_no_difference_is_shown_when_there_is_none_and_refused_at_the_margin():
    equal = simulate.rate_runs(0.9, 0.9, metric="accuracy", delta=0.02, share=0.5, runs=200, horizon=40_000, every=50, seed=7)
    assert equal.share(SAME) >= 0.9
    # a true drop of exactly the margin: calling it `no difference within ±2 points` is the error
    at_margin = simulate.rate_runs(0.9, 0.88, metric="accuracy", delta=0.02, share=0.5, runs=RUNS, horizon=40_000, every=50, seed=8)
    assert at_margin.share(SAME) <= BOUND, at_margin.share(SAME)


def test_equal_latencies_give_no_false_verdict_beyond_alpha_looking_every_10_requests():
    for metric, seed in (("p50_latency", 9), ("p95_latency", 10)):
        runs = simulate.latency_runs(simulate.lognormal(), 1.0, metric=metric, share=0.5, runs=RUNS, horizon=3_000, every=10, seed=seed)
        assert false_rate(runs) <= BOUND, (metric, false_rate(runs))


def test_a_latency_20_percent_higher_is_found_worse():
    p50 = simulate.latency_runs(simulate.lognormal(), 1.2, metric="p50_latency", share=0.5, runs=100, horizon=6_000, every=20, seed=11)
    assert p50.share(WORSE) >= 0.95 and p50.share(BETTER) == 0
    p95 = simulate.latency_runs(simulate.lognormal(), 1.2, metric="p95_latency", share=0.5, runs=100, horizon=15_000, every=50, seed=12)
    assert p95.share(WORSE) >= 0.9 and p95.share(BETTER) == 0


def test_the_quantile_ranks_cover_the_true_quantile_at_every_single_request():
    """The exact core of the latency method: the count of observations at or below the true
    quantile stays within the ranks kept, at every request at once, in 1 - alpha of the runs."""
    horizon = 5_000
    k_lo, k_hi = rank_bounds(np.arange(1, horizon + 1), 0.95, ALPHA, quantiles.CONCENTRATION)
    below = (np.random.default_rng(13).random((RUNS, horizon)) <= 0.95).cumsum(axis=1)
    missed = ((below < k_lo) | (below > k_hi)).any(axis=1).mean()
    assert missed <= BOUND, missed
    assert missed > 0  # the bound is used, not a vacuous one


def test_a_shadows_agreement_interval_covers_the_true_rate_at_every_request():
    horizon = 2_000
    agreed = (np.random.default_rng(14).random((RUNS, horizon)) < 0.97).cumsum(axis=1)
    _, low, high = proportions.rate_interval(agreed, np.broadcast_to(np.arange(1, horizon + 1), agreed.shape), ALPHA)
    missed = ((low > 0.97) | (high < 0.97)).any(axis=1).mean()
    assert missed <= BOUND, missed
    one = shadow_agreement(Counts(970, 1000))
    assert one.low < 0.97 < one.high and one.high - one.low < 0.05
    assert "agreement: 97.00 % of 1,000 paired predictions (95 % interval" in one.sentence


def test_the_interval_and_the_three_tests_give_the_same_verdict():
    rng = np.random.default_rng(15)
    n1, n2 = rng.integers(1, 30_000, 400), rng.integers(1, 60_000, 400)
    x1, x2 = rng.binomial(n1, rng.choice([0.03, 0.035, 0.06, 0.01, 0.001], 400)), rng.binomial(n2, 0.03)
    prior = proportions.prior(0.01)
    for higher in (False, True):
        estimate, low, high = proportions.difference_interval(x1, n1, x2, n2, ALPHA, prior)
        assert ((low <= estimate) & (estimate <= high)).all()
        direct = proportions.difference_outcome(x1, n1, x2, n2, 0.01, ALPHA, prior, higher)
        assert (classify(low, high, 0.01, higher) == direct).all()
    assert len(set(direct.tolist())) == 4  # every verdict occurs among these


def test_the_restricted_rates_maximise_the_likelihood():
    rng = np.random.default_rng(16)
    for _ in range(50):
        n1, n2 = int(rng.integers(1, 500)), int(rng.integers(1, 5_000))
        x1, x2 = int(rng.binomial(n1, 0.05)), int(rng.integers(0, n2 + 1))
        d = float(rng.uniform(-0.9, 0.9))
        p1, p2 = (float(v) for v in proportions.restricted_rates(x1, n1, x2, n2, d))
        assert p1 - p2 == pytest.approx(d)
        grid = np.linspace(max(0, -d), min(1, 1 - d), 100_001)[1:-1]
        loglik = x1 * np.log(grid + d) + (n1 - x1) * np.log1p(-grid - d) + x2 * np.log(grid) + (n2 - x2) * np.log1p(-grid)
        assert p2 == pytest.approx(grid[np.nanargmax(loglik)], abs=2e-5)


def test_not_yet_estimates_the_requests_still_needed():
    """At a look after 1,000 requests still undecided, `not yet: ~N more` against the requests the
    run then really needed: the median ratio near 1 and most runs within a factor of 3 (the
    requests a run really needs vary that much from run to run at one true difference)."""
    every, after = 50, 1_000
    streams = simulate.rate_streams(np.random.default_rng(17), 0.01, 0.03, 0.1, 100, 60_000, every)
    codes = proportions.difference_outcome(*streams, 0.005, ALPHA, proportions.prior(0.005), False)
    ratios = []
    look = after // every - 1  # the look after `after` requests
    for run in range(100):
        decided = np.flatnonzero(codes[run] != 0)
        if not len(decided) or decided[0] <= look:
            continue
        x1, n1, x2, n2 = (int(a[run, look]) for a in streams)
        verdict = compare_rates(Counts(x2, n2), Counts(x1, n1), alpha=ALPHA, canary_share=0.1)
        assert verdict.outcome is Outcome.NOT_YET and verdict.more
        ratios.append((decided[0] - look) * every / verdict.more)
    assert len(ratios) >= 80
    assert 1 / 2 < np.median(ratios) < 2, np.median(ratios)
    assert np.mean((np.asarray(ratios) > 1 / 3) & (np.asarray(ratios) < 3)) >= 0.6


def test_not_yet_on_latency_estimates_the_requests_still_needed():
    every, after, runs = 50, 500, 40
    bounds = simulate.log_buckets()
    lower = np.concatenate([[0.0], bounds[:-1]])
    rng = np.random.default_rng(18)
    primary, canary = simulate.latency_histograms(rng, simulate.lognormal(), 0.5, runs, 8_000, every, bounds, 1.2)
    _, low, high = quantiles.ratio_interval((lower, bounds, primary), (lower, bounds, canary), 0.5, ALPHA)
    codes = classify(low, high, 0.10, False)
    look, ratios = after // every - 1, []
    for run in range(runs):
        decided = np.flatnonzero(codes[run] != 0)
        if not len(decided) or decided[0] <= look:
            continue
        per_bucket = [np.diff(arm[run, look], prepend=0) for arm in (primary, canary)]
        verdict = compare_latency(Latencies(bounds=bounds, counts=per_bucket[0]), Latencies(bounds=bounds, counts=per_bucket[1]),
                                  metric="p50_latency", alpha=ALPHA, canary_share=0.5)
        assert verdict.outcome is Outcome.NOT_YET and verdict.more
        ratios.append((decided[0] - look) * every / verdict.more)
    assert len(ratios) >= 25
    assert 1 / 2 < np.median(ratios) < 2, np.median(ratios)
    assert np.mean((np.asarray(ratios) > 1 / 3) & (np.asarray(ratios) < 3)) >= 0.6


def test_samples_give_an_interval_inside_the_one_from_their_histogram():
    rng = np.random.default_rng(19)
    bounds = simulate.log_buckets()
    for _ in range(5):
        a, b = rng.lognormal(3.7, 0.5, 3_000), rng.lognormal(3.7, 0.5, 400) * rng.uniform(0.8, 1.3)
        hist = lambda v: Latencies(bounds=bounds, counts=np.histogram(v, np.concatenate([[0], bounds]))[0])  # noqa: E731
        for metric in ("p50_latency", "p95_latency"):
            exact, bucketed = compare_latency(Latencies(a), Latencies(b), metric), compare_latency(hist(a), hist(b), metric)
            assert bucketed.low <= exact.low <= exact.effect <= exact.high <= bucketed.high
            q = 0.5 if metric == "p50_latency" else 0.95
            assert exact.primary == np.sort(a)[math.ceil(len(a) * q) - 1]  # the sample quantile itself


def test_a_verdict_says_what_it_found_in_one_line_with_its_numbers():
    worse = compare_rates(Counts(100, 10_000), Counts(30, 1_000), alpha=ALPHA)
    assert worse.outcome is Outcome.WORSE and worse.low > 0
    assert worse.sentence.startswith("error rate: worse, 3.00 % against 1.00 % (+2.00 points, 95 % interval +")
    assert worse.sentence.endswith("after 1,000 canary and 10,000 primary requests.")
    waiting = compare_rates(Counts(100, 10_000), Counts(12, 1_000), alpha=ALPHA)
    assert waiting.outcome is Outcome.NOT_YET and waiting.label.startswith("not yet: ~") and waiting.label.endswith(" more requests")
    same = compare_rates(Counts(1_000, 100_000), Counts(100, 10_000), alpha=ALPHA)
    assert same.outcome is Outcome.SAME and same.label == "no difference within ±0.50 points"
    early = compare_rates(Counts(10, 1_000), Counts(1, 100))  # 1 error expected on the canary: the exact interval alone
    assert early.outcome is Outcome.NOT_YET and early.low < -0.02 and early.high > 0.05
    nothing = compare_rates(Counts(0, 0), Counts(0, 0))
    assert nothing.sentence == "error rate: not yet, no requests on either version yet."
    empty = compare_latency(Latencies(), Latencies([12.0]), "p50_latency")
    assert empty.outcome is Outcome.NOT_YET and empty.sentence == "p50 latency: not yet, no requests on the primary yet."
    for verdict in (worse, waiting, same, early, nothing, empty):
        text = json.dumps(verdict.to_dict(), allow_nan=False)  # JSON without inf or nan
        assert json.loads(text)["verdict"] == verdict.outcome.value
        assert "\n" not in verdict.sentence


def test_no_errors_at_all_on_either_version_is_no_difference_once_the_canary_has_enough_requests():
    """Where the normal approximation has nothing to go on (no errors), the exact per-version
    sequences still bound both rates: below half a point on both, the difference is inside ±0.5."""
    assert compare_rates(Counts(0, 9_000), Counts(0, 1_000)).outcome is Outcome.NOT_YET
    verdict = compare_rates(Counts(0, 18_000), Counts(0, 2_000))
    assert verdict.outcome is Outcome.SAME and -0.005 < verdict.low < 0 < verdict.high < 0.005
    assert compare_rates(Counts(0, 900), Counts(100, 100)).outcome is Outcome.WORSE  # every canary request failing


def test_a_latency_verdict_reads_relative_changes():
    rng = np.random.default_rng(20)
    a, b = rng.lognormal(3.7, 0.3, 5_000), rng.lognormal(3.7, 0.3, 2_000) * 1.5
    verdict = compare_latency(Latencies(a), Latencies(b), "p95_latency", alpha=ALPHA)
    assert verdict.outcome is Outcome.WORSE and 0.3 < verdict.low < 0.5 < verdict.high < 0.7
    assert re.fullmatch(r"p95 latency: worse, \d+\.\d ms against \d+\.\d ms \(\+5\d\.\d %, 95 % interval \+[34]\d\.\d % to \+[56]\d\.\d %\) "
                        r"after 2,000 canary and 5,000 primary requests\.", verdict.sentence), verdict.sentence


@pytest.mark.parametrize("build, sentence", [
    (lambda: Counts(-1, 5), "The events of a count must be a whole number of at least 0, not -1."),
    (lambda: Counts(6, 5), "A count cannot have more events (6) than trials (5)."),
    (lambda: Arm(requests=10, errors=11), "A count cannot have more events (11) than trials (10)."),
    (lambda: Latencies(samples=[1.0], bounds=[1.0], counts=[1]), "Latencies are either samples or a histogram, not both."),
    (lambda: Latencies(samples=[-1.0]), "A latency must be a finite number of milliseconds of at least 0."),
    (lambda: Latencies(bounds=[1.0, 2.0], counts=[1]), "A latency histogram needs a count per bucket: 2 bounds, 1 counts."),
    (lambda: Latencies(bounds=[2.0, 1.0], counts=[1, 1]), "A latency histogram's bucket bounds must rise from above 0."),
    (lambda: compare_rates(Counts(1, 10), Counts(1, 10), canary_share=1.5), "The canary's share of the traffic must be above 0 and below 1, not 1.5."),
    (lambda: compare_rates(Counts(1, 10), Counts(1, 10), metric="p95_latency"), "A rate is judged on error_rate or accuracy, not 'p95_latency'."),
    (lambda: compare_latency(Latencies([1.0]), Latencies([1.0]), metric="p99"), "Latency is judged on p50_latency or p95_latency, not 'p99'."),
    (lambda: compare_rates(Counts(1, 10), Counts(1, 10), delta=0), "The margin of error_rate must be a number above 0 and below 1, not 0."),
    (lambda: compare_rates(Counts(1, 10), Counts(1, 10), alpha=0.9), "Alpha must be a number above 0 and below 0.5, not 0.9."),
])
def test_bad_numbers_are_one_sentence(build, sentence):
    with pytest.raises(InvalidInput) as refused:
        build()
    assert str(refused.value) == sentence


def test_codes_and_outcomes_line_up():
    intervals = ((0.01, 0.2), (-0.2, -0.01), (-0.05, 0.05), (-0.2, 0.2), (0.01, 0.05))
    assert [CODES[int(classify(lo, hi, 0.1, False))] for lo, hi in intervals] == [
        Outcome.WORSE, Outcome.BETTER, Outcome.SAME, Outcome.NOT_YET, Outcome.SAME]  # inside the margin: no difference
    assert CODES[int(classify(0.01, 0.2, 0.1, True))] is Outcome.BETTER
