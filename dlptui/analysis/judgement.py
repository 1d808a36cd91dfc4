"""The overall verdict on a canary: its guarded metrics' verdicts combined under a policy.

Overall `worse` as soon as any guarded metric is worse; `better` or `no difference` only when
every guarded metric is better or no different and the canary has answered the policy's minimum
of requests; `not yet` otherwise, with the slowest guarded metric's estimate. Each guarded metric
is judged at the policy's alpha divided by the number of guarded metrics (Bonferroni), so the
chance that any of them gives a false verdict, at any look, stays at most alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dlptui.analysis import wording
from dlptui.analysis.metrics import METRICS
from dlptui.analysis.policy import Policy
from dlptui.analysis.verdicts import Arm, Counts, Latencies, Outcome, Verdict, compare_latency, compare_rates


@dataclass(frozen=True)
class Judgement:
    overall: Outcome
    verdicts: tuple[Verdict, ...]  # the guarded metrics in the policy's order, then the others with data
    canary_requests: int
    min_requests: int
    more: int | None = None  # not yet: the slowest guarded metric's estimate (requests, both versions)
    waiting_on: str | None = None  # not yet: what it waits for, in words

    @property
    def guarded(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.guarded)

    @property
    def sentence(self) -> str:
        if self.overall is Outcome.WORSE:
            worse = [v for v in self.guarded if v.outcome is Outcome.WORSE]
            return f"The canary is worse: {'; '.join(v.brief for v in worse)}."
        if self.overall in (Outcome.BETTER, Outcome.SAME):
            word = "better" if self.overall is Outcome.BETTER else "no different"
            return f"The canary is {word} after {wording.count(self.canary_requests)} requests: {'; '.join(v.brief for v in self.guarded)}."
        return f"Not yet: {self.waiting_on}."

    def to_dict(self) -> dict:
        return {"verdict": self.overall.value, "canary_requests": self.canary_requests, "min_requests": self.min_requests,
                "more": self.more, "waiting_on": self.waiting_on, "sentence": self.sentence,
                "metrics": [v.to_dict() for v in self.verdicts]}


def combine(outcomes: Sequence[Outcome], canary_requests: int, min_requests: int) -> Outcome:
    """The overall outcome of the guarded metrics' outcomes (see the module's docstring)."""
    if Outcome.WORSE in outcomes:
        return Outcome.WORSE
    if canary_requests < min_requests or not outcomes or any(o is Outcome.NOT_YET for o in outcomes):
        return Outcome.NOT_YET
    return Outcome.BETTER if Outcome.BETTER in outcomes else Outcome.SAME


def _verdict(name: str, primary: Arm, canary: Arm, delta: float | None, alpha: float, share: float | None, guarded: bool) -> Verdict:
    options = {"metric": name, "delta": delta, "alpha": alpha, "canary_share": share, "guarded": guarded}
    if name == "error_rate":
        return compare_rates(Counts(primary.errors, primary.requests), Counts(canary.errors, canary.requests), **options)
    if name == "accuracy":
        return compare_rates(primary.feedback or Counts(0, 0), canary.feedback or Counts(0, 0), **options)
    return compare_latency(primary.latencies or Latencies(), canary.latencies or Latencies(), **options)


def _has_data(name: str, arm: Arm) -> bool:
    if name == "error_rate":
        return arm.requests > 0
    if name == "accuracy":
        return arm.feedback is not None and arm.feedback.trials > 0
    return arm.latencies is not None and arm.latencies.n > 0


def judge(primary: Arm, canary: Arm, policy: Policy | None = None, canary_share: float | None = None) -> Judgement:
    """Every guarded metric's verdict and the overall one; the metrics the policy does not guard
    are judged too where both versions have data (shown, never acted on). `canary_share` (the
    canary's fraction of the traffic from now on) only feeds the `not yet` estimates."""
    policy = policy or Policy()
    alpha = policy.metric_alpha
    verdicts = [_verdict(name, primary, canary, delta, alpha, canary_share, True) for name, delta in policy.guard.items()]
    verdicts += [_verdict(name, primary, canary, None, alpha, canary_share, False) for name in METRICS
                 if name not in policy.guard and _has_data(name, primary) and _has_data(name, canary)]
    guarded = [v for v in verdicts if v.guarded]
    overall = combine([v.outcome for v in guarded], canary.requests, policy.min_requests)
    more, waiting = None, None
    if overall is Outcome.NOT_YET:
        pending = [v for v in guarded if v.outcome is Outcome.NOT_YET]
        slowest = max(pending, key=lambda v: float("inf") if v.more is None else v.more, default=None)
        waiting_parts = []
        if slowest is not None:
            more = slowest.more
            estimate = f"{wording.about(slowest.more)} more {slowest.spec.unit}" if slowest.more else "more data than can be estimated"
            waiting_parts.append(f"{slowest.spec.title} needs {estimate} for a verdict")
        if canary.requests < policy.min_requests:
            waiting_parts.append(f"the canary has answered {wording.count(canary.requests)} of the "
                                 f"{wording.count(policy.min_requests)} requests a verdict needs")
        waiting = " and ".join(waiting_parts) or "no guarded metric has a verdict yet"
    return Judgement(overall, tuple(verdicts), canary.requests, policy.min_requests, more, waiting)
