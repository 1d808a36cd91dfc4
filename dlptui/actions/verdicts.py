"""Is the canary better? Its verdicts against the primary, and a shadow's agreement, as every face shows them.

    report = verdicts.judge(platform, name)     # blocking (reads the prediction log): a worker in the console
    report.lines()                              # [(text, outcome)]: one line per metric, the overall first
    report.to_json()                            # `deployment describe --json`'s "verdicts"

The numbers are the serving port's `comparisons` (both versions over the same period, since the canary or the
shadow started); the statistics are `dlptui.analysis`'s (always-valid intervals: docs/verdicts.md), under the
default policy: error rate, p50 and p95 latency guarded, accuracy judged (not guarded) where both versions have
predictions with feedback. Where the profile cannot count them (the cluster without Prometheus, or Prometheus not
answering), the report holds that sentence in `note`; a shadow whose answers the profile cannot pair (the cluster)
shows the comparison's own note instead of its agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlptui import text
from dlptui.analysis import (Agreement, Arm, Counts, Judgement, Latencies, default_policy, judge as judge_arms,
                             policy_from_mapping, shadow_agreement)
from dlptui.errors import NotFound, PlatformError
from dlptui.platform.model import ArmFigures, Comparison

AGREEMENT = "agreement"  # the outcome of a shadow's line (it is not a verdict)
GATE = "gate"  # the outcome of the gate's lines
SHOWN = 5  # disagreements on a shadow's line (--json gives every one the port listed)
# deployment -> (the numbers and policy last judged, the report): a poll that finds the same numbers (the screen asks
# every 2 s, the gate runner every 10 s) gets the same report without the statistics (~60 ms a canary) again
_LAST: dict[str, tuple[tuple, "VerdictReport"]] = {}


def arm(figures: ArmFigures) -> Arm:
    """The analysis' view of one version's numbers."""
    if figures.bounds_ms:
        latencies = Latencies(bounds=figures.bounds_ms, counts=figures.bucket_counts)
    else:
        latencies = Latencies(samples=figures.latencies_ms)
    feedback = Counts(figures.right, figures.judged) if figures.judged else None
    return Arm(requests=figures.requests, errors=figures.errors, latencies=latencies, feedback=feedback)


@dataclass(frozen=True)
class CanaryVerdict:
    comparison: Comparison
    judgement: Judgement


@dataclass(frozen=True)
class ShadowVerdict:
    comparison: Comparison
    agreement: Agreement


@dataclass(frozen=True)
class VerdictReport:
    name: str
    canary: CanaryVerdict | None = None
    shadow: ShadowVerdict | None = None
    note: str = ""  # what could not be judged, in one sentence
    gate: tuple[str, ...] = ()  # the gate's lines (actions.gate.lines), where the face asked for them

    def lines(self) -> list[tuple[str, str]]:
        """(text, outcome) per line: the canary's overall verdict, then one line per metric; the shadow's agreement,
        then the latest requests it answered otherwise (both predictions' ids in the log, for `lineage` or `feedback`)."""
        out: list[tuple[str, str]] = []
        if self.note:
            out.append((f"Verdicts: {self.note}", ""))
        if self.canary is not None:
            c, j = self.canary.comparison, self.canary.judgement
            head = (f"Canary v{c.other.version} against v{c.primary.version} since {text.timestamp(c.since)}: "
                    f"{j.sentence}")
            out.append((head, j.overall.value))
            out += [(f"  {v.sentence}", v.outcome.value) for v in j.verdicts]
        if self.shadow is not None:
            c, a = self.shadow.comparison, self.shadow.agreement
            said = c.note or a.sentence
            out.append((f"Shadow v{c.other.version} against v{c.primary.version} since {text.timestamp(c.since)}: "
                        f"{said}", "" if c.note else AGREEMENT))
            if c.disagreements:
                shown = ", ".join(f"#{d.primary_id} {d.primary_label} / #{d.shadow_id} {d.shadow_label}" for d in c.disagreements[:SHOWN])
                more = f" and {len(c.disagreements) - SHOWN} more" if len(c.disagreements) > SHOWN else ""
                out.append((f"  disagreed lately (primary / shadow): {shown}{more}.", AGREEMENT))
        out += [(line, GATE) for line in self.gate]
        return out

    def to_json(self) -> dict:
        out: dict = {"note": self.note or None, "canary": None, "shadow": None}
        if self.canary is not None:
            c = self.canary.comparison
            out["canary"] = {"version": c.other.version, "primary": c.primary.version, "since": c.since, "traffic": c.share,
                             **self.canary.judgement.to_dict()}
        if self.shadow is not None:
            c = self.shadow.comparison
            out["shadow"] = {"version": c.other.version, "primary": c.primary.version, "since": c.since,
                             **({"note": c.note} if c.note else self.shadow.agreement.to_dict()),
                             "disagreements": [{"primary_id": d.primary_id, "primary_label": d.primary_label,
                                                "shadow_id": d.shadow_id, "shadow_label": d.shadow_label}
                                               for d in c.disagreements]}
        return out


def gate_policy(platform, name: str):
    """The policy of the deployment's gate where it carries one (its verdicts are what the gate acts on), else the
    default policy."""
    gate = platform.serving.get_deployment(name).gate
    if not gate:
        return default_policy()
    try:
        return policy_from_mapping(gate, f"the gate of {name}")
    except PlatformError:  # a gate a later dlptui wrote: shown under the default policy; the gate runner says why
        return default_policy()


def judge(platform, name: str, policy=None) -> VerdictReport:
    """The verdicts of `name`'s canary and shadow, under `policy` (default: the deployment's gate, else the default
    policy); a report with only a `note` where they cannot be judged."""
    try:
        comparisons = platform.serving.comparisons(name)
    except NotFound:
        raise
    except PlatformError as e:  # the profile cannot count them (NotAvailable), or Prometheus does not answer
        return VerdictReport(name, note=str(e))
    if any(c.kind == "canary" for c in comparisons) and policy is None:
        policy = gate_policy(platform, name)
    key = (tuple(comparisons), policy)
    last = _LAST.get(name)
    if last is not None and last[0] == key:  # nothing new since the last look: the same verdicts, not computed again
        return last[1]
    report = _judged(name, comparisons, policy)
    _LAST[name] = (key, report)
    return report


def _judged(name: str, comparisons, policy) -> VerdictReport:
    canary = shadow = None
    for c in comparisons:
        if c.kind == "canary":
            share = c.share / 100 if 0 < c.share < 100 else None
            canary = CanaryVerdict(c, judge_arms(arm(c.primary), arm(c.other), policy, canary_share=share))
        elif c.kind == "shadow":
            shadow = ShadowVerdict(c, shadow_agreement(Counts(c.agreed, c.paired)))
    return VerdictReport(name, canary, shadow)
