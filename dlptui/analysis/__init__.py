"""Pure statistics for canary and shadow verdicts: numbers in, verdicts out; no I/O, no platform.

What the serving side calls (docs/verdicts.md says how the statistics work):

    from dlptui.analysis import Arm, Counts, Latencies, Policy, judge, decide, shadow_agreement

    primary = Arm(requests=9000, errors=90, latencies=Latencies(samples=ms_list), feedback=Counts(810, 900))
    canary = Arm(requests=1000, errors=12, latencies=Latencies(bounds=le_ms, counts=per_bucket))
    judgement = judge(primary, canary, policy)            # a Verdict per metric and the overall Outcome
    action = decide(judgement, policy, traffic=10, step_requests=1000)   # abort / promote / step / wait
    action.kind, action.traffic, action.reason             # the reason: one sentence with the numbers
    shadow_agreement(Counts(events=agreed, trials=paired)).sentence

Both versions' numbers count from the moment the canary started, over the same period (a
sliding window would break the guarantee). `compare_rates` and `compare_latency` judge one
metric alone; `parse_policy` reads a policy file's text (TOML or YAML).
"""

from dlptui.analysis.gate import ABORT, PROMOTE, STEP, WAIT, Action, decide, next_action, next_step
from dlptui.analysis.judgement import Judgement, combine, judge
from dlptui.analysis.metrics import METRICS, Metric
from dlptui.analysis.policy import Policy, default_policy, parse_policy, policy_from_mapping
from dlptui.analysis.verdicts import (
    Agreement,
    Arm,
    Counts,
    Latencies,
    Outcome,
    Verdict,
    compare_latency,
    compare_rates,
    shadow_agreement,
)

__all__ = [
    "ABORT", "PROMOTE", "STEP", "WAIT", "METRICS", "Action", "Agreement", "Arm", "Counts", "Judgement", "Latencies",
    "Metric", "Outcome", "Policy", "Verdict", "combine", "compare_latency", "compare_rates", "decide", "default_policy",
    "judge", "next_action", "next_step", "parse_policy", "policy_from_mapping", "shadow_agreement",
]
