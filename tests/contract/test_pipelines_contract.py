"""ports.Pipelines, once for both profiles: the local runner, and PachydermPipelines on the pachd stand-in.

Both run the spec's command on this machine (the stand-in as pachd's worker would, in place of its
container): the spec copies its input to its output (`cp`), so both make the same output commit;
`false` fails every datum on both."""

from __future__ import annotations

import time

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import Job, JobState, Pipeline
from tests.contract.checks import one_sentence

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def pipelines(contract_platform):
    part = contract_platform.pipelines
    yield part
    for p in part.list_pipelines():
        part.stop_pipeline(p.name)


@pytest.fixture
def raw(data_store, fresh_name):
    name = fresh_name("raw")
    data_store.create_repo(name)
    first = data_store.put_files(name, "master", {"/a.txt": b"alpha", "/b.txt": b"beta"})
    return name, first


def spec(name, repo, cmd=None, glob="/*"):
    return {"pipeline": {"name": name}, "input": {"pfs": {"repo": repo, "glob": glob, "name": "raw"}},
            "transform": {"cmd": cmd or ["sh", "-c", "cp -r /pfs/raw/* /pfs/out/"], "image": "ubuntu:22.04"},
            "datum_tries": 1}


def ended(pipelines, name, count, timeout=30.0) -> list[Job]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = pipelines.list_jobs(name)
        if len(jobs) >= count and all(j.state.terminal for j in jobs):
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"the jobs of {name} did not end: {pipelines.list_jobs(name)}")


def test_a_bad_spec_is_one_sentence_and_creates_nothing(pipelines, raw, fresh_name):
    name = fresh_name("p")
    bad = spec(name, raw[0])
    bad["parallelism"] = 2  # pachctl's field is parallelism_spec
    with pytest.raises(InvalidInput) as e:
        pipelines.create_pipeline(bad)
    one_sentence(e.value, "'parallelism'")
    with pytest.raises(NotFound) as e:
        pipelines.create_pipeline(spec(name, "no-such-repo"))
    one_sentence(e.value, "'no-such-repo'")
    assert name not in [p.name for p in pipelines.list_pipelines()]
    with pytest.raises(NotFound):
        pipelines.inspect_pipeline(name)


@pytest.mark.parametrize("input_name", ["../../../tmp/escape", "PATH", "LD_PRELOAD", "PYTHONPATH"])
def test_an_input_name_that_escapes_the_datum_folder_or_shadows_a_variable_is_refused(pipelines, raw, fresh_name, input_name, tmp_path):
    name = fresh_name("p")
    bad = spec(name, raw[0])
    bad["input"]["pfs"]["name"] = input_name
    with pytest.raises(InvalidInput) as e:
        pipelines.create_pipeline(bad)
    one_sentence(e.value, repr(input_name))
    assert name not in [p.name for p in pipelines.list_pipelines()]


def test_timeouts_in_pachyderms_duration_format_are_taken(pipelines, raw, fresh_name):
    name = fresh_name("p")
    created = pipelines.create_pipeline({**spec(name, raw[0]), "datum_timeout": "1m", "job_timeout": "1h5m"})
    assert created.name == name
    [job] = ended(pipelines, name, 1)
    assert job.state is JobState.SUCCESS


def test_resource_limits_go_to_pachd_and_are_refused_by_the_local_runner(pipelines, raw, fresh_name, profile):
    """pachd enforces resource_limits; the local runner cannot, so it refuses them in one sentence (the shared
    parse keeps them: the refusal is the local runner's)."""
    name = fresh_name("p")
    limited = {**spec(name, raw[0]), "resource_limits": {"memory": "1G", "cpu": 1}}
    if profile == "local":
        with pytest.raises(InvalidInput) as e:
            pipelines.create_pipeline(limited)
        one_sentence(e.value, "resource_limits")
        assert name not in [p.name for p in pipelines.list_pipelines()]
    else:
        assert pipelines.create_pipeline(limited).name == name


def test_each_input_commit_is_a_job_with_its_datums_and_an_output_commit_naming_it(pipelines, data_store, raw, fresh_name):
    repo, first = raw
    name = fresh_name("p")
    created = pipelines.create_pipeline(spec(name, repo))
    assert isinstance(created, Pipeline)
    assert (created.name, created.inputs, created.output, created.cmd[0], created.image) == (
        name, (f"{repo}@master",), f"{name}@master", "sh", "ubuntu:22.04")
    with pytest.raises(Conflict) as e:
        pipelines.create_pipeline(spec(name, repo))
    one_sentence(e.value, repr(name))
    [job] = ended(pipelines, name, 1)
    assert job.state is JobState.SUCCESS and job.pipeline == name
    assert job.input_commits == (f"{repo}@{first.id}",)
    assert (job.datums["total"], job.datums["failed"]) == (2, 0)
    out = data_store.inspect_commit(name, "master")
    assert job.output_commit == f"{name}@{out.id}" and out.provenance == (f"{repo}@{first.id}",)
    assert data_store.get_file(name, "master", "/a.txt") == b"alpha"
    assert sorted(d.files for d in pipelines.list_datums(job.id)) == [(f"{repo}:/a.txt",), (f"{repo}:/b.txt",)]
    assert pipelines.inspect_job(job.id) == job
    assert pipelines.inspect_pipeline(name).last_job == job.id

    second = data_store.put_files(repo, "master", {"/c.txt": b"gamma"})
    newest, older = ended(pipelines, name, 2)
    assert newest.input_commits == (f"{repo}@{second.id}",) and older.id == job.id  # newest first
    assert {e.path for e in data_store.list_files(name, "master", "/")} == {"/a.txt", "/b.txt", "/c.txt"}
    with pytest.raises(NotFound):
        pipelines.inspect_job("f" * 32)


def test_a_pipelines_output_is_written_by_its_jobs_only(pipelines, data_store, raw, fresh_name):
    """Pachyderm's rule on both profiles: a user's put or delete of files on a pipeline's output branch is one Conflict
    sentence and commits nothing, while the pipeline's own jobs go on writing there."""
    repo, _ = raw
    name = fresh_name("p")
    pipelines.create_pipeline(spec(name, repo))
    [job] = ended(pipelines, name, 1)
    before = data_store.list_commits(name)
    sentences = set()
    for change in (lambda: data_store.put_files(name, "master", {"/mine.txt": b"mine"}),
                   lambda: data_store.delete_files(name, "master", ["/a.txt"])):
        with pytest.raises(Conflict) as e:
            change()
        sentences.add(one_sentence(e.value, repr(name), "only its jobs write"))
    assert len(sentences) == 1  # the same sentence for a put and a delete, on either profile
    assert data_store.list_commits(name) == before
    assert {e.path for e in data_store.list_files(name, "master", "/")} == {"/a.txt", "/b.txt"}
    data_store.put_files(repo, "master", {"/c.txt": b"gamma"})  # the input takes puts; the job writes the output
    newest, _ = ended(pipelines, name, 2)
    assert newest.state is JobState.SUCCESS
    assert {e.path for e in data_store.list_files(name, "master", "/")} == {"/a.txt", "/b.txt", "/c.txt"}


def test_stop_start_and_delete(pipelines, data_store, raw, fresh_name):
    repo, _ = raw
    name = fresh_name("p")
    pipelines.create_pipeline(spec(name, repo))
    ended(pipelines, name, 1)
    assert pipelines.stop_pipeline(name).state == "paused"
    assert pipelines.stop_pipeline(name).state == "paused"  # stopping a stopped pipeline is no error
    data_store.put_files(repo, "master", {"/c.txt": b"gamma"})
    # no job: pachd makes a job with the input commit or not at all, and the local runner was stopped with it
    assert len(pipelines.list_jobs(name)) == 1
    assert pipelines.start_pipeline(name).state == "running"
    ended(pipelines, name, 2)
    pipelines.delete_pipeline(name)
    assert name not in [p.name for p in pipelines.list_pipelines()]
    assert name not in [r.name for r in data_store.list_repos()]  # the output repo goes with it
    with pytest.raises(NotFound):
        pipelines.delete_pipeline(name)


def test_a_failed_job_names_its_datums_and_a_restart_runs_them_again(pipelines, data_store, raw, fresh_name, tmp_path):
    """pachd restarts no finished job: the cluster's restart is a new job of the pipeline over the same input commits
    (locally the same job); either way the failed datums run again, and once they pass the output is there."""
    repo, first = raw
    name = fresh_name("p")
    fixed = tmp_path / "fixed"
    pipelines.create_pipeline(spec(name, repo, cmd=["sh", "-c", f"test -e {fixed} && cp -r /pfs/raw/* /pfs/out/"]))
    [job] = ended(pipelines, name, 1)
    assert job.state is JobState.FAILURE and job.datums["failed"] == 2 and job.output_commit is None
    assert job.reason
    assert {d.state for d in pipelines.list_datums(job.id)} == {"failed"}
    with pytest.raises(NotFound) as e:  # a failed job's output is no data: the branch has none to read
        data_store.inspect_commit(name, "master")
    one_sentence(e.value, name)
    fixed.touch()
    again = pipelines.restart_job(job.id)
    assert again.pipeline == name and not again.state.terminal
    done = wait_job(pipelines, again.id)
    assert done.state is JobState.SUCCESS and done.input_commits == job.input_commits == (f"{repo}@{first.id}",)
    assert done.datums["failed"] == 0 and done.datums["processed"] + done.datums["skipped"] == 2
    head = data_store.inspect_commit(name, "master")
    assert done.output_commit == f"{name}@{head.id}" and head.provenance == (f"{repo}@{first.id}",)
    assert data_store.get_file(name, "master", "/a.txt") == b"alpha"
    with pytest.raises(Conflict) as e:
        pipelines.restart_job(done.id)
    one_sentence(e.value, done.id)


def test_a_job_that_fails_every_datum_again_fails_again(pipelines, raw, fresh_name):
    repo, _ = raw
    name = fresh_name("p")
    pipelines.create_pipeline(spec(name, repo, cmd=["false"]))
    [job] = ended(pipelines, name, 1)
    again = wait_job(pipelines, pipelines.restart_job(job.id).id)
    assert again.state is JobState.FAILURE and again.datums["failed"] == 2  # `false` fails again
    ok = fresh_name("p")
    pipelines.create_pipeline(spec(ok, repo))
    [done] = ended(pipelines, ok, 1)
    with pytest.raises(Conflict) as e:
        pipelines.restart_job(done.id)
    one_sentence(e.value, done.id)


def wait_job(pipelines, job_id, timeout=30.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = pipelines.inspect_job(job_id)
        if job.state.terminal:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end: {pipelines.inspect_job(job_id)}")


@pytest.mark.parametrize("branch", ["v1.0", "a/b"])
def test_an_output_branch_outside_pachds_rule_is_refused_before_anything_is_made(pipelines, raw, fresh_name, branch):
    """The one branch rule (platform/rules.py) on both profiles: pachd would refuse `v1.0`, and the local store
    used to, after the pipeline was made."""
    name = fresh_name("pipe")
    bad = {**spec(name, raw[0]), "output_branch": branch}
    with pytest.raises(InvalidInput) as info:
        pipelines.create_pipeline(bad)
    one_sentence(info, branch)
    assert name not in [p.name for p in pipelines.list_pipelines()]
