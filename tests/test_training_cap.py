"""One platform-wide cap on the local experiments that train at once (max_concurrent_experiments): one started
while the cap is reached is queued, its runner waiting for a slot, and trains once a slot frees; it shows as
queued in `experiment list`, `experiment describe` and the Experiments screen, and can be killed, paused and
resumed while it waits. Real runners and real (tiny) training, held with the test gate."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from dlptui.platform.local import training_start
from dlptui.platform.model import ExperimentState
from tests.fixtures.training import wait_for
from tests.test_training import write_config

QUEUED, RUNNING = ExperimentState.QUEUED, ExperimentState.RUNNING
GUARD_S = 300.0  # a safety net against a hung child, not a measure of speed


@pytest.fixture
def capped(home, monkeypatch, sample_repo):
    """A platform over the test's home whose cap is one experiment at once, with the sample committed."""
    from dlptui.config import load_config
    from dlptui.platform import Platform

    monkeypatch.setenv("DLPTUI_MAX_CONCURRENT_EXPERIMENTS", "1")
    platform = Platform(load_config())
    assert platform.config.max_concurrent_experiments == 1
    yield platform
    platform.close()


def waiting_for_a_slot(training, experiment_id: str, cursor: int = 0) -> None:
    """Until the experiment's runner has said, in its log after `cursor`, that it waits for a slot."""
    deadline = time.monotonic() + GUARD_S
    while not any("dlptui.search: Queued: " in line for line in training.logs(experiment_id, cursor)[0]):
        row = training.db.row(experiment_id)
        assert row.state is QUEUED, f"experiment {experiment_id} is {row.state.value}, not waiting queued"
        assert time.monotonic() < deadline, f"experiment {experiment_id}'s runner never said it waits for a slot"
        time.sleep(0.1)
    assert training.db.row(experiment_id).pid, "its runner recorded itself"


@pytest.mark.slow
def test_a_second_experiment_is_queued_until_the_first_ends_then_runs(capped, gate, capsys):
    from dlptui.cli import main

    training = capped.training
    tiny = write_config(gate.folder, "tiny.yaml")  # trial/tiny.yaml as it is, with the gated trial
    gate.close(at=3)  # the first cannot end while the test looks at the second
    first = training.create_experiment(tiny)
    assert first.state is RUNNING  # a slot was free: it holds it from its start
    gate.wait_held(1, training, first.id)
    second = training.create_experiment(tiny, name="second")
    assert second.state is QUEUED  # what `dlptui train` prints at once
    waiting_for_a_slot(training, second.id)

    queued = training.get_experiment(second.id)
    assert (queued.state, training.get_experiment(first.id).state) == (QUEUED, RUNNING)
    assert queued.detail == training_start.queued(1)
    assert queued.batches_done == 0 and training.list_trials(second.id) == []  # nothing of it started
    assert training.health().detail == "1 running, 1 queued"
    assert main(["experiment", "list", "--json"]) == 0
    listed = {e["id"]: e["state"] for e in json.loads(capsys.readouterr().out)}
    assert listed == {first.id: "running", second.id: "queued"}
    assert main(["experiment", "describe", second.id]) == 0
    described = capsys.readouterr().out
    assert "state: queued\n" in described and (
        "Queued: at most 1 local experiment train at once (max_concurrent_experiments, DLPTUI_MAX_CONCURRENT_EXPERIMENTS); "
        "it starts when one ends, and can be killed or paused meanwhile.") in described

    gate.open()
    done_first = wait_for(training, first.id)
    done_second = wait_for(training, second.id)
    assert (done_first.state, done_second.state) == (ExperimentState.COMPLETED, ExperimentState.COMPLETED)
    [trial] = training.db.trial_rows(int(second.id))
    assert trial.created >= done_first.ended, "the second started training only once the first had ended"
    assert done_second.detail is None and training.health().detail == "0 running"


@pytest.mark.slow
def test_a_queued_experiment_can_be_killed_paused_and_resumed_while_it_waits(capped, gate):
    training = capped.training
    tiny = write_config(gate.folder, "tiny.yaml")
    gate.close(at=3)
    first = training.create_experiment(tiny)
    gate.wait_held(1, training, first.id)

    doomed = training.create_experiment(tiny, name="doomed")
    waiting_for_a_slot(training, doomed.id)
    runner = psutil.Process(training.db.row(doomed.id).pid)
    killed = training.kill(doomed.id)
    assert killed.state is ExperimentState.KILLED and killed.detail is None
    runner.wait(timeout=GUARD_S)  # its waiting runner is gone, and it never trained
    assert training.list_trials(doomed.id) == []

    later = training.create_experiment(tiny, name="later")
    waiting_for_a_slot(training, later.id)
    paused = training.pause(later.id)
    assert paused.state is ExperimentState.PAUSED and training.list_trials(later.id) == []
    assert training.get_experiment(first.id).state is RUNNING  # the one training is not touched
    _, cursor = training.logs(later.id)
    resumed = training.resume(later.id)
    assert resumed.state is QUEUED  # queued again behind the one that trains
    waiting_for_a_slot(training, later.id, cursor)

    gate.open()
    assert wait_for(training, first.id).state is ExperimentState.COMPLETED
    assert wait_for(training, later.id).state is ExperimentState.COMPLETED
    assert training.get_experiment(doomed.id).state is ExperimentState.KILLED


async def test_the_experiments_screen_shows_a_queued_experiment_and_why(config, platform, tmp_path):
    """A queued experiment whose runner waits (recorded as a waiting runner would be: queued, with its live pid):
    its row says queued, the state line counts it with the cap, and its live view says what it waits for."""
    import subprocess
    import sys
    from dataclasses import replace

    from dlptui.platform import Platform
    from dlptui.tui.screens.experiment import ExperimentScreen
    from dlptui.tui.screens.experiments import ExperimentsScreen
    from dlptui.tui.widgets.resource_table import ResourceTable
    from tests.fixtures.training import TINY, TRIAL
    from tests.fixtures.tui import SIZE, make_app
    from tests.fixtures.tui import wait_for as shown

    one = replace(config, max_concurrent_experiments=1)
    capped_platform = Platform(one)
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        db = capped_platform.training.db
        experiment_id = db.insert(name="waiting", config_file=str(TINY), trial_dir=str(TRIAL),
                                  config={"searcher": {"name": "single"}}, data_repo=None, data_commit=None, max_batches=20)
        db.update(experiment_id, pid=runner.pid, pid_started=training_start.started(runner.pid))
        app = make_app(one, capped_platform, start="experiments")
        async with app.run_test(size=SIZE) as pilot:
            def row_shown() -> bool:
                if not isinstance(app.screen, ExperimentsScreen):
                    return False
                table = app.screen.query_one("#experiments", ResourceTable)
                return str(experiment_id) in table.all_keys
            await shown(pilot, row_shown, what="the queued experiment's row")
            table = app.screen.query_one("#experiments", ResourceTable)
            assert str(table.get_row(str(experiment_id))[2]) == "queued"
            state_line = str(app.screen.query_one("#state").render())
            assert "0 running, 1 queued (max_concurrent_experiments: 1 at once)" in state_line, state_line
            await pilot.press("enter")
            await shown(pilot, lambda: isinstance(app.screen, ExperimentScreen), what="the live view")
            summary = app.screen.query_one("#summary")
            await shown(pilot, lambda: "Queued: at most 1 local experiment train at once" in str(summary.render()),
                        what="the queued sentence in the summary")
    finally:
        runner.kill()
        runner.wait()
        capped_platform.close()


@pytest.mark.slow
def test_an_experiment_waiting_for_its_coalesce_turn_holds_no_slot_and_blocks_no_one(home, monkeypatch, sample_repo, gate):
    """Cap 2: A of key k trains (the turn and a slot), B of k waits for the turn, holding no slot and keeping no
    newer experiment waiting; C, of no key, takes the second slot at once."""
    from dlptui.actions import training as actions
    from dlptui.config import load_config
    from dlptui.platform import Platform

    monkeypatch.setenv("DLPTUI_MAX_CONCURRENT_EXPERIMENTS", "2")
    platform = Platform(load_config())
    try:
        training = platform.training
        tiny = write_config(gate.folder, "tiny.yaml")
        gate.close(at=1)
        a = actions.start(platform, tiny, coalesce="k")
        gate.wait_held(1, training, a.id)
        b = actions.start(platform, tiny, coalesce="k")
        deadline = time.monotonic() + GUARD_S
        while not any("Waiting for the turn of k" in line for line in training.logs(b.id)[0]):
            assert time.monotonic() < deadline and training.db.row(b.id).state is QUEUED
            time.sleep(0.1)
        c = training.create_experiment(tiny, name="plain")
        assert c.state is RUNNING, "the second slot was free: B waits for its key, not for a slot"
        assert training.get_experiment(b.id).state is QUEUED
        assert training.get_experiment(a.id).state is RUNNING
    finally:
        for experiment in platform.training.list_experiments():
            if not experiment.state.terminal:
                platform.training.kill(experiment.id)
        platform.close()
