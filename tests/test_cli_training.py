"""`dlptui train / experiments / experiment / metrics / logs`, over a trained local home."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dlptui.platform.model import ExperimentState
from tests.fixtures.training import TINY, wait_for
from tests.helpers import no_repr, run


def test_experiments_json_has_the_dataclass_fields(trained_platform, capsys):
    code, out, _ = run(capsys, "experiments", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row["id"] == "1" and row["state"] == "completed"
    assert row["data_repo"] == "dogs-and-cats" and len(row["data_commit"]) == 32
    assert row["batches_done"] == row["max_batches"] == 20


def test_experiment_shows_one_and_its_checkpoints(trained_platform, capsys):
    code, out, _ = run(capsys, "experiment", "1", "--json")
    assert code == 0 and json.loads(out)["state"] == "completed"
    code, out, _ = run(capsys, "experiment", "1")
    assert code == 0 and "experiment: 1" in no_repr(out) and "state: completed" in out and "batches: 20/20" in out
    experiment = trained_platform.training.get_experiment("1")
    assert f"best accuracy: {100 * experiment.best_accuracy:.1f}%" in out  # a share as a percent, as on every screen
    for checkpoint in trained_platform.training.checkpoints("1"):
        assert checkpoint.uuid in out


@pytest.mark.parametrize(
    "argv, code, sentence",
    [
        (("experiment", "kill", "1", "--yes"), 4, "Experiment 1 is completed already"),
        (("experiment", "pause", "1"), 4, "only a running experiment can be paused"),
        (("experiment", "pause"), 2, "The following arguments are required: ID"),
        (("experiment", "1", "2"), 2, "Unrecognized arguments: 2"),
        (("experiment", "42"), 3, "There is no experiment 42"),
        (("metrics", "nope"), 3, "There is no experiment 'nope'"),
        (("train", "--config", "/no/such.yaml"), 3, "The config file /no/such.yaml does not exist"),
        (("train", "--config", str(TINY), "--data", "dogs-and-cats"), 2, "is not REPO@BRANCH_OR_COMMIT"),
        (("train", "--config", str(TINY), "--data", "no-such-repo@master"), 3, "no-such-repo"),
        (("--read-only", "train"), 6, "read-only"),
    ],
)
def test_mistakes_are_one_line(trained_platform, capsys, argv, code, sentence):
    got, out, err = run(capsys, *argv)
    assert got == code
    assert err.count("\n") == 1 and err.startswith("dlptui: ") and sentence in err
    assert "Traceback" not in out + err


def test_metrics_and_logs(trained_platform, capsys):
    code, out, _ = run(capsys, "metrics", "1", "--json")
    points = json.loads(out)
    assert code == 0 and len(points) == 24
    assert {p["group"] for p in points} == {"training", "validation"}
    # following an experiment that has ended prints everything, then returns
    code, out, _ = run(capsys, "metrics", "1", "--follow", "--json")
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == points

    code, out, _ = run(capsys, "logs", "1")
    assert code == 0 and "Completed." in out
    code, out, _ = run(capsys, "logs", "1", "--json")
    assert code == 0 and json.loads(out)[-1].endswith("Completed.")


def test_train_wait_runs_to_completion(trained_platform, capsys):
    code, out, _ = run(capsys, "train", "--config", str(TINY), "--data", "dogs-and-cats@master", "--name", "again", "--wait", "--json")
    assert code == 0
    experiment = json.loads(out)
    assert experiment["state"] == "completed" and experiment["name"] == "again"
    assert experiment["data_commit"] == trained_platform.data.resolve("dogs-and-cats", "master").commit


def test_train_wait_exits_non_zero_on_error(trained_platform, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    config = tmp_path / "resnet.yaml"
    config.write_text(TINY.read_text().replace("backbone: tiny", "backbone: resnet50").replace("pretrained: false", "pretrained: true"))
    code, out, err = run(capsys, "train", "--config", str(config), "--wait")
    assert code == 1
    assert err.startswith("dlptui: experiment 2 ended error: The resnet50 ImageNet weights could not be downloaded")


def test_wait_draws_progress_and_metrics(trained_platform, capsys, monkeypatch):
    from dlptui.cli.experiment import _wait

    monkeypatch.setenv("COLUMNS", "160")
    experiment = trained_platform.training.get_experiment("1")
    final = _wait(trained_platform, experiment, live=True)
    out = capsys.readouterr().out
    assert final.state is ExperimentState.COMPLETED
    assert "20/20" in out and "accuracy" in out and "loss" in out


def test_train_returns_at_once_and_the_experiment_outlives_the_cli(trained_platform):
    env = {**os.environ, "DLPTUI_HOME": str(trained_platform.config.home)}
    done = subprocess.run(
        [sys.executable, "-m", "dlptui", "train", "--config", str(TINY), "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout)
    assert started["state"] == "running"
    assert wait_for(trained_platform.training, started["id"]).state is ExperimentState.COMPLETED


def test_follow_streams_a_running_experiment_to_its_end(trained_platform, capsys):
    started = trained_platform.training.create_experiment(TINY)
    code, out, _ = run(capsys, "metrics", started.id, "--follow", "--json")
    assert code == 0
    points = [json.loads(line) for line in out.splitlines()]
    assert sorted(p["batch"] for p in points if p["group"] == "training") == list(range(1, 21))
    assert sorted(p["batch"] for p in points if p["name"] == "accuracy") == [10, 20]
    assert trained_platform.training.get_experiment(started.id).state is ExperimentState.COMPLETED
    code, out, _ = run(capsys, "logs", started.id, "--follow")
    assert code == 0 and out.rstrip().endswith("Completed.")


def test_train_from_a_registered_version_starts_warm_and_records_it(trained_platform, capsys):
    training = trained_platform.training
    (first,) = training.list_experiments()
    code, out, err = run(capsys, "model", "register", "--experiment", first.id, "--model", "warm-model", "--json")
    assert code == 0, err
    version = json.loads(out)
    code, out, err = run(capsys, "train", "--config", str(TINY), "--from", "warm-model@1", "--json")
    assert code == 0, err
    started = json.loads(out)
    assert started["source_checkpoint"] == version["checkpoint_uuid"]
    done = wait_for(training, started["id"])
    assert done.state is ExperimentState.COMPLETED, done.error
    lines, _ = training.logs(done.id)
    assert any("Warm start from the weights of" in line and version["checkpoint_uuid"] in line for line in lines)
    assert training.checkpoints(done.id)[0].batch == 10  # the batches count from 0: a warm start, not a resume
    code, out, err = run(capsys, "model", "register", "--experiment", done.id, "--model", "warm-model", "--json")
    assert code == 0, err
    chain = json.loads(run(capsys, "lineage", "warm-model@2", "--json")[1])
    experiment_step = next(step for step in chain["steps"] if step["kind"] == "experiment")
    assert f"started warm from checkpoint {version['checkpoint_uuid']}" in experiment_step["detail"]
    code, _, err = run(capsys, "train", "--config", str(TINY), "--from", "no-such-checkpoint")
    assert code == 3 and "no-such-checkpoint" in err
    code, _, err = run(capsys, "train", "--config", str(TINY), "--from", "warm-model@7")
    assert code == 3
    assert len(training.list_experiments()) == 2  # nothing started by the mistakes
