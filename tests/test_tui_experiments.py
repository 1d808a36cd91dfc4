"""The Experiments screens over the real local Training part: start, live charts and log, kill, read-only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from textual.widgets import Log, Select

from dlptui.platform.model import ExperimentState
from dlptui.tui.dialogs.confirm import ConfirmDialog
from dlptui.tui.dialogs.start import StartDialog
from dlptui.tui.screens.experiment import ExperimentScreen
from dlptui.tui.screens.experiments import ExperimentsScreen
from dlptui.tui.widgets.metric_chart import MetricChart
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.tui import SIZE, answer, drawn, make_app, wait_for

TRIAL = Path(__file__).resolve().parents[1] / "trial"
RUN_LIMIT_S = 600  # a safety net against a hung child, not a measure of speed


def long_config(tmp_path: Path) -> Path:
    """trial/tiny.yaml made to run for a long time (killed by the test)."""
    conf = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
    conf["name"] = "dogcat-long"
    conf["hyperparameters"]["max_batches"] = 1_000_000
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def experiments_table(app) -> ResourceTable:
    return app.screen.query_one("#experiments", ResourceTable)


@pytest.mark.slow
async def test_start_from_the_dialog_and_watch_the_charts_and_log_grow(config, platform, sample_repo):
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen) and app.screen.query_one("#state").render(), what="the list")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, StartDialog), what="the start dialog")
        dialog = app.screen
        dialog.query_one("#config", Select).value = [p.name for p in dialog.configs].index("tiny.yaml")
        commit_index = next(i for i, (_, ref) in enumerate(dialog.commits) if ref.commit == sample_repo.commit)
        dialog.query_one("#data", Select).value = commit_index
        await pilot.pause()
        await pilot.press("enter")  # confirms the dialog (Enter in the README's key table)
        await wait_for(pilot, lambda: experiments_table(app).row_count == 1, what="the new experiment row")
        (experiment,) = platform.training.list_experiments()
        assert experiment.data_commit == sample_repo.commit and experiment.name == "dogcat-tiny"

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentScreen), what="the live view")
        loss = app.screen.query_one("#loss", MetricChart)
        accuracy = app.screen.query_one("#accuracy", MetricChart)

        def finished_and_shown() -> bool:
            e = platform.training.get_experiment(experiment.id)
            total = len(platform.training.metrics(experiment.id)[0])
            return e.state.terminal and loss.points + accuracy.points == total

        await wait_for(pilot, finished_and_shown, timeout=RUN_LIMIT_S, what="the run to end with every point charted")
        assert platform.training.get_experiment(experiment.id).state is ExperimentState.COMPLETED
        # (that the charts grow point by point while a run reports: test_the_live_charts_grow_by_the_new_points_only;
        # a 20-batch run may end before the view's first poll on a fast machine)
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


@pytest.mark.slow
async def test_pause_resume_and_kill_which_asks_and_no_keeps_it_running(config, platform, sample_repo, tmp_path):
    experiment = platform.training.create_experiment(long_config(tmp_path), sample_repo)
    kills = []  # what the screen asked the platform to kill
    kill = platform.training.kill
    platform.training.kill = lambda experiment_id: kills.append(experiment_id) or kill(experiment_id)
    try:
        app = make_app(config, platform, start="experiments")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: experiments_table(app).row_count == 1, what="the experiment row")
            await pilot.press("c")  # resume a running experiment: a user mistake, one sentence
            await wait_for(pilot, lambda: any("only a paused experiment" in n.message for n in app._notifications),
                           what="the conflict sentence")
            await pilot.press("ctrl+k")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            assert app.focused.id == "no"
            await answer(pilot, "enter", lambda: not isinstance(app.screen, ConfirmDialog))
            assert kills == []
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
            await pilot.press("ctrl+k")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            await pilot.press("y")
            await wait_for(
                pilot, lambda: platform.training.get_experiment(experiment.id).state is ExperimentState.KILLED, what="the kill"
            )
            await wait_for(pilot, lambda: "killed" in str(app.screen.query_one("#summary").render()), what="the state on screen")
        assert kills == [experiment.id]  # the "y" alone
    finally:  # a million batches: never left training when something above failed
        del platform.training.kill
        if not platform.training.get_experiment(experiment.id).state.terminal:
            platform.training.kill(experiment.id)


async def test_read_only_hides_start_pause_resume_kill(config, platform):
    app = make_app(replace(config, read_only=True), platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen) and app.screen.is_mounted, what="the list")
        keys = app.screen.active_bindings
        for key in ("n", "p", "c", "ctrl+k"):
            assert key not in keys
        assert "enter" in keys or "slash" in keys
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, StartDialog)


@pytest.mark.slow
async def test_first_start_offers_f2_which_loads_the_sample_and_starts_the_demo(config, platform):
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "f2" in app.screen.active_bindings, what="the first-start offer")
        await wait_for(pilot, lambda: "F2" in str(app.screen.query_one("#state").render()), what="the hint on the empty list")
        await pilot.press("f2")
        await wait_for(pilot, lambda: platform.training.list_experiments(), timeout=RUN_LIMIT_S, what="the demo experiment")
        (demo,) = platform.training.list_experiments()
        try:
            # the README's first run: the sample into dogs-and-cats-raw, the shipped split makes dogs-and-cats
            assert demo.name == "dogcat-local" and demo.data_repo == "dogs-and-cats"
            assert [r.name for r in platform.data.list_repos()] == ["dogs-and-cats", "dogs-and-cats-raw"]
            assert [p.name for p in platform.pipelines.list_pipelines()] == ["dogs-and-cats"]
            [job] = platform.pipelines.list_jobs("dogs-and-cats")
            assert demo.data_commit == job.output_commit.partition("@")[2]  # the demo trains on the split's commit
            assert job.reason.startswith("Split 300 images into train/ and eval/") and "skipped no file" in job.reason
            await wait_for(pilot, lambda: experiments_table(app).row_count == 1, what="the demo's row")
            await wait_for(pilot, lambda: "f2" not in app.screen.active_bindings, what="the offer to go")
            await wait_for(pilot, lambda: any("split pipeline made" in n.message for n in app._notifications),
                           what="the sentence of what F2 did")
            await pilot.press("7")  # the Pipelines screen shows the split and its job
            await wait_for(pilot, lambda: "dogs-and-cats-raw ──▶ [dogs-and-cats · running] ──▶ dogs-and-cats"
                           in drawn(app)[0], what="the split in the pipelines' graph")
            assert "success" in drawn(app)[0]
        finally:
            if not platform.training.get_experiment(demo.id).state.terminal:
                platform.training.kill(demo.id)


async def test_the_live_charts_grow_by_the_new_points_only(config, platform, sample_repo):
    """Each poll charts the points reported after the view's cursor, once each: the chart grows with the run."""
    db = platform.training.db
    number = db.insert(name="dogcat-growing", config_file=str(TRIAL / "tiny.yaml"), trial_dir=str(TRIAL),
                       config=yaml.safe_load((TRIAL / "tiny.yaml").read_text()), data_repo=sample_repo.repo,
                       data_commit=sample_repo.commit, max_batches=20)
    db.update(number, state=ExperimentState.PAUSED)  # not ended (the view keeps polling), and no process to find dead
    db.add_metrics(number, number, "training", [(b, "loss", 1.0 / b) for b in range(1, 11)])
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ExperimentScreen(str(number)))
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentScreen) and app.screen.query("#loss"), what="the live view")
        loss = app.screen.query_one("#loss", MetricChart)
        accuracy = app.screen.query_one("#accuracy", MetricChart)
        await wait_for(pilot, lambda: loss.points == 10, what="the first ten points charted")
        db.add_metrics(number, number, "training", [(b, "loss", 1.0 / b) for b in range(11, 21)])
        db.add_metrics(number, number, "validation", [(20, "validation_loss", 0.4), (20, "accuracy", 0.8)])
        await wait_for(pilot, lambda: loss.points == 21 and accuracy.points == 1, what="the new points charted")
        assert list(loss.series["training loss"].xs) == list(range(1, 21))  # each point once, in batch order
        assert list(loss.series["validation loss"].xs) == [20] and list(accuracy.series["validation accuracy"].ys) == [0.8]


def test_chart_history_is_bounded_and_keeps_the_whole_run():
    import numpy as np

    from dlptui.tui.widgets.metric_chart import MAX_POINTS, Series

    s = Series("loss", "red")
    for start in range(0, 3 * MAX_POINTS, 50_000):
        x = np.arange(start, start + 50_000)
        s.add(x, x * 2.0)
    assert s.n <= MAX_POINTS
    assert s.xs[0] == 0 and s.xs[-1] >= 3 * MAX_POINTS - 50_000  # both ends of the run survive
    assert np.all(np.diff(s.xs) > 0) and np.array_equal(s.ys, s.xs * 2.0)


def test_chart_columns_keep_extremes_and_join_sparse_points():
    import numpy as np

    from dlptui.tui.widgets.metric_chart import column_ranges

    xs = np.arange(1000, dtype=float)
    ys = np.zeros(1000)
    ys[500] = 9.0  # one spike among 1000 points drawn in 10 columns
    has, low, high = column_ranges(xs, ys, 0, 999, 10)
    assert has.all() and high.max() == 9.0 and low.min() == 0.0
    has, low, high = column_ranges(np.array([0.0, 9.0]), np.array([0.0, 9.0]), 0, 9, 10)  # two validations
    assert has.all() and list(np.round(high)) == list(range(10))  # the straight line between them


async def test_chart_redraws_only_when_points_arrive():
    from textual.app import App

    class One(App):
        def compose(self):
            yield MetricChart("loss")

    app = One()
    async with app.run_test(size=(80, 20)) as pilot:
        chart = app.query_one(MetricChart)
        assert "waiting for the first points" in chart.render().plain
        chart.add_points("training loss", [1, 2, 3], [0.9, 0.5, 0.4])
        await pilot.pause()
        first = chart.render()
        assert chart.render() is first  # nothing new: the cached drawing
        chart.add_points("training loss", [4], [0.3])
        assert chart.render() is not first and "training loss 0.3" in chart.render().plain


# --- a search: trials, overlaid charts, one trial, comparison, register the best ---------------------


def seed_search(platform, sample_repo) -> tuple[str, dict[str, str]]:
    """A finished random search of three trials, recorded as the local runner records one (no training):
    its trials, their metrics and a checkpoint each at batch 10 and 20. Returns (experiment id, trial id -> best uuid)."""
    import uuid as uuids

    db = platform.training.db
    config = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
    config["searcher"] = {"name": "random", "metric": "accuracy", "smaller_is_better": False, "max_trials": 3}
    number = db.insert(name="dogcat-search", config_file=str(TRIAL / "tiny.yaml"), trial_dir=str(TRIAL), config=config,
                       data_repo=sample_repo.repo, data_commit=sample_repo.commit, max_batches=60)
    best: dict[str, str] = {}
    for lr, accuracies in ((0.001, (0.55, 0.60)), (0.01, (0.70, 0.85)), (0.1, (0.50, 0.52))):
        trial = db.insert_trial(number, {"learning_rate": lr}, 20)
        uuids_of = []
        for batch, acc in zip((10, 20), accuracies):
            db.add_metrics(number, trial, "training", [(b, "loss", 1.0 / b) for b in range(batch - 9, batch + 1)])
            db.add_metrics(number, trial, "validation", [(batch, "accuracy", acc), (batch, "validation_loss", 1 - acc)])
            ckpt = str(uuids.uuid4())
            db.add_checkpoint(ckpt, number, trial, batch, f"determined/{ckpt}")
            uuids_of.append(ckpt)
        db.update_trial(trial, state=ExperimentState.COMPLETED)
        best[str(trial)] = uuids_of[1]
    db.update(number, state=ExperimentState.COMPLETED)
    return str(number), best


async def test_a_search_lists_its_trials_overlays_them_compares_and_registers_the_best(config, platform, sample_repo):
    from dlptui.tui.dialogs.compare import CompareTrialsDialog
    from dlptui.tui.dialogs.register import RegisterDialog
    from dlptui.tui.screens.experiment import TrialScreen

    experiment, best = seed_search(platform, sample_repo)
    trials = sorted(best, key=int)
    winner = trials[1]  # learning rate 0.01: accuracy 0.85
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ExperimentScreen(experiment))
        await wait_for(pilot, lambda: bool(app.screen.query("#trials")) and app.screen.query_one("#trials", ResourceTable).row_count == 3,
                       what="the trial list")
        table = app.screen.query_one("#trials", ResourceTable)
        assert [str(c.label) for c in table.columns.values()][:3] == ["TRIAL", "STATE", "LEARNING_RATE"]
        row = [str(getattr(c, "plain", c)) for c in table.get_row(winner)]
        assert row[0].endswith("best") and "0.01" in row[2] and row[4] == "85.0%"  # accuracy as every face writes it
        loss = app.screen.query_one("#loss", MetricChart)
        await wait_for(pilot, lambda: {f"trial {t} training loss" for t in trials} <= set(loss.series), what="one series per trial")
        accuracy = app.screen.query_one("#accuracy", MetricChart)
        await wait_for(pilot, lambda: accuracy.series.get(f"trial {winner} validation accuracy") is not None
                       and accuracy.series[f"trial {winner} validation accuracy"].color == "bold white", what="the best drawn bold")
        assert all(s.color != "bold white" for name, s in accuracy.series.items() if not name.startswith(f"trial {winner} "))

        # `/` on the trial list filters the charts
        table.focus()
        await pilot.press("slash", *"best", "enter")  # the best trial's row says so
        await wait_for(pilot, lambda: set(loss.series) == {f"trial {winner} training loss", f"trial {winner} validation loss"},
                       what="the chart filtered to one trial")
        await pilot.press("slash")
        for _ in "best":
            await pilot.press("backspace")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(loss.series) == 6, what="every trial charted again")

        # Enter: one trial, its own charts
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialScreen), what="the trial view")
        own = app.screen.query_one("#loss", MetricChart)
        await wait_for(pilot, lambda: set(own.series) == {"training loss", "validation loss"}, what="the trial's own charts")
        await wait_for(pilot, lambda: app.screen.query_one("#checkpoints", ResourceTable).row_count == 2, what="its checkpoints")
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen) is ExperimentScreen, what="back")

        # m, m, v: side by side, with a scatter of the metric against the learning rate
        table = app.screen.query_one("#trials", ResourceTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("m")
        table.move_cursor(row=1)
        await pilot.press("m")
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareTrialsDialog), what="the comparison")
        dialog = app.screen
        assert [t.id for t in dialog.trials] == trials[:2]
        scatter = dialog.query(".scatter").first().render()
        plotted = str(getattr(scatter, "plain", scatter))
        assert "learning_rate (log scale)" in plotted and "best accuracy" in plotted
        assert sum(1 for ch in plotted if 0x2800 < ord(ch) <= 0x28FF) == 3  # a dot per trial
        lines = [line.split("█")[1] for line in drawn(app)[0].splitlines() if line.count("█") >= 2]  # the dialog's
        assert any("best accuracy" in line and "60.0%" in line and "85.0%" in line for line in lines)  # the one metric rule
        axis = next(i for i, line in enumerate(lines) if "learning_rate (log scale)" in line)
        assert lines[axis - 1].split() == ["0.001", "0.01", "0.1"]  # the log axis ticked at values, never 1e-2.5
        await pilot.press("q")
        await wait_for(pilot, lambda: type(app.screen) is ExperimentScreen, what="the comparison closed")

        # n: register, the best trial first
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RegisterDialog), what="the register dialog")
        assert app.screen.query_one("#trial", Select).value == winner
        await pilot.click("#ok")
        await wait_for(pilot, lambda: platform.registry.list_models() != [], what="the version")
        (version,) = platform.registry.list_versions(platform.registry.list_models()[0].name)
        assert version.checkpoint_uuid == best[winner]


async def test_the_start_dialog_offers_the_search_and_a_version_to_start_warm_from(config, platform):
    from textual.widgets import Input

    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        got: list = []
        app.push_screen(StartDialog([TRIAL / "tiny.yaml", TRIAL / "search.yaml"], [], TRIAL / "search.yaml"), got.append)
        await wait_for(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen.query("#source"), what="the start dialog")
        app.screen.query_one("#source", Input).value = "dogcat-model@production"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: got, what="the answer")
        assert got[0] == (TRIAL / "search.yaml", None, None, "dogcat-model@production")


async def test_experiments_marked_in_the_list_are_compared_side_by_side(config, platform, sample_repo):
    from dlptui.tui.dialogs.compare import CompareTrialsDialog

    first, _ = seed_search(platform, sample_repo)
    second, _ = seed_search(platform, sample_repo)
    import json

    changed = {**platform.training.get_experiment(second).config, "hyperparameters": {"backbone": "tiny", "momentum": 0.5}}
    platform.training.db.update(int(second), config=json.dumps(changed))
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: experiments_table(app).row_count == 2, what="the list")
        table = experiments_table(app)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("m")
        await wait_for(pilot, lambda: str(table.get_row_at(0)[0]).startswith("* "), what="the mark")
        table.move_cursor(row=1)
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareTrialsDialog), what="the comparison")
        rendered = app.screen.query_one("#compare-table").render()
        assert sorted(t.id for t in app.screen.trials) == sorted([first, second])
        assert app.screen.noun == "experiment" and {t.hparams.get("momentum") for t in app.screen.trials} == {0.9, 0.5}
        assert rendered is not None


def seed_six_trials(platform, sample_repo) -> str:
    """A finished search of six trials, each with 20 batches of training loss and one validation (batch 20)."""
    db = platform.training.db
    config = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
    config["searcher"] = {"name": "random", "metric": "accuracy", "smaller_is_better": False, "max_trials": 6}
    number = db.insert(name="dogcat-six", config_file=str(TRIAL / "tiny.yaml"), trial_dir=str(TRIAL), config=config,
                       data_repo=sample_repo.repo, data_commit=sample_repo.commit, max_batches=120)
    for n in range(6):
        trial = db.insert_trial(number, {"learning_rate": 10 ** -(n + 1)}, 20)
        db.add_metrics(number, trial, "training", [(b, "loss", 1.0 / b + n / 10) for b in range(1, 21)])
        db.add_metrics(number, trial, "validation", [(20, "accuracy", 0.5 + n / 20), (20, "validation_loss", 0.5 - n / 20)])
        db.update_trial(trial, state=ExperimentState.COMPLETED)
    db.update(number, state=ExperimentState.COMPLETED)
    return str(number)


@pytest.mark.parametrize("size", [(160, 45), (200, 50)])
async def test_charts_of_six_trials_fit_with_their_axes_and_the_keys_go_to_the_trials(config, platform, sample_repo, size):
    experiment = seed_six_trials(platform, sample_repo)
    app = make_app(config, platform, start="experiments")
    async with app.run_test(size=size) as pilot:
        app.push_screen(ExperimentScreen(experiment))
        await wait_for(pilot, lambda: len(app.screen.query_one("#accuracy", MetricChart).series) == 6,
                       what="six trials charted")
        await pilot.pause()
        text = drawn(app)[0]
        assert text.count("batch 20") == 2, text  # both charts' x axes are drawn, not cut off
        legends = [line for line in text.splitlines() if "━ trial" in line]
        assert len(legends) == 1 and legends[0].count("more") == 2, text  # one line of legend per chart, side by side
        labels = [line for line in text.splitlines() if "┤" in line]
        assert len(labels) == 2 and all(line.count("┤") == 2 for line in labels), text  # top and bottom y labels of both
        # the keys go to the trial list at once, no tab needed: j moves it, m marks, v compares
        trials = app.screen.query_one("#trials", ResourceTable)
        assert app.focused is trials and "─ ▶ Trials ─" in text
        await pilot.press("j", "m", "j")
        assert trials.cursor_row == 2
        await wait_for(pilot, lambda: "* " in drawn(app)[0], what="the mark on the second trial")
        from dlptui.tui.dialogs.compare import CompareTrialsDialog

        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareTrialsDialog), what="the comparison")


def test_one_point_is_a_marker_with_its_value_and_a_legend_stays_on_one_line():
    chart = MetricChart("accuracy")
    chart.add_points("validation accuracy", [20], [0.734])
    lines = chart.draw(60, 8).plain.splitlines()
    assert len(lines) == 8 and all(len(line) <= 60 for line in lines)
    assert sum("● 0.734" in line for line in lines) == 1 and lines[-1].strip() == "20                                         batch 20"
    for n in range(12):
        chart.add_points(f"trial {n} training accuracy", [1, 2, 3], [0.1, 0.2, 0.3 + n / 100])
    lines = chart.draw(60, 8).plain.splitlines()
    assert len(lines) == 8 and all(len(line) <= 60 for line in lines)
    assert lines[0].endswith("more") or "more" in lines[0]
    assert "batch 20" in lines[-1]


@pytest.mark.slow
async def test_the_cluster_screen_lists_this_homes_trainer_and_no_other_homes(config, platform, sample_repo, tmp_path):
    """A training's runner and its trial carry the home; the Cluster screen of another home does not list them."""
    from dlptui.actions import training as actions
    from dlptui.config import load_config
    from dlptui.platform.local.cluster import LocalCluster

    experiment = actions.start(platform, config=long_config(tmp_path), data=sample_repo)
    try:
        app = make_app(config, platform, start="cluster")
        async with app.run_test(size=SIZE) as pilot:
            workloads = app.screen.query_one("#workloads", ResourceTable)
            await wait_for(pilot, lambda: sum(1 for k in workloads.all_keys if k.startswith("training/")) >= 2,
                           timeout=RUN_LIMIT_S, what="the runner and its trial on the Cluster screen")
            assert "training" in drawn(app)[0]
            pids = {k.rsplit("-", 1)[-1] for k in workloads.all_keys if k.startswith("training/")}
        other = tmp_path / "other-home"
        other.mkdir(mode=0o700)
        elsewhere = LocalCluster(load_config(profile="local", env={"DLPTUI_HOME": str(other)})).workloads()
        assert not [w for w in elsewhere if w.name.rsplit("-", 1)[-1] in pids]
    finally:
        platform.training.kill(experiment.id)
