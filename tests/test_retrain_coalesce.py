"""Retrain on commit coalesces: ten commits of the split while a training runs give that one training plus one
queued (the newest commit's), not ten; each experiment a newer commit superseded ended killed with a sentence,
and the pipeline job of its commit says which commit it skipped and why. The shipped spec, the real runner,
real `dlptui train` in its datums and a real (gated) training."""

from __future__ import annotations

import json

import pytest

from dlptui.actions import pipelines as actions
from dlptui.actions.datasets import import_sample
from dlptui.platform.model import ExperimentState, JobState
from dlptui.text import commit_id
from tests.fixtures.training import TINY, wait_for

RETRAIN = "dogs-and-cats-retrain"


@pytest.fixture
def pp(platform):
    yield platform
    for pipeline in platform.pipelines.list_pipelines():
        platform.pipelines.stop_pipeline(pipeline.name)
    for experiment in platform.training.list_experiments():
        if not experiment.state.terminal:
            platform.training.kill(experiment.id)


@pytest.mark.slow
def test_ten_commits_of_the_split_give_one_training_and_the_newest_queued_not_ten(pp, gate):
    first = import_sample(pp.data, repo="dogs-and-cats", count=20, size=16)
    config = gate.folder / "tiny.yaml"
    config.write_text(TINY.read_text())
    gate.close(at=1)  # the first training holds before its first batch: it trains all along the ten commits
    shipped = actions.load_spec(RETRAIN)
    shipped["transform"]["env"] = {"TRAIN_CONFIG": str(config)}
    pp.pipelines.create_pipeline(shipped)
    job = actions.wait_for_input(pp.pipelines, RETRAIN, f"dogs-and-cats@{first.ref.commit}", timeout_s=300)
    assert job.state is JobState.SUCCESS, job.reason
    [training] = pp.training.list_experiments()
    gate.wait_held(1, pp.training, training.id)
    assert pp.training.get_experiment(training.id).state is ExperimentState.RUNNING

    commits = []
    for i in range(10):
        commit = pp.data.put_files("dogs-and-cats", "master", {f"/notes/{i}.txt": f"commit {i}".encode()})
        commits.append(commit.id)
        job = actions.wait_for_input(pp.pipelines, RETRAIN, f"dogs-and-cats@{commit.id}", timeout_s=300)
        assert job.state is JobState.SUCCESS, job.reason
        experiments = pp.training.list_experiments()
        running = [e for e in experiments if e.state is ExperimentState.RUNNING]
        queued = [e for e in experiments if e.state is ExperimentState.QUEUED]
        assert [e.id for e in running] == [training.id], experiments  # one training at a time, all along
        assert [e.data_commit for e in queued] == [commit.id], experiments  # at most one queued: the newest commit's

    experiments = {e.id: e for e in pp.training.list_experiments()}
    superseded = [e for e in experiments.values() if e.state is ExperimentState.KILLED]
    assert len(experiments) == 11 and len(superseded) == 9  # the training, nine superseded, the newest queued
    jobs = {j.input_commits[0].partition("@")[2]: j for j in pp.pipelines.list_jobs(RETRAIN)}
    for e in superseded:
        assert e.error.startswith("Superseded by experiment ") and "before it started" in e.error, e.error
        assert e.data_commit in commits[:-1]
        job = jobs[e.data_commit]
        assert e.data_job == job.id
        assert job.reason.startswith(f"Skipped dogs-and-cats@{commit_id(e.data_commit)}: "), job.reason
        assert f"experiment {e.id} was superseded" in job.reason
    [newest] = [e for e in experiments.values() if e.state is ExperimentState.QUEUED]
    out = json.loads(pp.data.get_file(RETRAIN, "master", "/experiment.json"))
    assert out["id"] == newest.id and newest.data_commit == commits[-1] and jobs[commits[-1]].reason == ""

    gate.open()  # the training ends; the queued one gets its turn and trains
    assert wait_for(pp.training, training.id).state is ExperimentState.COMPLETED
    wait_for(pp.training, newest.id, states=(ExperimentState.RUNNING, ExperimentState.COMPLETED))
    pp.pipelines.stop_pipeline(RETRAIN)


@pytest.mark.slow
def test_an_experiment_waiting_for_its_turn_pauses_resumes_and_is_killed_at_once(pp, gate):
    import time

    from dlptui.actions import training
    from dlptui.errors import InvalidInput

    import_sample(pp.data, repo="dogs-and-cats", count=20, size=16)
    config = gate.folder / "tiny.yaml"
    config.write_text(TINY.read_text())
    gate.close(at=1)
    with pytest.raises(InvalidInput, match="not a valid name"):
        training.start(pp, config, coalesce="../k")
    first = training.start(pp, config, coalesce="k")
    gate.wait_held(1, pp.training, first.id)
    waiting = training.start(pp, config, coalesce="k")
    lines = lambda: "\n".join(pp.training.logs(waiting.id)[0])
    deadline = time.monotonic() + 120
    while "Waiting for the turn of k" not in lines():
        assert time.monotonic() < deadline, lines()
        time.sleep(0.1)
    assert pp.training.get_experiment(waiting.id).state is ExperimentState.QUEUED
    began = time.monotonic()
    assert pp.training.pause(waiting.id).state is ExperimentState.PAUSED
    assert time.monotonic() - began < 30  # its runner left the wait at once; no checkpoint to wait for
    assert pp.training.resume(waiting.id).state is ExperimentState.QUEUED  # it waits for the turn again
    assert pp.training.kill(waiting.id).state is ExperimentState.KILLED
    assert pp.training.get_experiment(first.id).state is ExperimentState.RUNNING
