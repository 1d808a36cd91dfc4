"""The Deployments screen's drift line: each version of the selected deployment against its own training data.

    line = DriftLine(id="drift")
    line.show_report(drift_report(platform, name))   # drift_report in the screen's worker: it reads and tests

One line per version: its verdict (green stable, red drifting), the p-value and window, the outliers, and a
sparkline of its drift scores (-log10 p of each judged window, drawn on a fixed scale: a full block is TOP, the
alarm line 2 is two thirds up, so a quiet series stays low). A drifting version adds what would retrain it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from dlptui.tui.shown import show_in, shown
from dlptui.tui.widgets.sparkline import BLOCKS

TOP = 3.0
STYLE = {"drifting": "bold red", "stable": "green"}


def score_line(scores: Sequence[float], width: int = 16) -> str:
    """The last `width` scores as blocks from 0 to TOP (higher scores are full blocks)."""
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[min(top, max(0, int(min(float(s), TOP) / TOP * top + 0.5)))] for s in list(scores)[-width:])


def drift_report(platform, name: str | None):
    """The drift of `name`'s versions (actions.drift.judge), or a report holding the sentence of what failed; None for no
    deployment. Blocking: call it in a worker."""
    if not name:
        return None
    from dlptui.actions import drift
    from dlptui.errors import PlatformError

    try:
        return drift.judge(platform, name)
    except PlatformError as e:
        return drift.DriftReport(name, note=str(e))


class DriftLine(Static):
    """Hidden until there is a deployment to say something about."""

    DEFAULT_CSS = "DriftLine { display: none; height: auto; }"

    def show_report(self, report) -> None:
        if report is None:
            show_in(self, "", display=False)
            return
        if report.note:
            show_in(self, shown(f"Drift: {report.note}", "dim"), display=True)
            return
        lines = []
        for v in report.versions:
            head = shown(f"Drift v{v.version} {v.role}: ", "bold")
            if v.latest is None:
                lines.append(Text.assemble(head, shown(v.note, "dim")))
                continue
            r = v.latest
            figures = f" p {r['p_value']:.2g}, window {r['window']}, score {r['score']:.1f}"
            if v.outliers is not None:
                figures += f", {v.outliers} outlier{'s' if v.outliers != 1 else ''} in {v.scored}"
            lines.append(Text.assemble(head, shown(v.state, STYLE.get(v.state, "")), shown(figures + "  "),
                                       shown(score_line(v.scores), STYLE.get(v.state, ""))))
            if v.suggestion:
                lines.append(shown(v.suggestion, "red"))
        show_in(self, Text("\n").join(lines), display=True)
