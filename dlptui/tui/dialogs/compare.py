"""Two model versions side by side: every metric either has, the change, and where each came from;
or the trials of a search side by side, with the searcher metric against each hyperparameter.

    app.push_screen(CompareDialog(a, b))        # the older version on the left, whichever was marked
    app.push_screen(CompareTrialsDialog(experiment_id, chosen_trials, metric, smaller_is_better, all_trials))

The text comes from the render layer (`render.registry.compare_versions`): the change is the newer
version's value minus the older's, in the metric's own unit (percentage points for an accuracy),
with the better direction named; the better value of each row is in green. Esc, `q` or Enter
closes it.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from dlptui import text
from dlptui.platform.model import ModelVersion
from dlptui.render import registry, training
from dlptui.tui.dialogs.base import Dialog
from dlptui.tui.shown import shown


def compare_table(a: ModelVersion, b: ModelVersion) -> Table:
    old, new, rows, facts = registry.compare_versions(a, b)
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("")
    table.add_column(text.version_tag(old.version), justify="right")
    table.add_column(text.version_tag(new.version), justify="right")
    table.add_column(f"change ({text.version_tag(new.version)} - {text.version_tag(old.version)})", justify="right")
    for row in rows:
        cells = [Text(row.old), Text(row.new)]
        change = Text(row.change)
        if row.better is not None:
            cells[1 if row.better else 0].stylize("bold green")
            change.stylize("green" if row.better else "red")
        table.add_row(shown(row.name), *cells, change)
    table.add_section()
    for row in facts:
        table.add_row(row.name, shown(row.old), shown(row.new), row.change)
    return table


class CompareDialog(Dialog[None]):
    """The side-by-side table of two versions of one model."""

    OK = None
    CANCEL = ("close", "Close")
    BINDINGS = [Binding("q", "cancel", "Close", id="compare.close")]

    def __init__(self, a: ModelVersion, b: ModelVersion) -> None:
        old, new = (a, b) if a.version <= b.version else (b, a)
        super().__init__(f"{a.model}: version {new.version} against version {old.version}")
        self.a, self.b = old, new

    def compose_body(self) -> ComposeResult:
        yield Static(compare_table(self.a, self.b), id="compare-table", markup=False)

    def result(self) -> None:
        return None


# --- trials (or experiments) of a search, side by side -----------------------------------------


def differing(rows: list[dict]) -> set[str]:
    """The keys whose values are not all the same."""
    keys = {k for r in rows for k in r}
    return {k for k in keys if len({repr(r.get(k)) for r in rows}) > 1}


def trials_table(trials: list, smaller_is_better: bool, noun: str = "trial", metric: str = "") -> Table:
    """Hyperparameters, then batches, best and final metric of each trial; differences in yellow, the best in green."""
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("")
    for t in trials:
        table.add_column(f"{noun} {t.id}", justify="right")
    differ = differing([t.hparams for t in trials])
    for name in sorted({k for t in trials for k in t.hparams}):
        cells = [shown(text.hparam(t.hparams.get(name)), style="yellow" if name in differ else "") for t in trials]
        table.add_row(shown(name, style="bold yellow" if name in differ else ""), *cells)
    table.add_section()
    table.add_row("state", *[training.trial_state(t) for t in trials])
    table.add_row("batches", *[str(t.batches_done) for t in trials])
    scored = [t.best_metric for t in trials if t.best_metric is not None]
    best = (min(scored) if smaller_is_better else max(scored)) if scored else None
    table.add_row(f"best {metric}" if metric else "best metric",
                  *[Text(text.metric(metric, t.best_metric) if metric else text.number(t.best_metric),
                         style="bold green" if best is not None and t.best_metric == best else "") for t in trials])
    table.add_row("best checkpoint", *[text.uuid(t.best_checkpoint) if t.best_checkpoint else text.MISSING for t in trials])
    return table


class CompareTrialsDialog(Dialog[None]):
    """Trials side by side, and the searcher metric against each searched hyperparameter (a scatter)."""

    OK = None
    CANCEL = ("close", "Close")
    BINDINGS = [Binding("q", "cancel", "Close", id="compare.close")]

    def __init__(self, experiment_id: str | None, trials: list, metric: str, smaller_is_better: bool, everyone: list | None = None,
                 noun: str = "trial") -> None:
        where = f"Experiment {experiment_id}: " if experiment_id else ""
        super().__init__(f"{where}{len(trials)} {noun}s side by side")
        self.trials, self.metric, self.smaller, self.noun = trials, metric, smaller_is_better, noun
        self.everyone = everyone or trials  # the scatter shows every trial, the chosen ones as the table does

    def compose_body(self) -> ComposeResult:
        from dlptui.tui.widgets.scatter import scatter_text

        yield Static(trials_table(self.trials, self.smaller, self.noun, self.metric), id="compare-table", markup=False)
        scored = [t for t in self.everyone if t.best_metric is not None]
        best = None
        if scored:
            top = (min if self.smaller else max)(scored, key=lambda t: t.best_metric)
            best = self.everyone.index(top)
        for name in sorted(differing([t.hparams for t in self.everyone])):
            yield Static(scatter_text([t.hparams.get(name) for t in self.everyone], [t.best_metric for t in self.everyone],
                                      width=36, height=6, highlight=best, x_name=name, y_name=f"best {self.metric}",
                                      y_format=lambda v: text.metric(self.metric, v)),
                         classes="scatter", markup=False)

    def result(self) -> None:
        return None
