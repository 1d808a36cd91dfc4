"""The live view of one experiment: its trials, loss and accuracy charts, state, checkpoints, log tail.

Each poll asks only for what is new: `metrics(id, cursor)` and `logs(id, cursor)` return
the points and lines after the cursors this screen keeps, so the charts grow and the log
keeps up without re-reading the run. It polls every second while the run moves and
every 5 s once it has ended.

A search shows its trials (state, a column per searched hyperparameter, batches, best metric,
progress); the charts overlay every trial (one series each, the best trial's drawn bold), and
`/` on the trial list filters the charts too. Enter opens one trial (`TrialScreen`: its own
charts, log and checkpoints); `m` marks trials and `v` compares the marked ones side by side
(hyperparameters, best metric, a scatter of the metric against each hyperparameter); `n` registers
the best trial's best checkpoint (the register dialog, the trial a choice).
"""

from __future__ import annotations

from collections import defaultdict

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Log, Static

from dlptui.actions.defaults import MODEL
from dlptui.platform.model import Experiment, MetricPoint
from dlptui.render import Column, pick, without
from dlptui.render import training as render
from dlptui.tui.screens.base import UNCHANGED, BaseScreen
from dlptui.tui.screens.experiment_actions import ExperimentActions, progress_bar, state_text
from dlptui.tui.screens.flows import RegisterFlow
from dlptui.tui.shown import plain
from dlptui.tui.widgets.metric_chart import MetricChart
from dlptui.tui.widgets.pane import PaneLog
from dlptui.tui.widgets.resource_table import ResourceTable, rendered

CHECKPOINTS = pick(render.CHECKPOINT_COLUMNS, "uuid", "batch", "accuracy", "loss", "created")

LOG_LINES = 2000


def series_name(point: MetricPoint) -> str:
    name = point.name.replace("validation_", "")
    return f"{'validation' if point.group == 'validation' else 'training'} {name}"


def chart_of(point: MetricPoint) -> str:
    return "accuracy" if "acc" in point.name else "loss"


def best_of(trials, smaller_is_better: bool):
    scored = [t for t in trials if t.best_metric is not None]
    if not scored:
        return None
    return (min if smaller_is_better else max)(scored, key=lambda t: t.best_metric)


class ExperimentScreen(RegisterFlow, ExperimentActions, BaseScreen):
    POLL_SECONDS = 1.0
    MUTATING = ExperimentActions.MUTATING

    BINDINGS = [
        Binding("enter", "open", "Trial", id="experiment.open_trial"),
        Binding("p", "pause", "Pause", id="experiment.pause"),
        Binding("c", "resume", "Resume", id="experiment.resume"),
        Binding("ctrl+k", "kill", "Kill", id="experiment.kill"),
        Binding("m", "mark", "Mark", id="experiment.mark"),
        Binding("v", "compare", "Compare", id="experiment.compare"),
        Binding("n", "new", "Register best", id="experiment.register"),
    ]

    def __init__(self, experiment: str) -> None:
        super().__init__()
        self.experiment = experiment
        self.TITLE = f"Experiment {experiment}"
        self.metric_cursor = 0
        self.log_cursor = 0
        self.ended = False
        self.trials: list = []
        self.marked: set[str] = set()
        self.columns: list[Column] | None = None  # the trials' (once a search has them)
        self.smaller_is_better = True
        self.metric = "validation_loss"
        self.best_trial: str | None = None
        self.by_trial: dict[str, list[MetricPoint]] = defaultdict(list)  # every point, to redraw a filtered chart

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary", markup=False)
        box = Vertical(id="trials-box")
        box.styles.height = "auto"  # empty (and no room taken) for a single trial
        yield box
        with Horizontal(id="charts"):
            yield MetricChart("loss", id="loss")
            yield MetricChart("accuracy", id="accuracy")
        with Horizontal(id="lower"):
            yield ResourceTable.of(CHECKPOINTS, title="Checkpoints", id="checkpoints")
            yield PaneLog("Log", max_lines=LOG_LINES, id="log")

    def experiment_id(self) -> str | None:
        return self.experiment

    def poll_seconds(self) -> float:
        return 5.0 if self.ended else self.POLL_SECONDS

    def fetch(self):
        training = self.platform.training
        experiment = training.get_experiment(self.experiment)
        points, metric_cursor = training.metrics(self.experiment, self.metric_cursor)
        lines, log_cursor = training.logs(self.experiment, self.log_cursor)
        checkpoints = training.checkpoints(self.experiment)
        trials = training.list_trials(self.experiment)
        if self.unchanged_or((experiment, checkpoints, trials)) is UNCHANGED and not points and not lines:
            self.ended = experiment.state.terminal  # (polled every 5 s from here on)
            return UNCHANGED  # a run that moved on by nothing: nothing to draw
        return experiment, points, metric_cursor, lines, log_cursor, checkpoints, trials

    def show(self, data) -> None:
        experiment, points, self.metric_cursor, lines, self.log_cursor, checkpoints, trials = data
        self.ended = experiment.state.terminal and not points and not lines
        self._summary(experiment)
        searcher = (experiment.config or {}).get("searcher") or {}
        self.metric = searcher.get("metric", "validation_loss")
        self.smaller_is_better = searcher.get("smaller_is_better", True)
        if self._show_trials(trials):  # the trial list was just put in: chart once the charts have their final size
            self.call_after_refresh(self._chart, points)
        else:
            self._chart(points)
        if lines:
            self.query_one("#log", Log).write_lines([plain(line) for line in lines])
        self.query_one("#checkpoints", ResourceTable).update_rows(
            rendered(CHECKPOINTS, sorted(checkpoints, key=lambda c: c.batch, reverse=True), key=lambda c: c.uuid))

    # --- trials ---------------------------------------------------------------------

    def _show_trials(self, trials) -> bool:
        """The trial list of a search (more than one trial); True when it was put on the screen just now."""
        self.trials = trials
        best = best_of(trials, self.smaller_is_better)
        changed_best = (best.id if best else None) != self.best_trial
        self.best_trial = best.id if best else None
        if len(trials) < 2:
            return False
        if self.columns is None:  # the searched hyperparameters are known now: one column each
            self.columns = [*without(render.trial_columns(trials, self.metric), "checkpoint"),
                            Column("progress", "PROGRESS", lambda t: "")]
            table = ResourceTable.of(self.columns, title="Trials", id="trials")
            table.styles.height = min(len(trials) + 4, 14)  # the border, the header and a row per trial, at most ten shown
            self.query_one("#trials-box", Vertical).mount(table)
            table.focus()  # the keys of a search's screen (m, v, Enter, j/k) are about its trials
            self.call_after_refresh(self._show_trials, trials)
            return True
        styled = {
            "trial": lambda t, cell: ("* " if t.id in self.marked else "") + cell + (" best" if t.id == self.best_trial else ""),
            "state": lambda t, _: state_text(t.state).append(" (stopped early)" if t.stopped_early else ""),
            "progress": lambda t, _: progress_bar(min(1.0, t.batches_done / t.max_batches) if t.max_batches else 0.0, 10),
        }
        self.query_one("#trials", ResourceTable).update_rows(rendered(self.columns, trials, lambda t: t.id, styled))
        if changed_best:
            self._emphasize()
        return False

    def _shown_trials(self) -> set[str] | None:
        """The trials the list shows (its filter), or None for all."""
        if not self.query("#trials"):
            return None
        table = self.query_one("#trials", ResourceTable)
        if not table.all_keys or not table.filter_text:  # not filled yet, or not filtered
            return None
        return set(table.shown_keys)

    def _series(self, p: MetricPoint) -> str:
        name = series_name(p)
        return f"trial {p.trial_id} {name}" if len(self.trials) > 1 and p.trial_id else name

    def _chart(self, points: list[MetricPoint], only: set[str] | None = None) -> None:
        for p in points:
            self.by_trial[p.trial_id or ""].append(p)
        only = self._shown_trials() if only is None else only
        grouped: dict[tuple[str, str], list[MetricPoint]] = defaultdict(list)
        for p in points:
            if only is None or p.trial_id in only:
                grouped[(chart_of(p), self._series(p))].append(p)
        for (chart, name), series in grouped.items():
            widget = self.query_one(f"#{chart}", MetricChart)
            widget.add_points(name, [p.batch for p in series], [p.value for p in series])
        self._emphasize()

    def _emphasize(self) -> None:
        if len(self.trials) > 1 and self.best_trial:
            for chart in self.query(MetricChart):
                chart.emphasize(f"trial {self.best_trial} ")

    def _redraw(self) -> None:
        """Every chart again from the points kept, for the trials the list shows."""
        for chart in self.query(MetricChart):
            chart.clear()
        every = [p for ps in self.by_trial.values() for p in ps]
        self.by_trial = defaultdict(list)
        self._chart(every)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "trials":
            event.stop()
            self.action_open()

    def _selected_trial(self) -> str | None:
        if not self.query("#trials"):
            return self.trials[0].id if len(self.trials) == 1 else None
        return self.query_one("#trials", ResourceTable).selected_key

    def action_open(self) -> None:
        trial = self._selected_trial()
        if trial is None:
            self.notify("This experiment has no trial yet.", severity="warning")
            return
        self.app.push_screen(TrialScreen(self.experiment, trial))

    def action_mark(self) -> None:
        trial = self._selected_trial()
        if trial is None:
            return
        self.marked ^= {trial}
        self.notify(f"{len(self.marked)} trial{'s' if len(self.marked) != 1 else ''} marked: press v to compare them"
                    + (" with the selected one." if len(self.marked) == 1 else "."))
        self._show_trials(self.trials)

    def action_compare(self) -> None:
        from dlptui.tui.dialogs.compare import CompareTrialsDialog

        chosen = set(self.marked)
        if len(chosen) < 2 and (selected := self._selected_trial()):
            chosen.add(selected)
        if len(chosen) < 2:
            self.notify("Mark trials with m (or one, then select another) and press v.", severity="warning")
            return
        trials = [t for t in self.trials if t.id in chosen]
        self.app.push_screen(CompareTrialsDialog(self.experiment, trials, self.metric, self.smaller_is_better, self.trials))

    def action_new(self) -> None:
        self.start_register(MODEL, self.experiment)

    @on(Input.Changed, "#filter")
    def _filter_charts(self, event: Input.Changed) -> None:  # `/` on the trial list filters the charts too
        if self._filter_target is not None and self._filter_target.id == "trials":
            self.call_after_refresh(self._redraw)

    def _summary(self, e: Experiment) -> None:
        summary = self.query_one("#summary", Static)
        text = state_text(e.state)
        text.append("  ").append_text(progress_bar(e.progress, 20))
        text.append("  " + plain(render.summary(e)))
        if e.detail:
            text.append(f"\n{e.detail}", style="yellow")
        if e.error:
            text.append(f"\n{plain(e.error)}", style="bold red")
        summary.update(text)


class TrialScreen(ExperimentScreen):
    """One trial of a search: its charts, log and checkpoints (Esc goes back to the experiment)."""

    BINDINGS = [
        Binding("n", "new", "Register", id="trial.register"),
    ]

    def __init__(self, experiment: str, trial: str) -> None:
        super().__init__(experiment)
        self.trial = trial
        self.TITLE = f"Experiment {experiment}, trial {trial}"

    def fetch(self):
        training = self.platform.training
        experiment = training.get_experiment(self.experiment)
        points, metric_cursor = training.trial_metrics(self.trial, self.metric_cursor)
        lines, log_cursor = training.trial_logs(self.trial, self.log_cursor)
        checkpoints = [c for c in training.checkpoints(self.experiment) if c.trial_id == self.trial]
        trials = [training.get_trial(self.trial)]
        if self.unchanged_or((experiment, checkpoints, trials)) is UNCHANGED and not points and not lines:
            self.ended = experiment.state.terminal
            return UNCHANGED
        return experiment, points, metric_cursor, lines, log_cursor, checkpoints, trials

    def _summary(self, e: Experiment) -> None:
        t = self.trials[0] if self.trials else None
        if t is None:
            return super()._summary(e)
        text = state_text(t.state)
        if t.stopped_early:
            text.append(" (stopped early)")
        progress = min(1.0, t.batches_done / t.max_batches) if t.max_batches else 0.0
        text.append("  ").append_text(progress_bar(progress, 20))
        text.append("  " + plain(render.trial_summary(t, self.metric)))
        if t.error:
            text.append(f"\n{plain(t.error)}", style="bold red")
        self.query_one("#summary", Static).update(text)

    def action_new(self) -> None:
        from dlptui.actions import registry

        self.call(registry.register, self.platform, MODEL, self.experiment, None, "", self.trial, then=self._registered)

    def action_open(self) -> None:  # already one trial
        pass
