"""A gate as pure logic: from a canary's judgement and its traffic step, the next action and why.

- `abort` as soon as the judgement is `worse` (at any step, however few requests);
- nothing else until the canary has answered the policy's `min_requests` at its current step;
- `promote` when the judgement is `better` or `no difference`;
- else `step to X %`, the next of the policy's steps (a step of 100 is the promotion itself, never
  a step: the primary must keep traffic to be compared with);
- else (the last step below 100 reached) `wait`.

The reason is one sentence with the numbers behind it, for the deployment's history and the
console's notification.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlptui.analysis import wording
from dlptui.analysis.judgement import Judgement
from dlptui.analysis.policy import Policy
from dlptui.analysis.verdicts import Outcome
from dlptui.errors import InvalidInput

ABORT, PROMOTE, STEP, WAIT = "abort", "promote", "step", "wait"


@dataclass(frozen=True)
class Action:
    kind: str  # ABORT, PROMOTE, STEP or WAIT
    traffic: int  # the canary's traffic after the action, percent: 0 after an abort, 100 after a promotion
    reason: str  # one sentence with the numbers
    judgement: Judgement

    @property
    def label(self) -> str:
        """`abort`, `promote`, `step to 25 %`, `wait`."""
        return f"step to {self.traffic} %" if self.kind == STEP else self.kind

    def to_dict(self) -> dict:
        return {"action": self.kind, "label": self.label, "traffic": self.traffic, "reason": self.reason,
                "judgement": self.judgement.to_dict()}


def next_step(policy: Policy, traffic: int) -> int | None:
    """The first of the policy's steps above `traffic` and below 100, if any."""
    return next((s for s in policy.steps if traffic < s < 100), None)


def next_action(overall: Outcome, policy: Policy, traffic: int, step_requests: int) -> tuple[str, int]:
    """(kind, traffic after it): the rule of the module's docstring, without the sentence."""
    if not isinstance(traffic, int) or isinstance(traffic, bool) or not 0 < traffic < 100:
        raise InvalidInput(f"A gated canary's traffic must be a whole percentage above 0 and below 100, not {traffic!r}.")
    if not isinstance(step_requests, int) or isinstance(step_requests, bool) or step_requests < 0:
        raise InvalidInput(f"The requests at a step must be a whole number of at least 0, not {step_requests!r}.")
    if overall is Outcome.WORSE:
        return ABORT, 0
    if step_requests < policy.min_requests:
        return WAIT, traffic
    if overall in (Outcome.BETTER, Outcome.SAME):
        return PROMOTE, 100
    following = next_step(policy, traffic)
    return (STEP, following) if following is not None else (WAIT, traffic)


def decide(judgement: Judgement, policy: Policy, traffic: int, step_requests: int) -> Action:
    """The gate's next action for a canary at `traffic` percent that has answered `step_requests`
    requests since its traffic was last set, with the reason as one sentence."""
    kind, after = next_action(judgement.overall, policy, traffic, step_requests)
    at = f"{traffic} %"
    if kind == ABORT:
        worse = [v.brief for v in judgement.guarded if v.outcome is Outcome.WORSE]
        reason = f"Abort the canary at {at}: {'; '.join(worse)}."
    elif kind == PROMOTE:
        word = "better" if judgement.overall is Outcome.BETTER else "no different"
        reason = (f"Promote the canary from {at}: it is {word} after {wording.count(judgement.canary_requests)} requests, "
                  f"{'; '.join(v.brief for v in judgement.guarded)}.")
    elif step_requests < policy.min_requests:
        reason = (f"Wait at {at}: the canary has answered {wording.count(step_requests)} of the "
                  f"{wording.count(policy.min_requests)} requests each step needs before the gate moves.")
    elif kind == STEP:
        reason = (f"Step the canary from {at} to {after} %: no guarded metric is worse after "
                  f"{wording.count(step_requests)} requests at {at}, and {judgement.waiting_on}.")
    else:
        reason = f"Wait at {at}, the last step before promotion: no guarded metric is worse, and {judgement.waiting_on}."
    return Action(kind, after, reason, judgement)
