"""What a deployment served at a moment (`deployment history NAME --at TIME`): the routing then, and the entry that
set it.

The rule (the last entry at or before the moment holds) is `platform.deployment_policy.serving_at`; the words and
the drawing are `render.timeline`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from dlptui.errors import InvalidInput
from dlptui.platform.deployment_policy import serving_at
from dlptui.platform.model import DeploymentChange, to_dict

FUTURE_SLACK_S = 5.0  # a moment this far ahead of the clock is still "now" (clocks of two machines)


@dataclass(frozen=True)
class Served:
    """The answer for one moment: the entries kept, and the one whose routing served then (None before the first)."""

    name: str
    at: float
    history: tuple[DeploymentChange, ...]

    @property
    def entry(self) -> DeploymentChange | None:
        return serving_at(self.history, self.at)

    def to_json(self) -> dict:
        e = self.entry
        routing = None if e is None else {"model": e.model, "primary": e.to_version, "canary": e.canary,
                                          "share": e.share if e.canary is not None else 0, "shadow": e.shadow}
        return {"deployment": self.name, "at": self.at, "routing": routing, "entry": None if e is None else to_dict(e),
                "first_entry": min((c.time for c in self.history), default=None)}


def moment(given: str, now: float | None = None) -> float:
    """`--at` as a person gives it (an age such as 2h, an ISO time, epoch seconds); not in the future."""
    from dlptui.actions.predict import parse_since

    t = parse_since(given, "--at")
    now = time.time() if now is None else now
    if not math.isfinite(t) or t > now + FUTURE_SLACK_S:
        raise InvalidInput(f"--at {given} is not a moment up to now; give an age (2h, 1d), an ISO time or epoch seconds "
                           "in the past.")
    return t


def served_at(platform, name: str, given: str) -> Served:
    """What `name` served at the moment `given` names."""
    t = moment(given)
    return Served(name, t, tuple(platform.serving.history(name)))

