"""The Experiments screens over the real local Training part: start, live charts and log, kill, read-only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml
from textual.widgets import Log, Select

from dlptui.platform.model import ExperimentState
from dlptui.tui.screens.experiment import ExperimentScreen
from dlptui.tui.screens.experiments import ExperimentsScreen
from dlptui.tui.widgets.confirm import ConfirmDialog
from dlptui.tui.widgets.metric_chart import MetricChart
from dlptui.tui.widgets.resource_table import ResourceTable
from dlptui.tui.widgets.start_dialog import StartDialog
from tests.fixtures.tui import SIZE, make_app, wait_for

TRIAL = Path(__file__).resolve().parents[1] / "trial"
RUN_LIMIT_S = 600  # a safety net against a hung child, not a measure of speed


def long_config(tmp_path: Path) -> Path:
    """trial/tiny.yaml made to run for a long time (killed by the test)."""
    conf = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
    conf["name"] = "dogcat-long"
    conf["searcher"]["max_length"] = {"batches": 1_000_000}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def experiments_table(app) -> ResourceTable:
    return app.screen.query_one("#experiments", ResourceTable)


async def test_start_from_the_dialog_and_watch_the_charts_and_log_grow(config, platform, sample_repo):
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen) and app.screen.query_one("#state").render(), what="the list")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="the start dialog")
        dialog = app.screen
        dialog.query_one("#config", Select).value = [p.name for p in dialog.configs].index("tiny.yaml")
        commit_index = next(i for i, (_, ref) in enumerate(dialog.commits) if ref.commit == sample_repo.commit)
        dialog.query_one("#data", Select).value = commit_index
        await pilot.pause()
        await pilot.click("#start")
        await wait_for(pilot, lambda: experiments_table(app).row_count == 1, what="the new experiment row")
        (experiment,) = platform.training.list_experiments()
        assert experiment.data_commit == sample_repo.commit and experiment.name == "dogcat-tiny"

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentScreen), what="the live view")
        loss = app.screen.query_one("#loss", MetricChart)
        accuracy = app.screen.query_one("#accuracy", MetricChart)
        seen: set[int] = set()

        def finished_and_shown() -> bool:
            seen.add(loss.points)
            e = platform.training.get_experiment(experiment.id)
            total = len(platform.training.metrics(experiment.id)[0])
            return e.state.terminal and loss.points + accuracy.points == total

        await wait_for(pilot, finished_and_shown, timeout=RUN_LIMIT_S, what="the run to end with every point charted")
        assert platform.training.get_experiment(experiment.id).state is ExperimentState.COMPLETED
        assert len(seen) >= 2 and max(seen) > 0  # the chart grew while the run went on
        assert set(loss.series) >= {"training loss", "validation loss"}
        assert "validation accuracy" in accuracy.series
        assert "training loss" in loss.render().plain
        log = app.screen.query_one("#log", Log)
        assert log.line_count > 0
        checkpoints = app.screen.query_one("#checkpoints", ResourceTable)
        await wait_for(pilot, lambda: checkpoints.row_count == len(platform.training.checkpoints(experiment.id)), what="the checkpoints")
        assert checkpoints.row_count >= 1
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ExperimentsScreen)


async def test_pause_resume_and_kill_which_asks_and_no_keeps_it_running(config, platform, sample_repo, tmp_path):
    experiment = platform.training.create_experiment(long_config(tmp_path), sample_repo)
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: experiments_table(app).row_count == 1, what="the experiment row")
        await pilot.press("c")  # resume a running experiment: a user mistake, one sentence
        await wait_for(pilot, lambda: any("only a paused experiment" in n.message for n in app._notifications), what="the conflict sentence")
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        assert app.focused.id == "no"
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert not isinstance(app.screen, ConfirmDialog)
        assert platform.training.get_experiment(experiment.id).state in (ExperimentState.RUNNING, ExperimentState.QUEUED)
        await pilot.press("p")
        await wait_for(
            pilot, lambda: platform.training.get_experiment(experiment.id).state is ExperimentState.PAUSED,
            timeout=RUN_LIMIT_S, what="the pause",
        )
        await pilot.press("c")
        await wait_for(
            pilot, lambda: platform.training.get_experiment(experiment.id).state is ExperimentState.RUNNING,
            what="the resume",
        )
        await pilot.press("enter")  # the live view has the same verb
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentScreen), what="the live view")
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(
            pilot, lambda: platform.training.get_experiment(experiment.id).state is ExperimentState.KILLED, what="the kill"
        )
        await wait_for(pilot, lambda: "killed" in str(app.screen.query_one("#summary").render()), what="the state on screen")


async def test_read_only_hides_start_pause_resume_kill(config, platform):
    app = make_app(replace(config, read_only=True), platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        keys = app.screen.active_bindings
        for key in ("s", "p", "c", "k"):
            assert key not in keys
        assert "enter" in keys or "slash" in keys
        await pilot.press("s")
        await pilot.pause()
        assert not isinstance(app.screen, StartDialog)


async def test_first_start_offers_f2_which_loads_the_sample_and_starts_the_demo(config, platform):
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "f2" in app.screen.active_bindings, what="the first-start offer")
        await wait_for(pilot, lambda: "F2" in str(app.screen.query_one("#state").render()), what="the hint on the empty list")
        await pilot.press("f2")
        await wait_for(pilot, lambda: platform.training.list_experiments(), timeout=RUN_LIMIT_S, what="the demo experiment")
        (demo,) = platform.training.list_experiments()
        try:
            assert demo.name == "dogcat-local" and demo.data_repo == "dogs-and-cats"
            assert platform.data.inspect_repo("dogs-and-cats").commits >= 1
            await wait_for(pilot, lambda: experiments_table(app).row_count == 1, what="the demo's row")
            await wait_for(pilot, lambda: "f2" not in app.screen.active_bindings, what="the offer to go")
        finally:
            if not platform.training.get_experiment(demo.id).state.terminal:
                platform.training.kill(demo.id)
