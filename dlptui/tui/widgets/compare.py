"""Two model versions side by side: every metric either has, the change, and where each came from.

    app.push_screen(CompareScreen(older, newer))

Esc or q closes it. For a loss, lower is better; for anything else, higher is better: the
better value of each row is shown in green.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from dlptui.platform.model import ModelVersion


def lower_is_better(metric: str) -> bool:
    return "loss" in metric or "error" in metric


def compare_table(a: ModelVersion, b: ModelVersion) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("")
    table.add_column(f"v{a.version}", justify="right")
    table.add_column(f"v{b.version}", justify="right")
    table.add_column("change", justify="right")
    for name in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(name), b.metrics.get(name)
        cells = [Text(f"{v:.4f}" if v is not None else "-") for v in (va, vb)]
        change = Text("-")
        if va is not None and vb is not None:
            change = Text(f"{vb - va:+.4f}")
            if va != vb:
                better_b = (vb < va) if lower_is_better(name) else (vb > va)
                cells[1 if better_b else 0].stylize("bold green")
        table.add_row(name, *cells, change)
    table.add_section()
    for label, attr in (
        ("checkpoint", "checkpoint_uuid"),
        ("experiment", "experiment_id"),
        ("data commit", "data_commit"),
    ):
        va, vb = getattr(a, attr), getattr(b, attr)
        short = [str(v)[:12] if v else "-" for v in (va, vb)]
        table.add_row(label, *short, "same" if va == vb else "differs")
    table.add_row("aliases", ", ".join(a.aliases) or "-", ", ".join(b.aliases) or "-", "")
    return table


class CompareScreen(ModalScreen[None]):
    """A modal with the side-by-side table of two versions of one model."""

    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > Vertical {
        width: 76; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    CompareScreen #compare-title { text-style: bold; padding-bottom: 1; }
    CompareScreen Static { height: auto; }
    """

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Close", id="compare.close"),
    ]

    def __init__(self, a: ModelVersion, b: ModelVersion) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{self.a.model}: version {self.a.version} against version {self.b.version}", id="compare-title")
            yield Static(compare_table(self.a, self.b), id="compare-table")
