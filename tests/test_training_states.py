"""The local Training part's state changes are compare-and-set: a kill stays a kill whatever the runner writes
after it, a runner records its own pid, and an experiment whose starter died can still be killed or resumed.

The interleavings are forced by calling the runners' own writes at the point of the race (no sleeps); the
tests with `repo` start real runners in a child process that dies on purpose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from dlptui.errors import Conflict
from dlptui.platform.local import search_runner, training_runner, training_start
from dlptui.platform.model import ExperimentState
from tests.fixtures.training import TINY, TRIAL, wait_for

GUARD_S = 120.0  # a safety net against a hung child, not a measure of speed


def queued(training, **fields) -> int:
    """An experiment as recorded, with no runner started."""
    experiment_id = training.db.insert(name="x", config_file=str(TINY), trial_dir=str(TRIAL),
                                       config={"searcher": {"name": "single"}}, data_repo=None, data_commit=None,
                                       max_batches=10)
    if fields:
        training.db.update(experiment_id, **fields)
    return experiment_id


@pytest.fixture
def stand_in():
    """A live process in its own session, standing in for an experiment's runner (a kill stops it)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    yield child
    child.kill()
    child.wait()


def running(training, process: subprocess.Popen) -> int:
    return queued(training, state=ExperimentState.RUNNING, pid=process.pid, pid_started=training_start.started(process.pid))


@pytest.fixture
def quiet_signals(monkeypatch):
    """A Runner made in the test process must not take over the test process's SIGTERM."""
    monkeypatch.setattr(search_runner.signal, "signal", lambda *args: None)


def test_only_pid_compares_the_recorded_process(platform):
    db = platform.training.db
    experiment_id = queued(platform.training)
    assert db.update(experiment_id, only_pid=None, pid=7)
    assert not db.update(experiment_id, only_pid=None, state=ExperimentState.ERROR)
    assert not db.update(experiment_id, only_pid=8, state=ExperimentState.ERROR)
    assert db.update(experiment_id, only_if=(ExperimentState.QUEUED,), only_pid=7, state=ExperimentState.RUNNING)
    assert db.row(experiment_id).state is ExperimentState.RUNNING


def test_a_kill_that_lands_just_before_the_runner_completes_stays_killed(platform, quiet_signals, stand_in):
    training = platform.training
    experiment_id = running(training, stand_in)
    trial_id = training.db.insert_trial(experiment_id, {}, 10)
    training.db.update_trial(trial_id, state=ExperimentState.COMPLETED)
    runner = search_runner.Runner(Path(platform.config.home), experiment_id)
    rows = runner.db.trial_rows(experiment_id)  # the runner has seen its last trial complete ...

    assert training.kill(str(experiment_id)).state is ExperimentState.KILLED  # ... the kill lands ...
    assert runner._finish(rows) == 0  # ... and then the runner writes its end
    assert training.get_experiment(str(experiment_id)).state is ExperimentState.KILLED


def test_the_runner_completes_an_experiment_that_is_still_its_own(platform, quiet_signals):
    training = platform.training
    experiment_id = queued(training, state=ExperimentState.RUNNING, pid=os.getpid())
    trial_id = training.db.insert_trial(experiment_id, {}, 10)
    training.db.update_trial(trial_id, state=ExperimentState.COMPLETED)
    runner = search_runner.Runner(Path(platform.config.home), experiment_id)
    assert runner._finish(runner.db.trial_rows(experiment_id)) == 0
    assert training.db.row(experiment_id).state is ExperimentState.COMPLETED


def test_a_trials_last_word_after_a_kill_leaves_it_killed(platform, stand_in):
    training = platform.training
    experiment_id = running(training, stand_in)
    killed, kept = training.db.insert_trial(experiment_id, {}, 10), training.db.insert_trial(experiment_id, {}, 10)
    for trial_id in (killed, kept):
        assert training_runner.claim(training.db, trial_id)  # (as the trial process does first: its pid is ours)
        assert training.db.trial_row(trial_id).pid == os.getpid()
    training.db.update_trial(kept, state=ExperimentState.COMPLETED)
    training.kill(str(experiment_id))

    assert not training_runner.last_word(training.db, killed, ExperimentState.COMPLETED, ended=time.time())
    assert training.db.trial_row(killed).state is ExperimentState.KILLED
    assert training.db.trial_row(kept).state is ExperimentState.COMPLETED  # an end that came first stays


def test_a_kill_stops_a_runner_that_recorded_itself_while_the_kill_was_under_way(platform, monkeypatch, stand_in):
    training = platform.training
    experiment_id = queued(training)  # being started: no pid yet
    lock = training_start.take(training.root, experiment_id)
    runner = stand_in
    wait = type(training)._wait
    landed = []

    def claim_then_wait(self, row, timeout):
        if not landed:  # the runner's own record lands after the kill read the row
            landed.append(self.db.update(experiment_id, state=ExperimentState.RUNNING, pid=runner.pid,
                                         pid_started=training_start.started(runner.pid)))
        return wait(self, row, timeout)

    monkeypatch.setattr(type(training), "_wait", claim_then_wait)
    try:
        assert training.kill(str(experiment_id)).state is ExperimentState.KILLED
        assert landed == [True]
        assert runner.wait(timeout=GUARD_S) < 0, "the runner that recorded itself was stopped"
    finally:
        training_start.release(lock)


def test_a_pause_leaves_alone_a_runner_that_a_resume_started_after_a_look_settled_the_pause(platform, monkeypatch):
    """The console's poll finds the paused runner gone and writes paused; the user resumes at once; the pause
    call, still finishing, must not stop the new runner (it did: the resumed experiment died at its start)."""
    training = platform.training
    old = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    new = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        experiment_id = running(training, old)
        wait = type(training)._wait
        interleaved = []

        def look_and_resume_then_wait(self, row, timeout):
            gone = wait(self, row, timeout)  # the old runner took the SIGTERM and left
            if not interleaved:
                settled = self._settle(self.db.row(experiment_id), False)  # a poll: its runner is gone, a pause was asked
                interleaved.append(settled.state)
                self.db.update(experiment_id, only_if=(ExperimentState.PAUSED,), state=ExperimentState.QUEUED, pid=None)
                self.db.update(experiment_id, only_if=(ExperimentState.QUEUED,), request=None)  # resume's _start
                self.db.update(experiment_id, state=ExperimentState.RUNNING, pid=new.pid,
                               pid_started=training_start.started(new.pid))  # its runner records itself
            return gone

        monkeypatch.setattr(type(training), "_wait", look_and_resume_then_wait)
        training.pause(str(experiment_id))
        assert interleaved == [ExperimentState.PAUSED]
        assert old.wait(timeout=GUARD_S) != 0  # the paused runner was stopped
        assert new.poll() is None, "the runner the resume started was stopped by the pause that came before it"
        row = training.db.row(experiment_id)
        assert row.state is ExperimentState.RUNNING and row.pid == new.pid
    finally:
        for child in (old, new):
            child.kill()
            child.wait()


def test_a_queued_experiment_is_an_error_once_nobody_is_starting_it(platform):
    training = platform.training
    experiment_id = queued(training)
    lock = training_start.take(training.root, experiment_id)  # its starter, alive
    assert training.get_experiment(str(experiment_id)).state is ExperimentState.QUEUED
    with pytest.raises(Conflict):
        training.resume(str(experiment_id))
    training_start.release(lock)  # its starter died, and no runner recorded itself
    stale = training.get_experiment(str(experiment_id))
    assert stale.state is ExperimentState.ERROR and "never started" in stale.error and "resume" in stale.error


def test_a_resume_while_another_holds_the_start_is_refused(platform):
    training = platform.training
    experiment_id = queued(training, state=ExperimentState.PAUSED)
    lock = training_start.take(training.root, experiment_id)  # another resume, under way
    try:
        with pytest.raises(Conflict, match="being resumed already"):
            training.resume(str(experiment_id))
        assert training.db.row(experiment_id).state is ExperimentState.PAUSED
    finally:
        training_start.release(lock)


# --- real runners, started by a process that dies on purpose --------------------------------------

STARTER = textwrap.dedent(
    """
    import os, sys
    from dlptui.config import load_config
    from dlptui.platform import Platform
    from dlptui.platform.local.training import LocalTraining

    spawn, when = LocalTraining._spawn, sys.argv[2]

    def spawn_and_die(self, row, env, log):
        child = spawn(self, row, env, log) if when == "after" else None
        print(row.id, child.pid if child else 0, flush=True)
        os._exit(0)  # dies between spawning its runner and recording the runner's pid

    LocalTraining._spawn = spawn_and_die
    Platform(load_config()).training.create_experiment(sys.argv[1])
    """
)


def start_and_die(config: Path, when: str) -> tuple[str, int]:
    starter = subprocess.run([sys.executable, "-c", STARTER, str(config), when], capture_output=True, text=True,
                             timeout=GUARD_S)
    assert starter.returncode == 0, starter.stderr
    experiment_id, pid = starter.stdout.split()
    return experiment_id, int(pid)


@pytest.fixture
def repo(platform, sample_repo):
    return sample_repo


@pytest.mark.slow
def test_a_runner_whose_starter_died_records_itself_and_can_be_killed(platform, repo, tmp_path):
    from tests.test_training import longer

    training = platform.training
    experiment_id, pid = start_and_die(longer(tmp_path, batches=100000), "after")
    process = psutil.Process(pid)
    try:
        deadline = time.monotonic() + GUARD_S
        while (row := training.db.row(experiment_id)).pid != pid or row.state is not ExperimentState.RUNNING:
            assert time.monotonic() < deadline, "the runner never recorded its own pid (and took a free slot)"
            time.sleep(0.05)
        assert abs(row.pid_started - process.create_time()) < 0.01
        assert training.kill(experiment_id).state is ExperimentState.KILLED
        process.wait(timeout=GUARD_S)
        assert not process.is_running()
    finally:
        if process.is_running():  # (the same process still: is_running compares its start time)
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow
def test_an_experiment_whose_starter_died_before_its_runner_ran_can_be_resumed(platform, repo):
    training = platform.training
    experiment_id, _ = start_and_die(TINY, "before")
    stopped = training.get_experiment(experiment_id)
    assert stopped.state is ExperimentState.ERROR and "never started" in stopped.error
    training.resume(experiment_id)
    done = wait_for(training, experiment_id)
    assert done.state is ExperimentState.COMPLETED, done.error
