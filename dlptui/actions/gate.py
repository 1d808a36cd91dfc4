"""The gate: a deployment's canary aborted, stepped or promoted by its policy, with the reason in its history.

    gate.attach(platform, "dogcat-deploy", "auto")       # or a policy file: gate.policy_of("policy.toml")
    gate.look(platform, "dogcat-deploy")                 # one look: judge, decide, act (an Action, or None)
    gate.look_all(platform)                              # every gated canary of the platform, once

A deployment carries its gate (the policy, `Deployment.gate`) whatever its canary: the gate guards whichever
canary it is given, until it is removed (`--gate off`). One look judges the canary against its primary on the
numbers since the canary started (`actions.verdicts`, the policy's metrics and margins), and `analysis.decide`
says what to do. A step or a promotion waits for the policy's `min_requests` at the present step: the canary's
requests since the last step, counted from the numbers the step's history entry kept. Every action the gate
takes is a history entry by `dlptui gate` with its reason (one sentence with the numbers) and the judgement
behind it; a wait changes nothing. A promotion moves the alias the deployment was made by (production) to the
promoted version too, as `deployment promote --move-alias` does, so the registry names what serves.

Who looks: the home's gate runner (`platform/gate_runner.py`, `dlptui gate run`), started when a gated
deployment has a canary, whoever set it; it ends when no gated canary is left. A person can promote or abort
at any time; with --read-only nothing is started and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlptui.actions import verdicts
from dlptui.actions.user_files import read_user_file
from dlptui.analysis import ABORT, PROMOTE, STEP, Action, Policy, decide, default_policy, parse_policy, policy_from_mapping
from dlptui.errors import InvalidInput, NotFound, PlatformError
from dlptui.platform import gate_runner
from dlptui.platform.deployment_policy import GATE
from dlptui.platform.model import Deployment, ModelVersion

AUTO, OFF = "auto", "off"


@dataclass(frozen=True)
class Taken:
    """What one look did on one deployment."""

    deployment: str
    action: Action
    acted: bool  # False: a wait, or --read-only

    def sentence(self) -> str:
        return f"{self.deployment}: {self.action.reason}"


def policy_of(gate: str) -> Policy | None:
    """What `--gate` names: `auto` (the default policy), `off` (None), or a policy file (TOML or YAML)."""
    if gate == AUTO:
        return default_policy()
    if gate == OFF:
        return None
    text = read_user_file(gate, "policy file", give="give --gate a .toml or .yaml policy file", missing=InvalidInput,
                          missing_fix="give --gate auto, off, or a .toml or .yaml policy file")
    return parse_policy(text, Path(gate).name)


def attach(platform, name: str, gate: str) -> Deployment:
    """Gate the deployment's canaries by `gate` (auto, off, a policy file); the runner starts if a canary waits."""
    policy = policy_of(gate)
    deployment = platform.serving.set_gate(name, policy.to_dict() if policy else None)
    ensure_runner(platform)
    return deployment


def policy(deployment: Deployment) -> Policy | None:
    """The deployment's gate as a Policy (None without one; one a later dlptui cannot read is one sentence)."""
    if not deployment.gate:
        return None
    return policy_from_mapping(deployment.gate, f"the gate of {deployment.name}")


def step_requests(platform, name: str, canary_requests: int, traffic: int) -> int:
    """The canary's requests at its present share: those since the entry that set the share, when the gate set it
    (its numbers kept the canary's requests then), else since the canary started."""
    for change in reversed(platform.serving.history(name)):
        if change.canary is None:
            break
        if change.share != traffic:
            break
        numbers = change.numbers or {}
        if change.by == GATE and isinstance(numbers.get("canary_requests"), int) and numbers.get("traffic") == traffic:
            return max(0, canary_requests - numbers["canary_requests"])
    return canary_requests


def look(platform, name: str, act: bool = True) -> Taken | None:
    """One look at `name`'s gated canary: the action its policy gives, taken unless `act` is False (read-only) or it
    is a wait. None where there is nothing to gate (no gate, no canary) or nothing to judge it on yet."""
    deployment = platform.serving.get_deployment(name)
    gated = policy(deployment)
    if gated is None or deployment.canary_version is None:
        return None
    report = verdicts.judge(platform, name, gated)
    if report.canary is None:
        return None
    comparison, judgement = report.canary.comparison, report.canary.judgement
    traffic = deployment.canary_traffic
    at_step = step_requests(platform, name, comparison.other.requests, traffic)
    action = decide(judgement, gated, traffic, at_step)
    if action.kind not in (ABORT, PROMOTE, STEP) or not act or platform.config.read_only:
        return Taken(name, action, False)
    # the canary serves already: the serving part knows where its checkpoint lies (no registry needed to move it)
    canary = ModelVersion(model=deployment.model, version=deployment.canary_version, checkpoint_uuid="", created=0.0)
    auto = {"reason": action.reason,
            "numbers": {"action": action.kind, "canary": canary.version, "primary": deployment.version,
                        "traffic": action.traffic, "canary_requests": comparison.other.requests,
                        "primary_requests": comparison.primary.requests, "step_requests": at_step,
                        "judgement": judgement.to_dict()}}
    if action.kind == ABORT:
        platform.serving.set_canary(name, None, 0, auto=auto)
    elif action.kind == STEP:
        platform.serving.set_canary(name, canary, action.traffic, auto=auto)
    else:
        promoted = platform.serving.update(name, canary, auto=auto)
        if promoted.alias:
            try:
                platform.registry.promote(promoted.model, promoted.version, promoted.alias)
            except NotFound:  # the version left the registry while it served: the deployment says what serves
                pass
    return Taken(name, action, True)


def gated(platform) -> list[Deployment]:
    """The deployments whose gate has a canary to guard."""
    return [d for d in platform.serving.list_deployments() if d.gate and d.canary_version is not None]


def look_all(platform, say: Callable[[str], None] = lambda line: None) -> bool:
    """One look at every gated canary; each action taken (or refused) is said. Whether a gated canary is left."""
    for deployment in gated(platform):
        try:
            taken = look(platform, deployment.name)
        except NotFound:  # undeployed meanwhile
            continue
        except PlatformError as e:  # one deployment that cannot be judged or changed now: the next look tries again
            say(f"{deployment.name}: {e}")
            continue
        if taken is not None and taken.acted:
            say(taken.sentence())
    return bool(gated(platform))


def wake(platform, deployment: Deployment) -> bool:
    """Start the gate runner if `deployment` (as a change left it) has a gated canary; whether one was started."""
    if platform.config.read_only or not deployment.gate or deployment.canary_version is None:
        return False
    return gate_runner.start(platform.config)


def ensure_runner(platform) -> bool:
    """Start the home's gate runner when a gated canary waits and none runs; whether one was started."""
    if platform.config.read_only:
        return False
    try:
        if not gated(platform):
            return False
    except PlatformError:
        return False
    return gate_runner.start(platform.config)


def lines(platform, name: str) -> list[str]:
    """The gate's policy and what it would do now, as `describe`, `deployment gate` and the console show them ([]
    without a gate). Blocking: a worker in the console."""
    deployment = platform.serving.get_deployment(name)
    gated = policy(deployment)
    if gated is None:
        return []
    out = [f"Gate: {summary(gated)}."]
    if deployment.canary_version is None:
        out.append("  No canary to judge; the gate guards the next one (`dlptui deploy ... --canary V`).")
        return out
    taken = look(platform, name, act=False)
    if taken is not None:
        out.append(f"  Next: {taken.action.reason}")
    else:  # the profile cannot count the canary's numbers (the cluster without Prometheus): the gate waits, and says why
        note = verdicts.judge(platform, name, gated).note
        out.append(f"  The gate cannot judge the canary yet: {note}" if note else "  The gate has nothing to judge yet.")
    if not platform.config.read_only and not gate_runner.running(platform.config):
        out.append("  The gate runner is not running; the next look starts it (`dlptui deployment gate NAME`).")
    return out


def news(platform, after: float) -> tuple[list[str], float]:
    """The gate's actions on every gated deployment since `after` (epoch seconds), a sentence each, and the time of
    the newest; the gate runner is started where a gated canary waits without one (the console looks every few
    seconds)."""
    said, newest = [], after
    for deployment in platform.serving.list_deployments():
        if not deployment.gate:
            continue
        try:
            history = platform.serving.history(deployment.name)
        except NotFound:
            continue
        for change in history:
            if change.by == GATE and change.time > after and change.reason:
                said.append(f"{deployment.name}: {change.reason}")
                newest = max(newest, change.time)
        wake(platform, deployment)
    return said, newest


def summary(policy: Policy) -> str:
    """The policy in words: what it guards with which margin, its steps, the requests a step needs, its level."""
    from dlptui.analysis import METRICS

    guards = ", ".join(f"{METRICS[name].title} within ±{100 * delta:g} {'%' if METRICS[name].relative else 'points'}"
                       for name, delta in policy.guard.items())
    steps = [s for s in policy.steps if s < 100]
    stepping = f"traffic steps {', '.join(f'{s} %' for s in steps)}, then promotion" if steps else "promotion at once"
    return (f"{guards}; {stepping}; {policy.min_requests:,} canary requests a step; "
            f"at most {100 * policy.alpha:g} % false aborts or promotions")


def runner_state(platform) -> dict:
    """Whether the home's gate runner runs, its pid and its log (for --json and the console)."""
    found = gate_runner.record(platform.config)
    alive = gate_runner.running(platform.config)
    return {"running": alive, "pid": found.pid if found and alive else None,
            "log": str(gate_runner.root(platform.config) / gate_runner.LOG)}
