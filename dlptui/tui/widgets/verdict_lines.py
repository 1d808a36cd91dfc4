"""The Deployments screen's verdicts: the canary against its primary, a line per metric, and a shadow's agreement.

    lines = VerdictLines(id="verdicts")
    lines.show_report(verdict_report(platform, name))   # verdict_report in the screen's worker: it reads and judges

Coloured by outcome: worse red, better green, no difference cyan, not yet yellow; the shadow's agreement plain;
the gate's policy and its next action (actions.gate.lines) magenta. Hidden while the selected deployment has
neither canary, shadow nor gate.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dlptui.tui.shown import show_in, shown

STYLE = {"worse": "bold red", "better": "green", "no difference": "cyan", "not yet": "yellow", "": "dim", "gate": "magenta"}


def verdict_report(platform, name: str | None):
    """actions.verdicts.judge of `name`, or None for no deployment. Blocking: call it in a worker."""
    if not name:
        return None
    from dlptui.actions import verdicts
    from dlptui.errors import PlatformError

    from dataclasses import replace

    from dlptui.actions import gate

    try:
        report = verdicts.judge(platform, name)
    except PlatformError as e:
        return verdicts.VerdictReport(name, note=str(e))
    try:
        return replace(report, gate=tuple(gate.lines(platform, name)))
    except PlatformError as e:
        return replace(report, gate=(f"Gate: {e}",))


class VerdictLines(Static):
    DEFAULT_CSS = "VerdictLines { display: none; height: auto; }"

    def show_report(self, report) -> None:
        lines = report.lines() if report is not None else []
        show_in(self, Text("\n").join(shown(line, STYLE.get(outcome, "")) for line, outcome in lines) if lines else "",
                display=bool(lines))
