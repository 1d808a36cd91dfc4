"""PachydermPipelines and PachydermDataStore against the pachd stand-in, for what only a pachd shows: open and
errored output commits, crashing and failed pipelines, logs once the workers are gone, the limits of a restart,
CreatePipeline's own refusals, output branches and auth. What both profiles promise is in tests/contract/."""

from __future__ import annotations

import time
import uuid

import pytest
import python_pachyderm

from dlptui.config import load_config
from dlptui.errors import Conflict, InvalidInput, NotAvailable, PlatformError
from dlptui.platform import Platform
from dlptui.platform.model import JobState
from tests.contract.checks import one_sentence

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def platform(home, monkeypatch, pachd_standin_server):
    monkeypatch.setenv("PACHD_ADDRESS", pachd_standin_server.address)
    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    p = Platform(load_config(profile="cluster"))
    yield p
    for pipeline in p.pipelines.list_pipelines():
        p.pipelines.stop_pipeline(pipeline.name)
    p.close()


@pytest.fixture
def client(pachd_standin_server):
    return python_pachyderm.Client.new_from_pachd_address(pachd_standin_server.address)


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def spec(name: str, repo: str, cmd=None, image="ubuntu:22.04") -> dict:
    return {"pipeline": {"name": name}, "input": {"pfs": {"repo": repo, "glob": "/*", "name": "raw"}},
            "transform": {"cmd": cmd or ["sh", "-c", "cp -r /pfs/raw/* /pfs/out/"], "image": image}}


def until(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition did not hold in time")


def ended(pipelines, name, count=1):
    return until(lambda: (jobs := pipelines.list_jobs(name)) and len(jobs) >= count and all(j.state.terminal for j in jobs) and jobs)


@pytest.fixture
def raw(platform):
    repo = fresh("raw")
    platform.data.create_repo(repo)
    first = platform.data.put_files(repo, "master", {"/a.txt": b"alpha", "/b.txt": b"beta"})
    return repo, first


def test_a_running_jobs_open_output_commit_is_not_the_data_head(platform, raw, tmp_path):
    repo, _ = raw
    name = fresh("p")
    held, gate = tmp_path / "held", tmp_path / "gate"  # once `held` exists, a datum waits for `gate`
    # every_job: the next job's datums run (not skipped as the same datums of the last good job), and wait
    body = spec(name, repo, cmd=["sh", "-c", f"if test -e {held}; then while ! test -e {gate}; do sleep 0.05; done; fi; "
                                             "cp -r /pfs/raw/* /pfs/out/"])
    platform.pipelines.create_pipeline({**body, "reprocess_spec": "every_job"})
    [done] = ended(platform.pipelines, name)
    head = platform.data.inspect_commit(name, "master")
    held.touch()
    platform.pipelines.stop_pipeline(name)
    platform.pipelines.start_pipeline(name)  # a new job: pachd opens its output commit as the branch's head
    running = until(lambda: next((j for j in platform.pipelines.list_jobs(name)
                                  if j.id != done.id and j.state is JobState.RUNNING), None))
    assert platform.data.inspect_commit(name, "master") == head
    assert platform.data.resolve(name, "master").commit == head.id
    assert [c.id for c in platform.data.list_commits(name)] == [head.id]
    with pytest.raises(Conflict) as e:
        platform.data.inspect_commit(name, running.id.split("@")[1])
    assert "is still being written" in one_sentence(e.value)
    gate.touch()
    newest, _ = ended(platform.pipelines, name, 2)
    assert newest.id == running.id and newest.state is JobState.SUCCESS
    assert platform.data.inspect_commit(name, "master").id == running.id.split("@")[1]
    assert platform.data.inspect_commit(name, "master").parent == head.id


def test_an_open_user_commit_is_not_the_data_head(platform, raw, client):
    repo, first = raw
    open_commit = client.start_commit(repo, "master")
    client.put_file_bytes(open_commit, "/c.txt", b"half")
    try:
        assert platform.data.inspect_commit(repo, "master") == first
        assert [c.id for c in platform.data.list_commits(repo)] == [first.id]
        with pytest.raises(Conflict) as e:
            platform.data.inspect_commit(repo, open_commit.id)
        assert "is still being written" in one_sentence(e.value, open_commit.id)
    finally:
        client.finish_commit(open_commit)


def test_a_failed_jobs_errored_output_commit_is_refused_by_id(platform, raw):
    repo, _ = raw
    name = fresh("p")
    platform.pipelines.create_pipeline(spec(name, repo, cmd=["false"]))
    [job] = ended(platform.pipelines, name)
    output = job.id.split("@")[1]  # on pachd the output commit has the job's id
    with pytest.raises(Conflict) as e:
        platform.data.inspect_commit(name, output)
    assert job.reason in one_sentence(e.value, output, repr(name))
    assert platform.data.list_commits(name) == [] and platform.data.inspect_repo(name).commits == 0


def test_a_pipeline_whose_image_cannot_be_pulled_is_crashing_with_the_reason(platform, raw, pachd_standin_server):
    repo, _ = raw
    name = fresh("p")
    pachd_standin_server.pps.missing_images.add("ubuntu:22.4")
    try:
        platform.pipelines.create_pipeline(spec(name, repo, image="ubuntu:22.4"))
        crashing = until(lambda: (p := platform.pipelines.inspect_pipeline(name)).state == "crashing" and p)
        assert 'Back-off pulling image "ubuntu:22.4"' in one_sentence(PlatformError(crashing.detail), name)
        assert [p.state for p in platform.pipelines.list_pipelines() if p.name == name] == ["crashing"]
        assert [j.state for j in platform.pipelines.list_jobs(name)] == [JobState.CREATED]
    finally:
        pachd_standin_server.pps.missing_images.discard("ubuntu:22.4")


def test_a_pipeline_pachd_failed_shows_failed_with_the_reason(platform, raw, client):
    repo, _ = raw
    name = fresh("p")  # made by another client: dlptui's own check refuses a spec without a command
    client.create_pipeline_from_request(python_pachyderm.parse_dict_pipeline_spec(
        {"pipeline": {"name": name}, "input": {"pfs": {"repo": repo, "glob": "/*"}}, "transform": {"image": "python:3.11-slim"}}))
    failed = until(lambda: (p := platform.pipelines.inspect_pipeline(name)).state == "failed" and p)
    assert "nothing to run: no transform.cmd" in failed.detail


def test_job_logs_once_the_workers_are_gone_without_loki_are_one_sentence(platform, raw, pachd_standin_server):
    repo, _ = raw
    name = fresh("p")
    platform.pipelines.create_pipeline(spec(name, repo, cmd=["sh", "-c", "echo copied; cp -r /pfs/raw/* /pfs/out/"]))
    [job] = ended(platform.pipelines, name)
    assert [line.split(" ", 1)[1] for line in platform.pipelines.job_logs(job.id)] == ["copied", "copied"]
    platform.pipelines.stop_pipeline(name)
    until(lambda: next(iter(python_pachyderm.Client.new_from_pachd_address(pachd_standin_server.address)
                            .inspect_pipeline(name))).state == 5)  # PIPELINE_PAUSED: the workers are gone
    assert len(platform.pipelines.job_logs(job.id)) == 2  # Loki (the chart's default) keeps them
    pachd_standin_server.pps.loki = False
    try:
        with pytest.raises(NotAvailable) as e:
            platform.pipelines.job_logs(job.id)
    finally:
        pachd_standin_server.pps.loki = True
    assert "pachd.lokiLogging" in one_sentence(e.value, job.id)


def test_restart_is_refused_for_an_older_job_and_on_a_stopped_pipeline(platform, raw):
    repo, _ = raw
    name = fresh("p")
    platform.pipelines.create_pipeline(spec(name, repo, cmd=["false"]))
    [older] = ended(platform.pipelines, name)
    platform.data.put_files(repo, "master", {"/c.txt": b"gamma"})
    newest, _ = ended(platform.pipelines, name, 2)
    with pytest.raises(Conflict) as e:
        platform.pipelines.restart_job(older.id)
    one_sentence(e.value, older.id, newest.id)
    platform.pipelines.stop_pipeline(name)
    with pytest.raises(Conflict) as e:
        platform.pipelines.restart_job(newest.id)
    one_sentence(e.value, repr(name), "pipeline start")
    assert len(platform.pipelines.list_jobs(name)) == 2  # nothing was started


def test_what_pachds_create_pipeline_refuses_is_invalid_input_in_its_words(platform, raw):
    repo, _ = raw
    name = fresh("p")
    bad = spec(name, repo)
    bad["transform"]["secrets"] = [{"name": "s3-keys", "mount_path": "/keys"}]
    with pytest.raises(InvalidInput) as e:
        platform.pipelines.create_pipeline(bad)
    assert "missing Kubernetes secret s3-keys" in one_sentence(e.value, repr(name))
    assert name not in [p.name for p in platform.pipelines.list_pipelines()]


def test_files_cannot_be_put_on_a_pipelines_output_branch(platform, raw):
    repo, _ = raw
    name = fresh("p")
    platform.pipelines.create_pipeline(spec(name, repo))
    ended(platform.pipelines, name)
    before = platform.data.list_commits(name)
    with pytest.raises(Conflict) as e:
        platform.data.put_files(name, "master", {"/x": b"1"})
    assert "output" in one_sentence(e.value, repr(name))
    assert platform.data.list_commits(name) == before


def test_pipelines_under_auth_need_pachd_token(home, monkeypatch, pachd_standin_server):
    pachd_standin_server.pfs.required_token = "pps-secret-token"
    try:
        monkeypatch.setenv("PACHD_ADDRESS", pachd_standin_server.address)
        monkeypatch.delenv("PACHD_TOKEN", raising=False)
        p = Platform(load_config(profile="cluster"))
        try:
            with pytest.raises(PlatformError) as e:
                p.pipelines.list_pipelines()
        finally:
            p.close()
        assert "set PACHD_TOKEN" in one_sentence(e.value) and "pps-secret-token" not in str(e.value)
        monkeypatch.setenv("PACHD_TOKEN", "pps-secret-token")
        p = Platform(load_config(profile="cluster"))
        try:
            assert "dogs-and-cats" in [r.name for r in p.data.list_repos()]
            assert isinstance(p.pipelines.list_pipelines(), list)
        finally:
            p.close()
    finally:
        pachd_standin_server.pfs.required_token = None
