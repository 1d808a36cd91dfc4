"""The pachd stand-in answers as pachd 2.12 does (tests/standins/pachd*.py), through python-pachyderm's own client.

Each test checks one behaviour written from pachd's source that the stand-in lacked before (it re-ran a finished
job's datums on RestartDatum, made no output commit for a failed job, accepted any pipeline spec, had no pipeline
state but RUNNING and PAUSED, no job state but CREATED/RUNNING/SUCCESS/FAILURE/KILLED, kept logs forever, deleted
any repo and served PPS without auth)."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import pytest
import python_pachyderm
from python_pachyderm.proto.v2.pps import pps_pb2

from tests.standins import pachd_pfs
from tests.standins.pachd import PachdStandin

pytestmark = pytest.mark.timeout(60)
J, P = pps_pb2.JobState, pps_pb2.PipelineState


@pytest.fixture(scope="module")
def server():
    s = PachdStandin().start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    return python_pachyderm.Client.new_from_pachd_address(server.address)


def name(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def raw_repo(client, files=None) -> tuple[str, str]:
    repo = name("raw")
    client.create_repo(repo)
    with client.commit(repo, "master") as c:
        for path, data in (files or {"/a.txt": b"alpha", "/b.txt": b"beta"}).items():
            client.put_file_bytes(c, path, data)
    return repo, c.id


def pipeline(client, pipe: str, repo: str, cmd=None, **more) -> None:
    spec = {"pipeline": {"name": pipe}, "input": {"pfs": {"repo": repo, "glob": "/*"}},
            "transform": {"cmd": cmd or ["sh", "-c", "cp -r /pfs/*/* /pfs/out/"]}, **more}
    client.create_pipeline_from_request(python_pachyderm.parse_dict_pipeline_spec(spec))


def until(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


def jobs(client, pipe):
    return list(client.list_job(pipe))


def ended(client, pipe, count=1):
    return until(lambda: (js := jobs(client, pipe)) and len(js) >= count
                 and all(j.state in (J.JOB_SUCCESS, J.JOB_FAILURE, J.JOB_KILLED, J.JOB_UNRUNNABLE) for j in js) and js)


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value


# --- jobs and their output commits --------------------------------------------------------------------


def test_a_failed_job_leaves_its_output_commit_as_the_head_finished_with_the_error(client):
    repo, first = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo, cmd=["sh", "-c", "echo no; exit 3"])
    [job] = ended(client, pipe)
    assert job.state == J.JOB_FAILURE and job.reason.startswith("datum ") and job.reason.endswith(" failed")
    head = next(iter(client.inspect_commit((pipe, "master"), pachd_pfs.pfs_pb2.CommitState.FINISHED)))
    assert head.commit.id == job.job.id == job.output_commit.id
    assert head.error == job.reason and head.finished.seconds
    assert head.origin.kind == pachd_pfs.pfs_pb2.OriginKind.AUTO
    provenance = {(c.repo.name, c.repo.type, c.id) for c in head.direct_provenance}
    spec = next(iter(client.inspect_pipeline(pipe))).spec_commit
    assert provenance == {(repo, "user", first), (pipe, "spec", spec.id)}
    assert list(client.list_commit(pipe)) == []  # python-pachyderm asks for USER commits unless told `all`
    assert [c.commit.id for c in client.list_commit(pipe, all=True)] == [job.job.id]


def test_job_states_follow_pachds_and_a_job_waits_for_its_open_input_commit(client, monkeypatch):
    monkeypatch.setattr(pachd_pfs, "FINISHING_S", 0.4)
    repo, _ = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo, cmd=["sh", "-c", "sleep 0.4; cp /pfs/*/* /pfs/out/"])
    ended(client, pipe)
    seen = []
    commit = client.start_commit(repo, "master")  # the commit set: the job exists while the input is open
    job = until(lambda: next((j for j in jobs(client, pipe) if j.job.id == commit.id), None))
    head = next(iter(client.inspect_commit((pipe, "master"))))
    assert head.commit.id == commit.id and not head.finished.seconds  # the open output commit is the head
    until(lambda: next(iter(client.inspect_job(commit.id, pipe))).state == J.JOB_STARTING)
    client.put_file_bytes(commit, "/c.txt", b"gamma")
    client.finish_commit(commit)

    def settled():
        state = next(iter(client.inspect_job(commit.id, pipe))).state
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == J.JOB_SUCCESS

    until(settled)
    assert job.state in (J.JOB_CREATED, J.JOB_STARTING)
    assert seen[-3:] == [J.JOB_RUNNING, J.JOB_FINISHING, J.JOB_SUCCESS]
    info = next(iter(client.inspect_job(commit.id, pipe)))
    assert (info.data_total, info.data_skipped, info.data_processed) == (3, 2, 1)  # a.txt and b.txt were done before


def test_an_input_commit_with_an_error_makes_the_job_unrunnable(client):
    repo, _ = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo)
    ended(client, pipe)
    commit = client.start_commit(repo, "master")
    client.finish_commit(commit, error="upload broke")
    job = until(lambda: (j := next(iter(client.inspect_job(commit.id, pipe)))).state == J.JOB_UNRUNNABLE and j)
    assert job.reason == f"unrunnable because the following upstream pipelines failed: {repo}"


def test_a_commit_set_holds_the_downstream_job_too_and_an_upstream_failure_makes_it_unrunnable(client):
    repo, first = raw_repo(client)
    up, down = name("up"), name("down")
    pipeline(client, up, repo, cmd=["sh", "-c", "grep -q bad /pfs/*/* && exit 1; cp /pfs/*/* /pfs/out/"])
    pipeline(client, down, up)
    ended(client, down)
    commit = client.start_commit(repo, "master")
    downstream = next(j for j in jobs(client, down) if j.job.id == commit.id)  # made with the input commit
    assert downstream.state in (J.JOB_CREATED, J.JOB_STARTING)
    client.put_file_bytes(commit, "/c.txt", b"bad")
    client.finish_commit(commit)
    job = until(lambda: (j := next(iter(client.inspect_job(commit.id, down)))).state == J.JOB_UNRUNNABLE and j)
    assert job.reason == f"unrunnable because the following upstream pipelines failed: {up}"
    assert next(iter(client.inspect_job(commit.id, up))).state == J.JOB_FAILURE


def test_stopping_kills_the_running_job_with_pachds_reason(client):
    repo, _ = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo, cmd=["sleep", "30"])
    until(lambda: jobs(client, pipe) and jobs(client, pipe)[0].state == J.JOB_RUNNING)
    client.stop_pipeline(pipe)
    [job] = ended(client, pipe)
    assert (job.state, job.reason) == (J.JOB_KILLED, "all jobs killed because pipeline was stopped")
    assert next(iter(client.inspect_commit((pipe, "master")))).error == job.reason


# --- RestartDatum -----------------------------------------------------------------------------------


def test_restart_datum_on_a_finished_job_is_refused_as_pachd_refuses_it(client):
    repo, _ = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo, cmd=["false"])
    [job] = ended(client, pipe)
    error = refused(lambda: client.restart_datum(pipe, job.job.id))
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert error.details() == f"datum matching filter [] could not be found for job ID {job.job.id}"
    assert next(iter(client.inspect_job(job.job.id, pipe))).state == J.JOB_FAILURE  # nothing ran again


def test_restart_datum_restarts_the_datum_a_running_job_runs(client, tmp_path):
    repo, _ = raw_repo(client, {"/a.txt": b"alpha"})
    pipe = name()
    tries = tmp_path / "tries"
    pipeline(client, pipe, repo, cmd=["sh", "-c", f"echo x >> {tries}; sleep 1; cp /pfs/*/* /pfs/out/"])
    job = until(lambda: (js := jobs(client, pipe)) and js[0].state == J.JOB_RUNNING and tries.exists() and js[0])
    client.restart_datum(pipe, job.job.id)
    [done] = ended(client, pipe)
    assert done.state == J.JOB_SUCCESS and tries.read_text().count("x") == 2


# --- CreatePipeline -------------------------------------------------------------------------------


@pytest.mark.parametrize("change, words", [
    ({"pipeline": {"name": "n" * 52}}, 'pipeline name "' + "n" * 52 + '" is 1 characters longer than the 51 max'),
    ({"pipeline": {"name": "bad.name"}}, "invalid pipeline name: name (bad.name) invalid"),
    ({"input": {"pfs": {"repo": "RAW", "glob": "/*", "name": "out"}}}, "input cannot be named out"),
    ({"input": {"pfs": {"repo": "RAW"}}}, "input must specify a glob"),
    ({"input": {"cross": [{"pfs": {"repo": "RAW", "glob": "/"}}, {"pfs": {"repo": "RAW", "glob": "/*"}}]}},
     'name "RAW" was used more than once'),
    ({"reprocess_spec": "sometimes"}, "ReprocessSpec must be one of 'until_success' or 'every_job'"),
    ({"pod_patch": "{not json"}, "malformed PodPatch"),
    ({"transform": {"cmd": ["true"], "secrets": [{"name": "s3-keys", "mount_path": "/keys"}]}}, "missing Kubernetes secret s3-keys"),
])
def test_create_pipeline_refuses_what_pachd_refuses(client, change, words):
    repo, _ = raw_repo(client)
    spec = {"pipeline": {"name": name()}, "input": {"pfs": {"repo": repo, "glob": "/*"}}, "transform": {"cmd": ["true"]}}
    spec.update(change)
    if "input" in change:
        spec["input"] = json.loads(json.dumps(change["input"]).replace('"RAW"', json.dumps(repo)))
    words = words.replace("RAW", repo)
    error = refused(lambda: client.create_pipeline_from_request(python_pachyderm.parse_dict_pipeline_spec(spec)))
    assert error.code() == grpc.StatusCode.UNKNOWN and words in error.details()
    assert spec["pipeline"]["name"] not in [p.pipeline.name for p in client.list_pipeline()]


def test_create_pipeline_fills_the_image_and_refuses_a_repos_name_and_a_missing_input(client):
    repo, _ = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo)  # no image: pachd gives it ubuntu:20.04 rather than refusing it
    info = next(iter(client.inspect_pipeline(pipe, details=True)))
    assert (info.details.transform.image, info.details.output_branch, info.details.datum_tries) == ("ubuntu:20.04", "master", 3)
    error = refused(lambda: pipeline(client, repo, repo))
    assert error.details() == f'pipeline "{repo}" cannot be created because a repo with the same name already exists'
    error = refused(lambda: pipeline(client, name(), "no-such-repo"))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "repo default/no-such-repo not found")
    error = refused(lambda: pipeline(client, pipe, repo))
    assert (error.code(), error.details()) == (grpc.StatusCode.ALREADY_EXISTS, f'pipeline "default/{pipe}" already exists')


def test_a_pipeline_over_a_repo_without_commits_gives_it_an_empty_commit_and_a_job(client):
    repo = name("empty")
    client.create_repo(repo)
    pipe = name()
    pipeline(client, pipe, repo)
    [job] = ended(client, pipe)
    assert job.state == J.JOB_SUCCESS and job.data_total == 0
    [branch] = client.list_branch(repo)
    assert branch.branch.name == "master"


# --- pipeline states ------------------------------------------------------------------------------


def state(client, pipe):
    info = next(iter(client.inspect_pipeline(pipe)))
    return info.state, info.reason


def test_pipeline_states_starting_running_paused_standby(client):
    repo, _ = raw_repo(client)
    pipe, auto = name(), name()
    pipeline(client, pipe, repo)
    assert state(client, pipe)[0] == P.PIPELINE_STARTING
    until(lambda: state(client, pipe)[0] == P.PIPELINE_RUNNING)
    client.stop_pipeline(pipe)
    until(lambda: state(client, pipe)[0] == P.PIPELINE_PAUSED)
    pipeline(client, auto, repo, autoscaling=True)
    ended(client, auto)
    until(lambda: state(client, auto)[0] == P.PIPELINE_STANDBY)


def test_a_bad_image_crashes_the_pipeline_with_the_kubelets_reason_and_a_missing_cmd_fails_it(client, server):
    repo, _ = raw_repo(client)
    pipe, empty = name(), name()
    server.pps.missing_images.add("ubuntu:does-not-exist")
    try:
        pipeline(client, pipe, repo, transform={"cmd": ["true"], "image": "ubuntu:does-not-exist"})
        until(lambda: state(client, pipe)[0] == P.PIPELINE_CRASHING)
        assert state(client, pipe)[1] == 'Back-off pulling image "ubuntu:does-not-exist"'
        assert jobs(client, pipe)[0].state == J.JOB_CREATED  # no worker runs it
    finally:
        server.pps.missing_images.discard("ubuntu:does-not-exist")
    until(lambda: state(client, pipe)[0] == P.PIPELINE_RUNNING)  # the image is there now: the workers start
    pipeline(client, empty, repo, transform={"image": "python:3.11-slim"})
    until(lambda: state(client, empty)[0] == P.PIPELINE_FAILURE)
    assert state(client, empty)[1] == "nothing to run: no transform.cmd"


# --- logs ---------------------------------------------------------------------------------------------


def test_get_logs_are_the_workers_and_the_codes_lines_and_without_loki_go_with_the_workers(client, server):
    repo, _ = raw_repo(client, {"/a.txt": b"alpha"})
    pipe = name()
    pipeline(client, pipe, repo, cmd=["sh", "-c", "echo seen; cp /pfs/*/* /pfs/out/"])
    [job] = ended(client, pipe)
    lines = [(m.user, m.message) for m in client.get_job_logs(pipe, job.job.id)]
    assert lines[0] == (False, "beginning to run user code") and lines[1] == (True, "seen")
    assert not lines[2][0] and lines[2][1].startswith("finished running user code after ")
    client.stop_pipeline(pipe)
    until(lambda: state(client, pipe)[0] == P.PIPELINE_PAUSED)
    assert len(list(client.get_job_logs(pipe, job.job.id))) == 3  # Loki keeps them
    server.pps.loki = False
    try:
        error = refused(lambda: list(client.get_job_logs(pipe, job.job.id)))
    finally:
        server.pps.loki = True
    assert error.details() == f'no pods belonging to the rc "default-{pipe}-v1" were found'


# --- PFS around pipelines -------------------------------------------------------------------------


def test_deleting_a_repo_a_pipeline_reads_or_writes_is_refused(client):
    repo, _ = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo)
    error = refused(lambda: client.delete_repo(pipe))
    assert error.details().endswith("cannot delete a repo associated with a pipeline - delete the pipeline instead")
    error = refused(lambda: client.delete_repo(repo))
    assert f"cannot be deleted because it's in the direct provenance of [default/{pipe}@master" in error.details()
    assert repo in [r.repo.name for r in client.list_repo()]
    error = refused(lambda: client.start_commit(pipe, "master"))
    assert error.details() == f"cannot start a commit on an output branch: default/{pipe}@master"
    client.stop_pipeline(pipe)  # a stopped pipeline's output branch has no provenance: pachd deletes its input
    client.delete_repo(repo)
    assert repo not in [r.repo.name for r in client.list_repo()]


def test_pps_needs_the_token_when_auth_is_on(client, server):
    repo, _ = raw_repo(client)
    pipe = name()
    pipeline(client, pipe, repo, cmd=["false"])
    [job] = ended(client, pipe)
    server.pfs.required_token = "secret-token"
    try:
        error = refused(lambda: list(client.list_pipeline()))
        assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, "no authentication token (try logging in)")
        wrong = python_pachyderm.Client.new_from_pachd_address(server.address, auth_token="wrong")
        error = refused(lambda: wrong.restart_datum(pipe, job.job.id))
        assert error.details() == "provided auth token is corrupted or has expired (try logging in again)"
        right = python_pachyderm.Client.new_from_pachd_address(server.address, auth_token="secret-token")
        assert [p.pipeline.name for p in right.list_pipeline()] == sorted(p.pipeline.name for p in right.list_pipeline())
        assert pipe in [p.pipeline.name for p in right.list_pipeline()]
    finally:
        server.pfs.required_token = None
