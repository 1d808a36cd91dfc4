"""The rules of a deployment's routing, the same on both profiles: which version holds which role, what a
change does to the other roles, what the history keeps, and where a rollback goes.

A deployment routes to a `Routing`: the primary version, perhaps a canary with its share of the requests, perhaps
a shadow that sees a copy of every request. A version holds at most one role: it is refused as canary while it is
the primary or the shadow, as shadow while it is the primary or the canary. Making a version the primary takes it
out of the role it had (a promoted canary stops being the canary; a shadow that becomes the primary stops
shadowing), so no version ever shadows itself.

Every change is a history entry (`entry`) with the routing before and after it: deploys, updates, promotions,
rollbacks, and canary and shadow changes. A rollback goes back to the whole routing (primary, canary and its
share, shadow) that served just before the last change of the primary version (`rollback_target`). Both serving
adapters keep the entries (the local state file, the SeldonDeployment's annotation) and call these functions;
neither decides on its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from dlptui.errors import InvalidInput
from dlptui.platform.model import DeploymentChange

HISTORY_KEEP = 50
GATE = "dlptui gate"  # the "by" of an automatic change: the gate moved the canary (its entry says why)
ROLES = ("primary", "canary", "shadow")


@dataclass(frozen=True)
class Routing:
    """Who serves what: the primary version, a canary with its share (percent), a shadow."""

    model: str
    primary: int
    canary: int | None = None
    share: int = 0  # the canary's percent of the requests (0 without a canary)
    shadow: int | None = None

    def role_of(self, version: int) -> str | None:
        return next((role for role in ROLES if getattr(self, role) == version), None)

    def versions(self) -> tuple[int, ...]:
        return tuple(v for v in (self.primary, self.canary, self.shadow) if v is not None)

    def to_json(self) -> dict:
        return {"model": self.model, "primary": self.primary, "canary": self.canary, "share": self.share,
                "shadow": self.shadow}

    @classmethod
    def from_json(cls, data: Mapping) -> Routing:
        canary = data.get("canary")
        return cls(str(data["model"]), int(data["primary"]), None if canary is None else int(canary),
                   int(data.get("share") or 0) if canary is not None else 0,
                   None if data.get("shadow") is None else int(data["shadow"]))


def who() -> str:
    """The OS account that makes a change (not $USER or $LOGNAME, which anyone can set), as history's "by"."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # an account with no passwd entry (a container's arbitrary uid)
        return str(os.getuid())


def _taken(name: str, routing: Routing, version: int, role: str) -> InvalidInput:
    holds = routing.role_of(version)
    what = "serves" if holds == "primary" else f"has as its {holds}"
    promote = ", or promote it" if holds == "canary" else ""
    return InvalidInput(f"Deployment {name!r} already {what} version {version}; pick another version for the {role} "
                        f"(a version holds one role at a time{promote}).")


def with_canary(name: str, routing: Routing, version: int | None, share: int) -> Routing:
    """The routing with `version` as the canary at `share` percent (None: no canary)."""
    if version is None:
        return replace(routing, canary=None, share=0)
    if routing.role_of(version) not in (None, "canary"):
        raise _taken(name, routing, version, "canary")
    return replace(routing, canary=version, share=share)


def with_shadow(name: str, routing: Routing, version: int | None) -> Routing:
    """The routing with `version` as the shadow (None: no shadow)."""
    if version is None:
        return replace(routing, shadow=None)
    if routing.role_of(version) not in (None, "shadow"):
        raise _taken(name, routing, version, "shadow")
    return replace(routing, shadow=version)


def with_primary(routing: Routing, model: str, version: int) -> tuple[Routing, str]:
    """The routing with `version` as the primary, and the change's name: a canary of that version is promoted
    (all traffic to it), a shadow of it becomes the primary; either stops holding its old role."""
    promoted = routing.canary == version and routing.model == model
    after = Routing(model, version,
                    None if promoted or routing.model != model else routing.canary,
                    0 if promoted or routing.model != model else routing.share,
                    None if routing.shadow == version or routing.model != model else routing.shadow)
    return after, "promoted" if promoted else "updated"


def entry(change: str, by: str, before: Routing | None, after: Routing, auto: Mapping | None = None, **extra) -> dict:
    """A history entry: what changed, who changed it, the routing before and after (and what `extra` adds:
    where each version's checkpoint lies, for a later rollback). `auto`: an automatic change's `reason` (a
    sentence) and `numbers` (what it was decided on); its entry is by GATE unless `auto` names another `by` (the
    retrain loop's canary)."""
    if auto:
        by = str(auto.get("by") or GATE)
        extra = {**extra, "reason": str(auto.get("reason") or ""), "numbers": dict(auto.get("numbers") or {})}
    return {"time": time.time(), "change": change, "by": by, "model": after.model,
            "from_version": before.primary if before else None, "to_version": after.primary,
            "before": before.to_json() if before else None, "after": after.to_json(), **extra}


def gate_entry(by: str, current: Routing, gate: Mapping | None) -> dict:
    """The entry of a gate set or removed: the routing stays; the policy is kept in the entry."""
    return {**entry("gate" if gate else "gate removed", by, current, current), "gate": dict(gate) if gate else None}


def check_gate(gate) -> dict | None:
    if gate is not None and not isinstance(gate, Mapping):
        raise InvalidInput(f"A gate is a policy (a table of its fields), not {type(gate).__name__}.")
    return dict(gate) if gate is not None else None


def appended(history: Sequence[dict], new: dict) -> list[dict]:
    return [*list(history)[-(HISTORY_KEEP - 1):], new]


def routing_after(e: Mapping) -> Routing | None:
    """The routing an entry left (entries written before routings were kept: its primary alone)."""
    if isinstance(e.get("after"), Mapping):
        return Routing.from_json(e["after"])
    if e.get("to_version") is None:
        return None
    return Routing(str(e.get("model", "")), int(e["to_version"]))


def routing_before(e: Mapping) -> Routing | None:
    if isinstance(e.get("before"), Mapping):
        return Routing.from_json(e["before"])
    if e.get("from_version") is None:
        return None
    return Routing(str(e.get("model", "")), int(e["from_version"]))


def rollback_target(name: str, history: Sequence[Mapping], current: Routing) -> Routing:
    """The whole routing that served just before the last change of the primary version.

    InvalidInput when the deployment has served no other primary version."""
    for e in reversed(history):
        before, after = routing_before(e), routing_after(e)
        if before is None or after is None or before.primary == after.primary:
            continue
        if after.primary == current.primary and before.primary != current.primary:
            return before
    raise InvalidInput(f"Deployment {name!r} has served no other version; there is nothing to roll back to.")


def changes(history: Sequence[Mapping]) -> list[DeploymentChange]:
    """The history as the port gives it."""
    out = []
    for e in history:
        after = routing_after(e)
        if after is None:
            continue
        out.append(DeploymentChange(float(e.get("time") or 0.0), str(e.get("change", "")), str(e.get("by", "")),
                                    after.model, e.get("from_version"), after.primary, canary=after.canary,
                                    share=after.share, shadow=after.shadow, reason=str(e.get("reason") or ""),
                                    numbers=e.get("numbers") if isinstance(e.get("numbers"), dict) else None))
    return out


def started(history: Sequence[DeploymentChange], role: str, version: int, primary: int) -> float | None:
    """When `version` began its present run as the deployment's `role` ("canary" or "shadow") beside `primary`: the
    time of the first of the last entries that all left that routing (a canary's traffic steps do not restart it;
    a new primary does). None when the last entry does not leave it (a history an older dlptui wrote)."""
    since = None
    for change in reversed(history):
        if getattr(change, role) != version or change.to_version != primary:
            break
        since = change.time
    return since


def serving_at(history: Sequence[DeploymentChange], t: float) -> DeploymentChange | None:
    """The entry whose routing served at `t`: the last one made at or before it (a change holds from its own
    time on, so at exactly an entry's time that entry's routing serves; entries of the same time, the later
    written). None before the first entry kept."""
    found = None
    for change in sorted(history, key=lambda c: c.time):  # stable: entries of one time stay in written order
        if change.time > t:
            break
        found = change
    return found
