"""The live view of one experiment: loss and accuracy charts, state, checkpoints, log tail.

Each poll asks only for what is new: `metrics(id, cursor)` and `logs(id, cursor)` return
the points and lines after the cursors this screen keeps, so the charts grow and the log
keeps up without re-reading the run. It polls every second while the run moves and
every 5 s once it has ended.
"""

from __future__ import annotations

from collections import defaultdict

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Log, Static

from dlptui.platform.metrics import accuracy, loss
from dlptui.platform.model import Experiment, MetricPoint
from dlptui.text import data_ref, number, percent, timestamp, uuid
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.screens.experiment_actions import ExperimentActions, progress_bar, state_text
from dlptui.tui.widgets.metric_chart import MetricChart
from dlptui.tui.widgets.resource_table import ResourceTable

LOG_LINES = 2000


def series_name(point: MetricPoint) -> str:
    name = point.name.replace("validation_", "")
    return f"{'validation' if point.group == 'validation' else 'training'} {name}"


def chart_of(point: MetricPoint) -> str:
    return "accuracy" if "acc" in point.name else "loss"


class ExperimentScreen(ExperimentActions, BaseScreen):
    POLL_SECONDS = 1.0

    BINDINGS = [
        Binding("p", "pause", "Pause", id="experiment.pause"),
        Binding("c", "resume", "Resume", id="experiment.resume"),
        Binding("ctrl+k", "kill", "Kill", id="experiment.kill"),
    ]

    def __init__(self, experiment: str) -> None:
        super().__init__()
        self.experiment = experiment
        self.TITLE = f"Experiment {experiment}"
        self.metric_cursor = 0
        self.log_cursor = 0
        self.ended = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="summary")
        with Horizontal(id="charts"):
            yield MetricChart("loss", id="loss")
            yield MetricChart("accuracy", id="accuracy")
        with Horizontal(id="lower"):
            yield ResourceTable(
                [("uuid", "CHECKPOINT"), ("batch", "BATCH"), ("accuracy", "ACC"), ("loss", "VAL LOSS"), ("created", "CREATED")],
                id="checkpoints",
            )
            yield Log(max_lines=LOG_LINES, id="log")

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
        return experiment, points, metric_cursor, lines, log_cursor, checkpoints

    def show(self, data) -> None:
        experiment, points, self.metric_cursor, lines, self.log_cursor, checkpoints = data
        self.ended = experiment.state.terminal and not points and not lines
        self._summary(experiment)
        grouped: dict[tuple[str, str], list[MetricPoint]] = defaultdict(list)
        for p in points:
            grouped[(chart_of(p), series_name(p))].append(p)
        for (chart, name), series in grouped.items():
            self.query_one(f"#{chart}", MetricChart).add_points(name, [p.batch for p in series], [p.value for p in series])
        if lines:
            self.query_one("#log", Log).write_lines(lines)
        self.query_one("#checkpoints", ResourceTable).update_rows(
            (
                c.uuid,
                (
                    uuid(c.uuid),
                    c.batch,
                    percent(accuracy(c.metrics)),
                    number(loss(c.metrics)),
                    timestamp(c.created),
                ),
            )
            for c in sorted(checkpoints, key=lambda c: c.batch, reverse=True)
        )

    def _summary(self, e: Experiment) -> None:
        summary = self.query_one("#summary", Static)
        text = state_text(e.state)
        text.append("  ").append_text(progress_bar(e.progress, 20))
        text.append(f"  {e.batches_done}/{e.max_batches} batches   {e.name}   data {data_ref(e.data_repo, e.data_commit)}")
        text.append(f"   best accuracy {percent(e.best_accuracy)}, validation loss {number(e.best_validation_loss)}")
        if e.error:
            text.append(f"\n{e.error}", style="bold red")
        summary.update(text)
