"""Two model versions side by side: every metric either has, the change, and where each came from.

    app.push_screen(CompareDialog(older, newer))

For a loss or an error rate lower is better, for anything else higher: the better value of
each row is in green. Esc, `q` or Enter closes it.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from dlptui import text
from dlptui.platform.model import ModelVersion
from dlptui.tui.dialogs.base import Dialog


def lower_is_better(metric: str) -> bool:
    return "loss" in metric or "error" in metric


def compare_table(a: ModelVersion, b: ModelVersion) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("")
    table.add_column(text.version_tag(a.version), justify="right")
    table.add_column(text.version_tag(b.version), justify="right")
    table.add_column("change", justify="right")
    for name in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(name), b.metrics.get(name)
        cells = [Text(text.score(v)) for v in (va, vb)]
        change = Text(text.MISSING)
        if va is not None and vb is not None:
            change = Text(f"{vb - va:+.4f}")
            if va != vb:
                better_b = (vb < va) if lower_is_better(name) else (vb > va)
                cells[1 if better_b else 0].stylize("bold green")
        table.add_row(name, *cells, change)
    table.add_section()
    for label, va, vb in (
        ("checkpoint", a.checkpoint_uuid, b.checkpoint_uuid),
        ("experiment", a.experiment_id, b.experiment_id),
        ("data commit", a.data_commit, b.data_commit),
    ):
        table.add_row(label, text.commit_id(va), text.commit_id(vb), "same" if va == vb else "differs")
    table.add_row("aliases", ", ".join(a.aliases) or text.MISSING, ", ".join(b.aliases) or text.MISSING, "")
    return table


class CompareDialog(Dialog[None]):
    """The side-by-side table of two versions of one model."""

    OK = None
    CANCEL = ("close", "Close")
    BINDINGS = [Binding("q", "cancel", "Close", id="compare.close")]

    def __init__(self, a: ModelVersion, b: ModelVersion) -> None:
        super().__init__(f"{a.model}: version {a.version} against version {b.version}")
        self.a, self.b = a, b

    def compose_body(self) -> ComposeResult:
        yield Static(compare_table(self.a, self.b), id="compare-table")

    def result(self) -> None:
        return None
