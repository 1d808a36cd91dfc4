"""Experiments: the list (state, progress, best accuracy, data commit); start, pause, resume, kill.

Enter opens the live view of one experiment (`screens/experiment.py`). The same pause,
resume and kill verbs work on the list's selected row and in the live view
(`ExperimentActions`); kill always asks first, with "No" focused.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from dlptui.errors import PlatformError
from dlptui.platform.model import DataRef, Experiment, ExperimentState
from dlptui.tui.format import human_time, number, percent, plural
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from dlptui.tui.widgets.start_dialog import StartDialog

STATE_STYLES = {
    ExperimentState.QUEUED: "yellow",
    ExperimentState.RUNNING: "bold green",
    ExperimentState.PAUSED: "yellow",
    ExperimentState.COMPLETED: "blue",
    ExperimentState.ERROR: "bold red",
    ExperimentState.KILLED: "red",
}


def progress_bar(fraction: float, width: int = 12) -> Text:
    filled = round(fraction * width)
    return Text.assemble(("█" * filled, "green"), ("░" * (width - filled), "dim"), f" {100 * fraction:3.0f}%")


def state_text(state: ExperimentState) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


def data_label(e: Experiment) -> str:
    return f"{e.data_repo}@{e.data_commit[:12]}" if e.data_repo and e.data_commit else "-"


class ExperimentActions:
    """Pause, resume and kill on `self.experiment_id()`; mixed into a BaseScreen."""

    MUTATING = frozenset({"start", "pause", "resume", "kill"})

    def experiment_id(self) -> str | None:
        raise NotImplementedError

    def _chosen(self) -> str | None:
        chosen = self.experiment_id()
        if chosen is None:
            self.notify("Select an experiment first.", severity="warning")
        return chosen

    def _changed(self, what: str):
        def done(e: Experiment) -> None:
            self.notify(f"Experiment {e.id} {what}: it is {e.state.value} now.")
            self.reload()

        return done

    def action_pause(self) -> None:
        if chosen := self._chosen():
            self.notify(f"Pausing experiment {chosen} at its next checkpoint...")
            self.call(self.platform.training.pause, chosen, then=self._changed("paused"))

    def action_resume(self) -> None:
        if chosen := self._chosen():
            self.call(self.platform.training.resume, chosen, then=self._changed("resumed"))

    def action_kill(self) -> None:
        if chosen := self._chosen():
            self.confirm(
                f"Kill experiment {chosen}? It stops at once; its checkpoints stay.",
                lambda: self.call(self.platform.training.kill, chosen, then=self._changed("killed")),
            )


class ExperimentsScreen(ExperimentActions, BaseScreen):
    TITLE = "Experiments"
    POLL_SECONDS = 2.0

    BINDINGS = [
        Binding("enter", "open", "Open", id="experiments.open"),
        Binding("s", "start", "Start", id="experiments.start"),
        Binding("p", "pause", "Pause", id="experiments.pause"),
        Binding("c", "resume", "Resume", id="experiments.resume"),
        Binding("k", "kill", "Kill", id="experiments.kill"),
    ]

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(
            [
                ("id", "ID"),
                ("name", "NAME"),
                ("state", "STATE"),
                ("progress", "PROGRESS"),
                ("batches", "BATCHES"),
                ("accuracy", "BEST ACC"),
                ("loss", "BEST VAL LOSS"),
                ("data", "DATA"),
                ("created", "CREATED"),
            ],
            id="experiments",
        )

    def fetch(self):
        return self.platform.training.list_experiments()

    def show(self, experiments: list[Experiment]) -> None:
        ordered = sorted(experiments, key=lambda e: e.created, reverse=True)
        self.query_one("#experiments", ResourceTable).update_rows(
            (
                e.id,
                (
                    e.id,
                    e.name,
                    state_text(e.state),
                    progress_bar(e.progress),
                    f"{e.batches_done}/{e.max_batches}",
                    percent(e.best_accuracy),
                    number(e.best_validation_loss),
                    data_label(e),
                    human_time(e.created),
                ),
            )
            for e in ordered
        )
        if not experiments:
            hint = "" if self.config.read_only else " Press s to start one"
            sample = ", or F2 to load the sample and start the demo." if self.app.empty_platform else "."
            self.state(f"No experiments yet.{hint}{sample if hint else ''}")
        else:
            running = sum(e.state == ExperimentState.RUNNING for e in experiments)
            self.state(f"{plural(len(experiments), 'experiment')}, {running} running. Enter opens the live view.")

    def experiment_id(self) -> str | None:
        return self.query_one("#experiments", ResourceTable).selected_key

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        if chosen := self._chosen():
            from dlptui.tui.screens.experiment import ExperimentScreen

            self.app.push_screen(ExperimentScreen(chosen))

    def action_start(self) -> None:
        self.call(self._start_choices, then=self._ask_start)

    def _start_choices(self) -> tuple[list[Path], Path, list[tuple[str, DataRef]]]:
        """Runs in a thread: the config files, the default one and the newest commits of every repo."""
        from dlptui.actions.training import start_choices

        return start_choices(self.platform)

    def _ask_start(self, choices) -> None:
        configs, default, commits = choices
        if not configs:
            self.notify(f"There is no experiment config (*.yaml) beside {default}.", severity="error")
            return

        def chosen(answer) -> None:
            if answer is None:
                return
            config, data, name = answer
            self.call(self.platform.training.create_experiment, config, data, name, then=self._started)

        self.app.push_screen(StartDialog(configs, commits, default), chosen)

    def _started(self, e: Experiment) -> None:
        self.notify(f"Experiment {e.id} ({e.name}) started on {data_label(e)}.")
        self.reload()
