"""Experiments: the list (state, progress, best accuracy, data commit); new, pause, resume, kill.

Enter opens the live view of one experiment (`screens/experiment.py`, imported when first
opened: it draws charts with numpy). The same pause (`p`), resume (`c`) and kill (`ctrl+k`)
verbs work on the list's selected row and in the live view (`experiment_actions.py`); kill
always asks first, with "No" focused. `n` starts a new experiment from the choices
`actions.training.start_choices` gives (the shipped configs, the newest commits).
"""

from __future__ import annotations

import importlib

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from dlptui.actions import training
from dlptui.platform.model import Experiment, ExperimentState
from dlptui.render import Column, pick
from dlptui.render import training as render
from dlptui.text import plural
from dlptui.tui.dialogs.start import StartDialog
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.screens.experiment_actions import ExperimentActions, progress_bar, state_text
from dlptui.tui.widgets.resource_table import ResourceTable, rendered

# the render layer's columns, with the console's progress bar after the state
COLUMNS = [*pick(render.EXPERIMENT_COLUMNS, "id", "name", "state"), Column("progress", "PROGRESS", lambda e: ""),
           *pick(render.EXPERIMENT_COLUMNS, "batches", "accuracy", "loss", "data", "created")]


def _import_live_view() -> None:
    importlib.import_module("dlptui.tui.screens.experiment")


class ExperimentsScreen(ExperimentActions, BaseScreen):
    TITLE = "Experiments"
    POLL_SECONDS = 2.0

    BINDINGS = [
        Binding("enter", "open", "Open", id="experiments.open"),
        Binding("n", "new", "New experiment", id="experiments.start"),
        Binding("p", "pause", "Pause", id="experiments.pause"),
        Binding("c", "resume", "Resume", id="experiments.resume"),
        Binding("ctrl+k", "kill", "Kill", id="experiments.kill"),
        Binding("m", "mark", "Mark", id="experiments.mark"),
        Binding("v", "compare", "Compare", id="experiments.compare"),
    ]
    marked: frozenset[str] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.shown: dict[str, Experiment] = {}
        self._made: dict[str, tuple[Experiment, bool, tuple]] = {}  # id -> (experiment, marked, its cells)

    def compose_body(self) -> ComposeResult:
        yield ResourceTable.of(COLUMNS, title="Experiments", id="experiments")

    def on_mount(self) -> None:
        # the live view draws its charts with numpy: imported in a thread while this list is read, so Enter on an
        # experiment does not wait for it (after this screen's first frame: no first frame waits for numpy)
        self.call_after_refresh(self.call, _import_live_view, group="prewarm")

    def fetch(self):
        return self.unchanged_or(self.platform.training.list_experiments())

    def _cells(self, e: Experiment) -> tuple:
        """The row of an experiment, made once for the same experiment (the local store hands back the same object
        while it does not change) and mark."""
        marked = e.id in self.marked
        known = self._made.get(e.id)
        if known is not None and known[0] is e and known[1] == marked:
            return known[2]
        styled = {"id": lambda e, cell: ("* " if marked else "") + cell,
                  "state": lambda e, _: state_text(e.state), "progress": lambda e, _: progress_bar(e.progress)}
        [(_, cells)] = rendered(COLUMNS, [e], lambda e: e.id, styled)
        self._made[e.id] = (e, marked, cells)
        return cells

    def show(self, experiments: list[Experiment]) -> None:
        self.shown = {e.id: e for e in experiments}
        for gone in set(self._made) - set(self.shown):
            del self._made[gone]
        ordered = sorted(experiments, key=lambda e: e.created, reverse=True)
        self.query_one("#experiments", ResourceTable).update_rows((e.id, self._cells(e)) for e in ordered)
        if not experiments:
            hint = "" if self.config.read_only else " Press n to start one"
            sample = ", or F2 to load the sample and start the demo." if self.app.empty_platform else "."
            self.state(f"No experiments yet.{hint}{sample if hint else ''}")
        else:
            self.app.platform_used()
            running = sum(e.state == ExperimentState.RUNNING for e in experiments)
            queued = sum(e.state == ExperimentState.QUEUED for e in experiments)
            cap = f" (max_concurrent_experiments: {self.config.max_concurrent_experiments} at once)" if self.config.kind == "local" else ""
            waiting = f", {queued} queued{cap}" if queued else ""
            self.state(f"{plural(len(experiments), 'experiment')}, {running} running{waiting}. Enter opens the live view.")

    def experiment_id(self) -> str | None:
        return self.query_one("#experiments", ResourceTable).selected_key

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        if chosen := self._chosen():
            from dlptui.tui.screens.experiment import ExperimentScreen  # numpy, for its charts: only when opened

            self.app.push_screen(ExperimentScreen(chosen))

    def action_mark(self) -> None:
        if chosen := self._chosen():
            self.marked = self.marked ^ {chosen}
            self.notify(f"{len(self.marked)} marked: press v to compare them (with the selected one).")
            self.show(list(self.shown.values()))

    def action_compare(self) -> None:
        from dlptui.tui.dialogs.compare import CompareTrialsDialog

        chosen = set(self.marked) | ({self.experiment_id()} if self.experiment_id() else set())
        found = [self.shown[i] for i in sorted(chosen, key=int) if i in self.shown]
        if len(found) < 2:
            self.notify("Mark experiments with m (or one, then select another) and press v.", severity="warning")
            return
        rows, metric, smaller = training.as_trials(found)
        self.app.push_screen(CompareTrialsDialog(None, rows, metric, smaller, noun="experiment"))

    def action_new(self) -> None:
        self.call(training.start_choices, self.platform, then=self._ask_start)

    def _ask_start(self, choices) -> None:
        configs, default, commits = choices
        if not configs:
            self.notify(f"There is no experiment config (*.yaml) beside {default}.", severity="error")
            return

        def chosen(answer) -> None:
            config, data, name, source = answer
            self.call(training.start, self.platform, config, data, name, source, then=self._started)

        self.ask(StartDialog(configs, commits, default), chosen)

    def _started(self, e: Experiment) -> None:
        self.notify(training.started(e))
        self.reload()
