"""The gate as pure logic: its false aborts and promotions over seeded canaries run to their end,
the overall judgement, the action and its sentence, and the policy file's mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlptui.analysis import (
    ABORT,
    PROMOTE,
    STEP,
    WAIT,
    Arm,
    Counts,
    Latencies,
    Outcome,
    Policy,
    combine,
    decide,
    default_policy,
    judge,
    next_action,
    next_step,
    parse_policy,
    simulate,
)
from dlptui.errors import InvalidInput

RUNS = 400
BOUND = 0.075  # a level of 5 % plus 2.3 standard errors over 400 runs
POLICY = Policy(guard={"error_rate": 0.005, "accuracy": 0.02}, alpha=0.05, steps=(10, 25, 50, 100), min_requests=500)


def test_an_equal_canary_is_rarely_aborted_and_mostly_promoted_through_the_steps():
    runs = simulate.gate_runs(POLICY, 0.01, 0.01, 0.9, 0.9, runs=RUNS, horizon=150_000, every=100, seed=21)
    aborted = float(np.mean(runs.actions == ABORT))
    promoted = float(np.mean(runs.actions == PROMOTE))
    assert aborted <= BOUND, aborted
    assert promoted >= 0.8, promoted
    assert set(runs.traffic[runs.actions == PROMOTE]) <= {10, 25, 50}  # promoted from a step, after stepping up
    assert np.mean(runs.traffic[runs.actions == PROMOTE] == 50) > 0.5


def test_a_worse_canary_is_aborted_and_almost_never_promoted():
    # error rate three times the primary's: aborted, mostly at the first step
    errors = simulate.gate_runs(POLICY, 0.01, 0.03, 0.9, 0.9, runs=RUNS, horizon=150_000, every=100, seed=22)
    assert float(np.mean(errors.actions == PROMOTE)) <= BOUND
    assert float(np.mean(errors.actions == ABORT)) >= 0.95
    # accuracy down by exactly its margin (2 points): promotion is the error the gate bounds
    accuracy = simulate.gate_runs(POLICY, 0.01, 0.01, 0.9, 0.88, runs=RUNS, horizon=150_000, every=100, seed=23)
    assert float(np.mean(accuracy.actions == PROMOTE)) <= BOUND, float(np.mean(accuracy.actions == PROMOTE))


def _arms(canary_errors: int, canary_requests: int = 2_000, primary_requests: int = 18_000, shift: float = 1.0):
    rng = np.random.default_rng(24)
    primary = Arm(primary_requests, primary_requests // 100, Latencies(rng.lognormal(3.7, 0.3, primary_requests)))
    canary = Arm(canary_requests, canary_errors, Latencies(rng.lognormal(3.7, 0.3, canary_requests) * shift))
    return primary, canary


def test_any_guarded_metric_worse_aborts_with_the_numbers_in_the_reason():
    primary, canary = _arms(canary_errors=80)  # 4 % against 1 %
    judgement = judge(primary, canary, default_policy())
    assert judgement.overall is Outcome.WORSE
    action = decide(judgement, default_policy(), traffic=10, step_requests=100)  # before the step's minimum: abort still
    assert (action.kind, action.traffic, action.label) == (ABORT, 0, "abort")
    assert action.reason.startswith("Abort the canary at 10 %: error rate worse (+3.00 points, 98.3 % interval +")
    assert action.reason.endswith(" points).") and "\n" not in action.reason
    assert json.loads(json.dumps(action.to_dict(), allow_nan=False))["judgement"]["verdict"] == "worse"


def test_an_unguarded_metric_is_shown_and_never_acted_on():
    primary, canary = _arms(canary_errors=20, shift=1.5)  # p50 and p95 50 % slower, errors equal
    policy = Policy(guard={"error_rate": 0.005})
    judgement = judge(primary, canary, policy)
    shown = {v.metric: v for v in judgement.verdicts}
    assert shown["p95_latency"].outcome is Outcome.WORSE and not shown["p95_latency"].guarded
    assert judgement.overall is not Outcome.WORSE
    assert [v.metric for v in judgement.guarded] == ["error_rate"]
    assert shown["error_rate"].alpha == 0.05  # one guarded metric: the whole level


def test_each_guarded_metric_is_judged_at_its_share_of_alpha():
    primary, canary = _arms(canary_errors=20)
    judgement = judge(primary, canary, default_policy())
    assert {v.metric: v.alpha for v in judgement.guarded} == pytest.approx(
        {"error_rate": 0.05 / 3, "p50_latency": 0.05 / 3, "p95_latency": 0.05 / 3})


def test_the_gate_waits_for_the_steps_minimum_then_steps_then_waits_at_the_last_step():
    primary, canary = _arms(canary_errors=6, canary_requests=600, primary_requests=5_400)
    policy = default_policy()
    judgement = judge(primary, canary, policy)
    assert judgement.overall is Outcome.NOT_YET
    early = decide(judgement, policy, traffic=10, step_requests=120)
    assert (early.kind, early.traffic) == (WAIT, 10)
    assert early.reason == "Wait at 10 %: the canary has answered 120 of the 500 requests each step needs before the gate moves."
    step = decide(judgement, policy, traffic=10, step_requests=600)
    assert (step.kind, step.traffic, step.label) == (STEP, 25, "step to 25 %")
    assert step.reason.startswith("Step the canary from 10 % to 25 %: no guarded metric is worse after 600 requests at 10 %, and ")
    assert " needs ~" in step.reason and step.reason.endswith(" more requests for a verdict.")
    last = decide(judgement, policy, traffic=50, step_requests=600)
    assert (last.kind, last.traffic) == (WAIT, 50) and last.reason.startswith("Wait at 50 %, the last step before promotion:")


def test_an_equal_canary_with_enough_requests_is_promoted_with_every_guarded_verdict_in_the_reason():
    primary, canary = _arms(canary_errors=1_000, canary_requests=100_000, primary_requests=100_000)
    primary = Arm(100_000, 1_000, primary.latencies)
    judgement = judge(primary, canary, default_policy())
    assert judgement.overall is Outcome.SAME
    action = decide(judgement, default_policy(), traffic=50, step_requests=30_000)
    assert (action.kind, action.traffic) == (PROMOTE, 100)
    assert action.reason.startswith("Promote the canary from 50 %: it is no different after 100,000 requests, error rate no difference within ±0.50 points (")
    assert "p50 latency no difference within ±10.0 %" in action.reason and "p95 latency no difference within ±10.0 %" in action.reason


def test_overall_needs_every_guarded_metric_and_the_minimum():
    b, s, w, n = Outcome.BETTER, Outcome.SAME, Outcome.WORSE, Outcome.NOT_YET
    assert combine([s, b], 1_000, 500) is b
    assert combine([s, s], 1_000, 500) is s
    assert combine([s, s], 499, 500) is n
    assert combine([n, w], 10, 500) is w  # worse needs no minimum
    assert combine([b, n], 1_000, 500) is n
    assert combine([], 1_000, 500) is n


def test_next_step_skips_to_the_step_above_and_treats_100_as_promotion():
    assert [next_step(POLICY, t) for t in (5, 10, 20, 25, 50, 99)] == [10, 25, 25, 50, None, None]
    assert next_action(Outcome.NOT_YET, Policy(steps=(10, 30)), 30, 1_000) == (WAIT, 30)
    assert next_action(Outcome.SAME, Policy(steps=(10, 30)), 30, 1_000) == (PROMOTE, 100)
    for traffic in (0, 100, 12.5, True):
        with pytest.raises(InvalidInput, match="A gated canary's traffic must be a whole percentage above 0 and below 100"):
            next_action(Outcome.NOT_YET, POLICY, traffic, 10)


def test_a_policy_file_reads_as_toml_or_yaml():
    toml = 'alpha = 0.1\nsteps = [5, 20, 100]\nmin_requests = 200\n[guard]\nerror_rate = 0.01\np95_latency = 0.2\n'
    yaml = "alpha: 0.1\nsteps: [5, 20, 100]\nmin_requests: 200\nguard:\n  error_rate: 0.01\n  p95_latency: 0.2\n"
    expected = Policy(guard={"error_rate": 0.01, "p95_latency": 0.2}, alpha=0.1, steps=(5, 20, 100), min_requests=200)
    assert parse_policy(toml, "gate.toml") == expected
    assert parse_policy(yaml, "gate.yaml") == expected
    assert parse_policy("[guard]\naccuracy = 0.03\n", "g.toml") == Policy(guard={"accuracy": 0.03})  # the rest defaulted
    assert default_policy(accuracy=True).guard["accuracy"] == 0.02


@pytest.mark.parametrize("text, source, sentence", [
    ("alhpa = 0.1\n", "gate.toml", "gate.toml: unknown field 'alhpa'; a policy has alpha, guard, min_requests, steps."),
    ("alpha = 0.5\n", "gate.toml", "gate.toml: alpha must be a number above 0 and below 0.5 (0.05 is a 5 % false-alarm level), not 0.5."),
    ("alpha: five\n", "gate.yaml", "gate.yaml: alpha must be a number above 0 and below 0.5 (0.05 is a 5 % false-alarm level), not 'five'."),
    ("steps = [50, 25]\n", "gate.toml", "gate.toml: steps must be rising whole percentages from 1 to 100 such as [10, 25, 50, 100], not [50, 25]."),
    ("steps = [10, 150]\n", "gate.toml", "gate.toml: steps must be rising whole percentages from 1 to 100 such as [10, 25, 50, 100], not [10, 150]."),
    ("min_requests = 0\n", "gate.toml", "gate.toml: min_requests must be a whole number of at least 1, not 0."),
    ("min_requests: true\n", "gate.yml", "gate.yml: min_requests must be a whole number of at least 1, not True."),
    ("[guard]\nlatency = 0.1\n", "gate.toml", "gate.toml: guard names an unknown metric 'latency'; the metrics are error_rate, accuracy, p50_latency, p95_latency."),
    ("[guard]\nerror_rate = 5\n", "gate.toml", "gate.toml: the margin of error_rate must be a number above 0 and below 1, a difference of rates (0.005 is half a point), not 5."),
    ("[guard]\np50_latency = -0.1\n", "gate.toml", "gate.toml: the margin of p50_latency must be a number above 0 and below 1, a relative change (0.10 is 10 %), not -0.1."),
    ("guard = {}\n", "gate.toml", "gate.toml: guard must name at least one metric with its margin, such as error_rate = 0.005."),
    ("guard = 3\n", "gate.toml", "gate.toml: guard must name at least one metric with its margin, such as error_rate = 0.005."),
    ("- 1\n- 2\n", "gate.yaml", "gate.yaml: a policy is a table of alpha, guard, min_requests, steps, not list."),
    ("alpha = \n", "gate.toml", "gate.toml is not valid TOML (Invalid value (at line 1, column 9)); fix it and try again."),
    ("a: [\n", "gate.yaml", "gate.yaml is not valid YAML (while parsing a flow node); fix it and try again."),
    ("alpha = 0.1\n", "gate.json", "gate.json: a policy file ends in .toml, .yaml or .yml."),
])
def test_a_mistake_in_a_policy_file_is_one_sentence(text, source, sentence):
    with pytest.raises(InvalidInput) as refused:
        parse_policy(text, source)
    assert str(refused.value) == sentence


def test_an_empty_yaml_policy_is_the_default():
    assert parse_policy("", "gate.yaml") == Policy()


def test_the_judgement_and_the_action_are_plain_json():
    primary, canary = _arms(canary_errors=20)
    primary = Arm(primary.requests, primary.errors, primary.latencies, Counts(900, 1_000))
    judgement = judge(primary, canary, default_policy(accuracy=True))  # the canary has no feedback yet
    accuracy = next(v for v in judgement.verdicts if v.metric == "accuracy")
    assert accuracy.outcome is Outcome.NOT_YET
    assert accuracy.sentence == "accuracy: not yet, no predictions with feedback on the canary yet."
    data = json.loads(json.dumps(decide(judgement, default_policy(accuracy=True), 25, 2_000).to_dict(), allow_nan=False))
    assert data["action"] in (STEP, WAIT) and [m["metric"] for m in data["judgement"]["metrics"]][:4] == [
        "error_rate", "p50_latency", "p95_latency", "accuracy"]
