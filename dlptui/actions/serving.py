"""Deploying: deploy, update or canary in one decision, the choices a deploy dialog offers, waiting.

    outcome = deploy(platform, "dogcat-deploy", "dogcat-model", "production")
    outcome.deployment, outcome.change   # "deployed", "updated" or "unchanged"

A name that serves nothing (or whose deployment failed) gets a new deployment; a name that
serves another version moves to this one without a failed request; the same version is
left alone. A canary is set, changed or removed on top of that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dlptui.actions import drift_reference
from dlptui.actions.defaults import CANARY_TRAFFIC
from dlptui.errors import InvalidInput, Unreachable
from dlptui.platform import rules
from dlptui.errors import NotFound
from dlptui.platform.model import ALIASES, Deployment, DeploymentState, Model, ModelVersion
from dlptui.text import latency, percent

POLL_S = 0.5

# every model with versions: name -> (Model, its versions newest first)
Choices = dict[str, tuple[Model, list[ModelVersion]]]


@dataclass(frozen=True)
class Outcome:
    deployment: Deployment
    change: str  # "deployed", "updated", "unchanged"
    version: ModelVersion  # what the primary serves now
    previous: int | None = None  # the version served before an update

    def sentence(self, now: Deployment | None = None) -> str:
        """What happened, with the state of `now` (default: the deployment as the change left it)."""
        d = now or self.deployment
        if self.change == "deployed":
            head = f"Deploying {self.version} as {d.name}"
        elif self.change == "updated":
            head = f"Updated {d.name} from version {self.previous} to {self.version}"
        else:
            head = f"{d.name} already serves {self.version}"
        return f"{head}: {d.state.value}, endpoint {d.endpoint or '-'}."


def deploy(
    platform,
    name: str,
    model: str,
    ref: str | int = "latest",
    canary: str | int | None = None,
    traffic: int = CANARY_TRAFFIC,
    gate: str | None = None,
) -> Outcome:
    """Serve `model@ref` as `name`: a new deployment, an update, or nothing when it serves it already.

    `canary` (a version or alias of the same model) then takes `traffic` percent; traffic 0 removes it. `gate`
    (auto, off, a policy file: `actions.gate`) is checked first and set before the canary is."""
    if not name.strip():
        raise InvalidInput("Give the deployment a name, such as dogcat-deploy.")
    check_traffic(traffic)
    from dlptui.actions import gate as gating  # here: the statistics (numpy, scipy) load with a gate, not with the console

    policy = gating.policy_of(gate) if gate is not None else None  # a bad policy file: refused before any change
    version = platform.registry.get_version(model, ref)
    alias = str(ref) if str(ref) in ALIASES else None  # deployed by an alias: the deployment remembers which
    serving = platform.serving
    existing = {d.name: d for d in serving.list_deployments()}.get(name)
    if existing is None or existing.state is DeploymentState.FAILED:
        outcome = Outcome(serving.deploy(name, version, alias), "deployed", version)
    elif (existing.model, existing.version) != (version.model, version.version):
        outcome = Outcome(serving.update(name, version, alias), "updated", version, previous=existing.version)
    else:
        outcome = Outcome(existing, "unchanged", version)
    if gate is not None:
        platform.serving.set_gate(name, policy.to_dict() if policy else None)
    if canary is not None:
        deployment = set_canary(platform, name, model, canary if traffic else None, traffic)
        outcome = Outcome(deployment, outcome.change, version, outcome.previous)
    drift_reference.start_on_deploy(platform, version)  # its drift reference, in the background (local profile)
    if gate is not None:
        gating.wake(platform, platform.serving.get_deployment(name))
    return outcome


def switch(platform, name: str, model: str, ref: str | int) -> Deployment:
    """Move an existing deployment's primary to another version, without a failed request."""
    version = platform.registry.get_version(model, ref)
    deployment = platform.serving.update(name, version)
    drift_reference.start_on_deploy(platform, version)
    return deployment


def set_canary(platform, name: str, model: str, ref: str | int | None, traffic: int) -> Deployment:
    """`traffic` percent of the requests to `model@ref`; ref None or traffic 0 removes the canary."""
    check_traffic(traffic)
    if ref is None or traffic == 0:
        return platform.serving.set_canary(name, None, 0)
    version = platform.registry.get_version(model, ref)
    deployment = platform.serving.set_canary(name, version, traffic)
    drift_reference.start_on_deploy(platform, version)
    if deployment.gate:
        from dlptui.actions import gate as gating

        gating.wake(platform, deployment)
    return deployment


def check_traffic(traffic: int) -> int:
    """A canary's share as a user gives it: 0 removes the canary, 1 to 99 percent keeps one."""
    if traffic == 0 and not isinstance(traffic, bool):
        return 0
    return rules.check_canary_traffic(traffic)


def parse_traffic(text: str) -> int:
    """What a user typed as a canary share."""
    text = text.strip().rstrip("%")
    if not text.isdigit():
        raise InvalidInput(f"A canary takes between 1 and 99 percent of the traffic (0 removes it), not {text!r}.")
    return check_traffic(int(text))


def choices(platform) -> Choices:
    """Every model that has versions, with them newest first (what a deploy dialog offers)."""
    registry = platform.registry
    found: Choices = {}
    for model in registry.list_models():
        versions = sorted(registry.list_versions(model.name), key=lambda v: -v.version)
        if versions:
            found[model.name] = (model, versions)
    return found


def free_name(platform_deployments: list[Deployment], default: str) -> str:
    """The default deployment name when it is free, else empty (the user names the new one)."""
    return default if default not in {d.name for d in platform_deployments} else ""


def wait_until_settled(
    platform, name: str, timeout: float, progress: Callable[[Deployment], None] | None = None
) -> Deployment:
    """Poll until the deployment is no longer starting; `progress` sees each state on the way."""
    deadline = time.monotonic() + timeout
    while True:
        deployment = platform.serving.get_deployment(name)
        if progress is not None:
            progress(deployment)
        if deployment.state is not DeploymentState.STARTING:
            return deployment
        if time.monotonic() > deadline:
            raise Unreachable(f"Deployment {name} was still starting after {timeout:.0f} s; see `dlptui deployment describe {name}`.")
        time.sleep(POLL_S)


# --- canary analysis, shadow, rollback -----------------------------------------------------


def promote_canary(platform, name: str, move_alias: bool = False) -> Deployment:
    """All traffic to the canary's version (the old primary stopped once it has no request in flight); with
    `move_alias`, the alias the deployment was made by (production) is moved to that version in the registry too."""
    current = platform.serving.get_deployment(name)
    if current.canary_version is None:
        raise InvalidInput(f"Deployment {name} has no canary to promote; start one with a canary share first.")
    promoted = platform.serving.update(name, platform.registry.get_version(current.model, current.canary_version))
    if move_alias and promoted.alias:
        platform.registry.promote(promoted.model, promoted.version, promoted.alias)
    return promoted


def alias_note(platform, deployment: Deployment) -> str:
    """One sentence when the alias a deployment was made by no longer names the version it serves (the registry's
    production on v1 while v2 serves), else ""."""
    alias = deployment.alias
    if not alias:
        return ""
    try:
        named = platform.registry.get_version(deployment.model, alias).version
    except NotFound:
        named = None
    if named == deployment.version:
        return ""
    where = f"names version {named}" if named is not None else "names no version"
    return (f"{deployment.name} was deployed as {deployment.model}@{alias}, and {alias} {where} of {deployment.model}, "
            f"but version {deployment.version} serves: move {alias} to version {deployment.version} "
            f"(`dlptui model promote {deployment.model} {deployment.version} --to {alias}`) or deploy "
            f"{deployment.model}@{alias} again.")


def alias_would_drift(platform, deployment: Deployment) -> bool:
    """Whether promoting the deployment's canary would leave its alias naming another version (what `g` asks about)."""
    if not deployment.alias or deployment.canary_version is None:
        return False
    try:
        return platform.registry.get_version(deployment.model, deployment.alias).version != deployment.canary_version
    except NotFound:
        return True


def abort_canary(platform, name: str) -> Deployment:
    """The canary removed: every request to the primary again."""
    current = platform.serving.get_deployment(name)
    if current.canary_version is None:
        raise InvalidInput(f"Deployment {name} has no canary to abort.")
    return platform.serving.set_canary(name, None, 0)


def set_shadow(platform, name: str, model: str, ref: str | int | None) -> Deployment:
    """Mirror every request of `name` to `model@ref` (answers dropped, predictions logged); None removes it."""
    if ref is None:
        return platform.serving.set_shadow(name, None)
    version = platform.registry.get_version(model, ref)
    deployment = platform.serving.set_shadow(name, version)
    drift_reference.start_on_deploy(platform, version)
    return deployment


def rollback(platform, name: str) -> tuple[Deployment, int]:
    """Back to the version served before; (the deployment, the version it left)."""
    left = platform.serving.get_deployment(name).version
    return platform.serving.rollback(name), left


def figures_json(figures) -> list[dict]:
    """The per-version figures as `deployment NAME --json` gives them under `versions`."""
    from dlptui.platform.model import to_dict

    return [to_dict(f) for f in figures]


def verdict(figures) -> str:
    """One sentence comparing the canary (or shadow) with the primary, from what is known."""
    primary = next((f for f in figures if f.role == "primary"), None)
    other = next((f for f in figures if f.role in ("canary", "shadow")), None)
    if primary is None or other is None:
        return ""
    if other.requests is None:
        return other.note
    if not other.requests:
        return f"The {other.role} (version {other.version}) has not answered a request yet."
    rate = lambda f: (f.errors or 0) / f.requests if f.requests else 0.0  # noqa: E731
    parts = [f"{other.role} v{other.version}: {other.requests} requests, {percent(rate(other))} errors"]
    if primary.requests:
        parts.append(f"primary v{primary.version}: {primary.requests} requests, {percent(rate(primary))} errors")
    if other.p95_ms is not None and primary.p95_ms is not None:
        parts.append(f"p95 {latency(other.p95_ms)} vs {latency(primary.p95_ms)}")
    if other.agreement is not None:
        parts.append(f"agrees with the primary on {percent(other.agreement)}")
    return "; ".join(parts) + "."
