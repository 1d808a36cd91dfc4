"""A gate's policy: which metrics it guards with which margin, its false-alarm level, its traffic
steps and the requests each step needs. Parsed from a small TOML or YAML file; a mistake in it is
one sentence (`InvalidInput`).

    alpha = 0.05                  # at most 5 % of gates abort an equal canary or promote a worse one
    steps = [10, 25, 50, 100]     # canary traffic in percent; 100 is the promotion itself
    min_requests = 500            # canary requests at each step before the gate moves on
    [guard]                       # metric = margin (delta)
    error_rate = 0.005            # rates: a difference, here half a percentage point
    p95_latency = 0.10            # latency: a relative change, here 10 %
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from dlptui.analysis.metrics import METRICS
from dlptui.errors import InvalidInput

FIELDS = ("alpha", "guard", "min_requests", "steps")
DEFAULT_GUARD = {"error_rate": METRICS["error_rate"].delta, "p50_latency": METRICS["p50_latency"].delta,
                 "p95_latency": METRICS["p95_latency"].delta}


@dataclass(frozen=True)
class Policy:
    guard: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_GUARD))  # metric name -> delta
    alpha: float = 0.05  # the gate's false-alarm level, split evenly over the guarded metrics
    steps: tuple[int, ...] = (10, 25, 50, 100)  # canary traffic, percent; 100 = promote
    min_requests: int = 500  # canary requests at each step (and in all) before a step or a promotion

    def __post_init__(self):
        check({"alpha": self.alpha, "steps": self.steps, "min_requests": self.min_requests, "guard": self.guard}, "the policy")

    @property
    def metric_alpha(self) -> float:
        """Each guarded metric's level: the gate's alpha over the guarded metrics (Bonferroni), so
        that the chance any of them gives a false verdict stays at most alpha."""
        return self.alpha / max(1, len(self.guard))

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "steps": list(self.steps), "min_requests": self.min_requests, "guard": dict(self.guard)}


def default_policy(accuracy: bool = False) -> Policy:
    """What `--gate auto` guards: error rate, p50 and p95 latency, and accuracy where asked (a
    guarded accuracy needs feedback on both versions before the canary can be promoted)."""
    guard = dict(DEFAULT_GUARD)
    if accuracy:
        guard["accuracy"] = METRICS["accuracy"].delta
    return Policy(guard=guard)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check(values: Mapping, source: str) -> None:
    """One sentence, beginning with `source`, on the first bad value of a policy's fields."""
    alpha, steps, min_requests, guard = (values[name] for name in ("alpha", "steps", "min_requests", "guard"))
    if not _number(alpha) or not 0 < alpha < 0.5:
        raise InvalidInput(f"{source}: alpha must be a number above 0 and below 0.5 (0.05 is a 5 % false-alarm level), not {alpha!r}.")
    if (not isinstance(steps, (list, tuple)) or not steps or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
            or any(not 1 <= s <= 100 for s in steps) or any(a >= b for a, b in zip(steps, steps[1:]))):
        raise InvalidInput(f"{source}: steps must be rising whole percentages from 1 to 100 such as [10, 25, 50, 100], not {steps!r}.")
    if not isinstance(min_requests, int) or isinstance(min_requests, bool) or min_requests < 1:
        raise InvalidInput(f"{source}: min_requests must be a whole number of at least 1, not {min_requests!r}.")
    if not isinstance(guard, Mapping) or not guard:
        raise InvalidInput(f"{source}: guard must name at least one metric with its margin, such as error_rate = 0.005.")
    for name, delta in guard.items():
        if name not in METRICS:
            raise InvalidInput(f"{source}: guard names an unknown metric {name!r}; the metrics are {', '.join(METRICS)}.")
        if not _number(delta) or not 0 < delta < 1:
            kind = "a relative change (0.10 is 10 %)" if METRICS[name].relative else "a difference of rates (0.005 is half a point)"
            raise InvalidInput(f"{source}: the margin of {name} must be a number above 0 and below 1, {kind}, not {delta!r}.")


def policy_from_mapping(data: object, source: str = "the policy") -> Policy:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{source}: a policy is a table of {', '.join(FIELDS)}, not {type(data).__name__}.")
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        raise InvalidInput(f"{source}: unknown field {unknown[0]!r}; a policy has {', '.join(FIELDS)}.")
    values = Policy().to_dict() | dict(data)
    check(values, source)
    return Policy(guard=dict(values["guard"]), alpha=values["alpha"], steps=tuple(values["steps"]), min_requests=values["min_requests"])


def parse_policy(text: str, source: str = "policy.toml") -> Policy:
    """A policy from a file's text; `source` (its name) picks TOML (.toml) or YAML (.yaml, .yml)
    and begins every sentence about a mistake in it."""
    lowered = source.lower()
    try:
        if lowered.endswith(".toml"):
            import tomllib

            data = tomllib.loads(text)
        elif lowered.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
            if data is None:
                data = {}
        else:
            raise InvalidInput(f"{source}: a policy file ends in .toml, .yaml or .yml.")
    except InvalidInput:
        raise
    except Exception as e:  # tomllib.TOMLDecodeError, yaml.YAMLError: the parser's own first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInput(f"{source} is not valid {'TOML' if lowered.endswith('.toml') else 'YAML'} ({first}); fix it and try again.") from None
    return policy_from_mapping(data, source)
