"""The local search: Determined's searchers run by dlptui (search.py decides, search_runner.py runs).

The rung decisions are checked against Determined's documented ASHA on scripted results first
(no process), then a real search of the tiny backbone shows trials stopped and promoted, a
promotion resuming from its checkpoint, and pause / resume / kill acting on every trial.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import pytest
import yaml

from dlptui.errors import Conflict
from dlptui.platform.local import search
from dlptui.platform.local.search import TrialView, plan
from dlptui.platform.model import ExperimentState
from tests.fixtures.training import TINY, wait_for
from tests.helpers import run

ASHA = {"name": "adaptive_asha", "metric": "accuracy", "smaller_is_better": False, "max_trials": 8,
        "time_metric": "batches", "max_time": 40, "divisor": 2, "max_rungs": 3, "mode": "aggressive"}


# --- the rule, on scripted results ------------------------------------------------------


def test_rungs_are_max_time_over_powers_of_the_divisor():
    assert search.rungs(ASHA, 0) == [10, 20, 40]
    assert search.rungs({**ASHA, "divisor": 4, "max_time": 160}, 0) == [10, 40, 160]
    assert search.brackets({**ASHA, "mode": "conservative"}) == [3, 2, 1]
    assert search.brackets({**ASHA, "mode": "standard", "max_rungs": 5}) == [5, 4, 3]
    assert search.rungs({**ASHA, "mode": "conservative"}, 2) == [40]
    halving = {"name": "async_halving", "num_rungs": 4, "max_time": 80, "divisor": 2, "max_trials": 4}
    assert search.brackets(halving) == [4] and search.rungs(halving, 0) == [10, 20, 40, 80]


class Script:
    """Trials arriving one by one at the rungs, with the decisions applied as the runner applies them."""

    def __init__(self, searcher):
        self.searcher = searcher
        self.trials: dict[int, TrialView] = {}
        self.log: list[str] = []

    def arrive(self, trial_id: int, metric: float, can_create: bool = True, running=()):
        t = self.trials.setdefault(trial_id, TrialView(trial_id, 0, search.rungs(self.searcher, 0)[0], "running"))
        t.results[t.target] = metric
        t.state = "waiting"
        for other in running:
            self.trials.setdefault(other, TrialView(other, 0, search.rungs(self.searcher, 0)[0], "running"))
        return self.decide(can_create)

    def decide(self, can_create: bool):
        decided = plan(self.searcher, list(self.trials.values()), can_create, self.searcher["max_time"])
        for trial_id, target in decided.promote:
            self.trials[trial_id].target, self.trials[trial_id].state = target, "running"
            self.log.append(f"promote {trial_id} to {target}")
        for trial_id in decided.stop + decided.complete:
            self.trials[trial_id].state = "done"
            self.log.append(f"{'stop' if trial_id in decided.stop else 'complete'} {trial_id}")
        return decided


def test_asha_promotes_the_top_fraction_of_each_rung_as_results_come():
    s = Script(ASHA)
    assert s.arrive(1, 0.60).promote == []  # one result: floor(1/2) = 0 promoted, it waits
    assert s.arrive(2, 0.70).promote == [(2, 20)]  # two: the better one goes on, from its checkpoint
    assert s.arrive(3, 0.50).promote == []  # three: still one promoted (2, already)
    assert s.arrive(4, 0.65).promote == [(4, 20)]  # four: two, the next best waiting is 4 (0.65 > 0.60)
    # rung 20: 2 and 4 report; of two results one goes on to the top rung
    s.trials[2].results[20] = 0.80
    s.trials[2].state = "waiting"
    assert s.decide(True).promote == []  # alone at rung 20: it waits for company
    s.trials[4].results[20] = 0.75
    s.trials[4].state = "waiting"
    assert s.decide(True).promote == [(2, 40)]  # two results: the better one, 2, goes on; 4 waits
    # a later, better trial is promoted at once: of five results the top two are 5 and 2 (4 stays promoted)
    assert s.arrive(5, 0.90, running=(6,)).promote == [(5, 20)]
    assert s.arrive(6, 0.55).promote == []  # six: the top three are 5, 2, 4, all promoted already
    assert s.arrive(7, 0.62).promote == []  # seven: still three
    assert s.arrive(8, 0.99).promote == [(8, 20)]  # eight: four, and 8 ranks first
    assert s.log == ["promote 2 to 20", "promote 4 to 20", "promote 2 to 40", "promote 5 to 20", "promote 8 to 20"]


def test_the_top_rung_completes_and_the_rest_stop_early_at_the_end():
    s = Script({**ASHA, "max_trials": 2, "max_rungs": 2})  # rungs 20, 40
    s.arrive(1, 0.5, running=(2,))
    s.arrive(2, 0.6, can_create=False)  # promoted: 2 goes to 40
    assert s.trials[2].target == 40 and s.trials[1].state == "waiting"
    s.trials[2].results[40] = 0.7
    s.trials[2].state = "waiting"
    decided = s.decide(False)
    assert decided.complete == [2] and decided.stop == [1]  # nothing runs, nothing to create: 1 stops where it is


def test_smaller_is_better_and_a_missing_metric_ranks_last():
    s = Script({**ASHA, "smaller_is_better": True, "metric": "validation_loss"})
    s.arrive(1, None)
    assert s.arrive(2, 0.9).promote == [(2, 20)]  # a trial that reported no metric never beats one that did
    s2 = Script({**ASHA, "smaller_is_better": True})
    s2.arrive(1, 0.2)
    assert s2.arrive(2, 0.3).promote == [(1, 20)]


def test_grid_points_follow_determineds_grid():
    space = {
        "lr": {"type": "log", "minval": -3, "maxval": -1, "base": 10, "count": 3},
        "layers": {"type": "int", "minval": 1, "maxval": 3, "count": 5},  # only 3 integers: never repeated
        "drop": {"type": "double", "minval": 0.0, "maxval": 0.5, "count": 2},
        "freeze": {"type": "categorical", "vals": [True, False]},
    }
    axes = search.grid_points(space)
    assert [round(v, 6) for v in axes["lr"]] == [0.001, 0.01, 0.1]
    assert axes["layers"] == [1, 2, 3] and axes["drop"] == [0.0, 0.5] and axes["freeze"] == [True, False]
    assert search.grid_size(space) == 3 * 3 * 2 * 2
    assert search.max_trials({"name": "grid"}, space) == 36


def test_the_optuna_sampler_keeps_its_study_in_a_shared_journal(tmp_path):
    space = {"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10}, "freeze": {"type": "categorical", "vals": [True, False]}}
    first = search.Sampler(tmp_path / "s.journal", "experiment-1", {"name": "random"}, space, seed=3)
    drawn = [first.ask() for _ in range(3)]
    assert [n for n, _ in drawn] == [0, 1, 2]
    assert all(1e-4 <= hp["lr"] <= 1e-1 and hp["freeze"] in (True, False) for _, hp in drawn)
    again = search.Sampler(tmp_path / "s.journal", "experiment-1", {"name": "random"}, space, seed=3)  # a restarted runner
    assert again.ask()[0] == 3  # the same study: the next trial, not the first one again
    grid = search.Sampler(tmp_path / "g.journal", "g", {"name": "grid"},
                          {"lr": {"type": "double", "minval": 0.1, "maxval": 0.3, "count": 3}}, seed=1)
    assert sorted(round(grid.ask()[1]["lr"], 6) for _ in range(3)) == [0.1, 0.2, 0.3]  # each point once


# --- a real search of the tiny backbone ----------------------------------------------------


def search_config(folder: Path, searcher: dict, name: str = "search.yaml", **hyperparameters) -> Path:
    conf = yaml.safe_load(TINY.read_text())
    conf["hyperparameters"].pop("max_batches")
    conf["hyperparameters"].update(hyperparameters)
    conf["searcher"] = {"metric": "accuracy", "smaller_is_better": False, **searcher}
    conf["min_validation_period"] = {"batches": 5}
    conf["min_checkpoint_period"] = {"batches": 5}
    path = folder / name
    path.write_text(yaml.safe_dump(conf))
    return path


@pytest.fixture
def repo(platform, sample_repo):
    return sample_repo


LR = {"type": "log", "minval": -3, "maxval": -1, "base": 10}


@pytest.mark.slow
def test_asha_stops_and_promotes_and_a_promotion_resumes_from_its_checkpoint(platform, repo, tmp_path, capsys):
    training = platform.training
    config = search_config(tmp_path, {"name": "adaptive_asha", "max_trials": 4, "max_concurrent_trials": 2,
                                      "time_metric": "batches", "max_time": 20, "divisor": 2, "max_rungs": 2,
                                      "mode": "aggressive"}, learning_rate=LR)
    experiment = wait_for(training, training.create_experiment(config).id)
    assert experiment.state is ExperimentState.COMPLETED, experiment.error
    trials = training.list_trials(experiment.id)
    assert len(trials) == 4 and len({t.hparams["learning_rate"] for t in trials}) == 4
    promoted = [t for t in trials if t.batches_done == 20]
    stopped = [t for t in trials if t.stopped_early]
    assert 1 <= len(promoted) <= 2 and len(stopped) == 4 - len(promoted)  # floor(4 / 2) at most
    assert all(t.batches_done == 10 and t.state is ExperimentState.COMPLETED for t in stopped)
    # the best at rung 10 was promoted
    at_rung = {t.id: next(p.value for p in training.trial_metrics(t.id)[0] if p.group == "validation" and p.batch == 10
                          and p.name == "accuracy") for t in trials}
    assert max(at_rung, key=lambda k: (at_rung[k], -int(k))) in {t.id for t in promoted} or len(
        {round(v, 9) for v in at_rung.values()}) < 4
    for t in promoted:
        points, _ = training.trial_metrics(t.id)
        losses = sorted(p.batch for p in points if p.group == "training" and p.name == "loss")
        assert losses == list(range(1, 21))  # batches 1-10 once: resumed at 10, not retrained
        lines, _ = training.trial_logs(t.id)
        assert any("resuming from checkpoint" in line and "at batch 10" in line for line in lines)
        assert t.best_checkpoint in {c.uuid for c in training.checkpoints(experiment.id) if c.trial_id == t.id}
    total = sum(t.batches_done for t in trials)
    assert experiment.batches_done == total < 4 * 20  # fewer batches than training every trial to the end
    log = "\n".join(training.logs(experiment.id)[0])
    assert "stopped early" in log and "promoted to batch 20" in log

    # the CLI: `dlptui trials`, one trial's metrics, and register taking the best trial's best checkpoint
    code, out, _ = run(capsys, "trials", experiment.id, "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [t.id for t in trials]
    assert set(rows[0]) >= {"id", "state", "hparams", "batches", "best_metric", "best_checkpoint"}
    code, out, _ = run(capsys, "trials", experiment.id)
    assert code == 0 and "LEARNING_RATE" in out and "stopped early" in out
    best = max((t for t in trials if t.best_metric is not None), key=lambda t: t.best_metric)
    code, out, _ = run(capsys, "model", "register", "--experiment", experiment.id, "--model", "searched", "--json")
    assert code == 0 and json.loads(out)["checkpoint_uuid"] == best.best_checkpoint
    other = next(t for t in trials if t.id != best.id and t.best_checkpoint)
    code, out, _ = run(capsys, "model", "register", "--experiment", experiment.id, "--trial", other.id, "--model", "searched", "--json")
    assert code == 0 and json.loads(out)["checkpoint_uuid"] == other.best_checkpoint
    code, out, _ = run(capsys, "trial", "metrics", other.id, "--json")
    assert code == 0 and {p["trial_id"] for p in json.loads(out)} == {other.id}
    code, _, err = run(capsys, "trial", "logs", "999999")
    assert code == 3 and "There is no trial 999999" in err


@pytest.mark.slow
def test_random_search_pause_resume_and_one_resume_at_a_time(platform, repo, gate):
    training = platform.training
    config = search_config(gate.folder, {"name": "random", "max_trials": 2, "max_concurrent_trials": 2},
                           learning_rate=LR, max_batches=40)
    gate.close(at=7)  # each trial holds past its checkpoint at 5 until the pause comes: neither can end first
    experiment = training.create_experiment(config)
    gate.wait_held(2, training, experiment.id)  # both trials under way
    paused = training.pause(experiment.id)
    assert paused.state is ExperimentState.PAUSED
    trials = training.list_trials(experiment.id)
    assert len(trials) == 2 and all(t.state is ExperimentState.PAUSED for t in trials)
    assert all(5 < t.batches_done < 40 for t in trials)  # each stopped at its next boundary, with a checkpoint
    gate.open()
    results: list[object] = []

    def resume():
        try:
            results.append(training.resume(experiment.id).state)
        except Conflict as e:
            results.append(e)

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, Conflict) for r in results) == 1  # two resumes at once start one runner
    done = wait_for(training, experiment.id)
    assert done.state is ExperimentState.COMPLETED, done.error
    trials = training.list_trials(experiment.id)
    assert [t.batches_done for t in trials] == [40, 40] and all(t.state is ExperimentState.COMPLETED for t in trials)
    for t in trials:
        losses = sorted(p.batch for p in training.trial_metrics(t.id)[0] if p.group == "training" and p.name == "loss")
        assert losses == list(range(1, 41))
    assert done.batches_done == 80 and math.isclose(done.progress, 1.0)


@pytest.mark.slow
def test_kill_stops_every_trial(platform, repo, gate):
    from dlptui.platform.local.training_start import alive

    training = platform.training
    config = search_config(gate.folder, {"name": "grid", "max_concurrent_trials": 2},
                           learning_rate={"type": "double", "minval": 0.01, "maxval": 0.02, "count": 2}, max_batches=1000)
    gate.close(at=7)  # both trials hold past their checkpoint at 5: both are running when the kill comes
    experiment = training.create_experiment(config)
    held = gate.wait_held(2, training, experiment.id)
    rows = training.db.trial_rows(int(experiment.id))
    assert sorted(r.pid for r in rows) == held  # each trial's record names its running process
    killed = training.kill(experiment.id)
    assert killed.state is ExperimentState.KILLED
    assert all(t.state is ExperimentState.KILLED for t in training.list_trials(experiment.id))
    deadline = time.monotonic() + 60  # SIGKILLed with the runner's group; gone a moment later
    while left := [r.pid for r in rows if alive(r.pid, r.pid_started)]:
        assert time.monotonic() < deadline, f"the trial processes {left} still run 60 s after the experiment was killed"
        time.sleep(0.1)


@pytest.mark.slow
def test_kill_9_of_a_trial_resumes_it_from_its_last_checkpoint(platform, repo, gate):
    import os
    import signal

    from dlptui.platform.local.training_start import alive

    training = platform.training
    config = search_config(gate.folder, {"name": "random", "max_trials": 1}, learning_rate=LR, max_batches=30)
    gate.close(at=7)  # the trial holds before batch 7: its checkpoint at 5 recorded, batch 6 trained and not recorded
    experiment = training.create_experiment(config)
    [pid] = gate.wait_held(1, training, experiment.id)
    [row] = training.db.trial_rows(int(experiment.id))
    assert row.pid == pid
    kept = training.checkpoints(experiment.id)[-1].batch
    assert kept == 5
    os.kill(row.pid, signal.SIGKILL)  # the trial's process, not the runner
    deadline = time.monotonic() + 60
    while alive(row.pid, row.pid_started):  # dead before the gate opens: it trains nothing more
        assert time.monotonic() < deadline, f"the trial process {row.pid} still runs 60 s after its kill -9"
        time.sleep(0.05)
    gate.open()  # (a restart that reaches the gate first waits there until now)
    done = wait_for(training, experiment.id)
    assert done.state is ExperimentState.COMPLETED, done.error
    [trial] = training.list_trials(experiment.id)
    assert trial.batches_done == 30 and trial.state is ExperimentState.COMPLETED
    losses = sorted(p.batch for p in training.trial_metrics(trial.id)[0] if p.group == "training" and p.name == "loss")
    assert losses == list(range(1, 31))  # each batch once: what the killed process did after its checkpoint was redone
    log = "\n".join(training.logs(experiment.id)[0])
    assert "died (signal 9); starting it again from its latest checkpoint" in log
    assert any("resuming from checkpoint" in line and f"at batch {kept} " in line for line in log.splitlines())
    assert training.db.trial_rows(int(experiment.id))[0].restarts == 1
