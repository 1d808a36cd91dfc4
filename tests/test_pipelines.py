"""The local pipeline runner: specs in Pachyderm's format, jobs, datums, logs, skipping, restart, provenance."""

from __future__ import annotations

import json
import time

import pytest

from dlptui.actions import pipelines as actions
from dlptui.actions.datasets import split
from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform import Platform
from dlptui.platform.local import processes
from dlptui.platform.model import JobState


@pytest.fixture
def pp(platform):
    yield platform
    for pipeline in platform.pipelines.list_pipelines():  # no runner outlives the test
        platform.pipelines.stop_pipeline(pipeline.name)


def spec(name="upper", repo="raw", glob="/*", cmd=None, **extra):
    body = {"pipeline": {"name": name}, "input": {"pfs": {"repo": repo, "glob": glob}},
            "transform": {"cmd": cmd or ["sh", "-c", "for f in /pfs/raw/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done"]}}
    body.update(extra)
    return body


RUNNER_S = 120.0  # a safety net for a runner process to start and act on a loaded machine, not a measure of speed


def wait_jobs(pp, pipeline, count, timeout=RUNNER_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = pp.pipelines.list_jobs(pipeline)
        if len(jobs) >= count and all(j.state.terminal for j in jobs):
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"jobs of {pipeline} did not end: {pp.pipelines.list_jobs(pipeline)}")


def children_of(pid: int) -> list:
    """The live child processes of `pid` (none if it is gone)."""
    import psutil

    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def raw(pp, files):
    try:
        pp.data.create_repo("raw")
    except Conflict:
        pass
    return pp.data.put_files("raw", "master", files)


# --- specs ----------------------------------------------------------------------------------


def test_a_misspelt_field_is_one_sentence_naming_it_and_nothing_is_created(pp):
    raw(pp, {"/a.txt": b"a"})
    bad = spec()
    bad["transfrom"] = bad.pop("transform")
    with pytest.raises(InvalidInput) as e:
        pp.pipelines.create_pipeline(bad)
    assert "'transfrom'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InvalidInput, match="datum_tries"):
        pp.pipelines.create_pipeline({**spec(), "datum_tries": "often"})
    assert pp.pipelines.list_pipelines() == []
    assert [r.name for r in pp.data.list_repos()] == ["raw"]


def test_a_missing_input_repo_and_a_second_pipeline_of_a_name(pp):
    with pytest.raises(NotFound, match="Input repo 'nothere'"):
        pp.pipelines.create_pipeline(spec(repo="nothere"))
    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(spec())
    with pytest.raises(Conflict, match="'upper' exists"):
        pp.pipelines.create_pipeline(spec())
    with pytest.raises(NotFound):
        pp.pipelines.inspect_pipeline("other")


def test_a_yaml_spec_file_and_an_unreadable_one(pp, tmp_path):
    raw(pp, {"/a.txt": b"a"})
    path = tmp_path / "p.yaml"
    path.write_text("pipeline:\n  name: upper\ninput:\n  pfs: {repo: raw, glob: /}\ntransform:\n  cmd: ['true']\n")
    assert actions.create_from_file(pp.pipelines, path).inputs == ("raw@master",)
    (tmp_path / "bad.yaml").write_text("pipeline: [\n")
    with pytest.raises(InvalidInput, match="neither JSON nor YAML"):
        actions.load_spec(tmp_path / "bad.yaml")
    with pytest.raises(NotFound):
        actions.load_spec(tmp_path / "none.json")


PLANTED = {"pipeline": {"name": "dogs-and-cats-retrain"}, "input": {"pfs": {"repo": "dogs-and-cats", "glob": "/"}},
           "transform": {"cmd": ["sh", "-c", "echo planted > /pfs/out/planted"]}}


def plant(folder, monkeypatch):
    """A `dogs-and-cats-retrain` file in the current folder, as someone could leave where the console starts."""
    (folder / "dogs-and-cats-retrain").write_text(json.dumps(PLANTED))
    monkeypatch.chdir(folder)


def test_a_shipped_spec_by_name_never_reads_a_file_of_the_current_folder(pp, tmp_path, monkeypatch):
    plant(tmp_path, monkeypatch)
    [shipped] = [p for p in actions.shipped_specs() if p.stem == "dogs-and-cats-retrain"]
    assert actions.load_spec("dogs-and-cats-retrain") == json.loads(shipped.read_text())
    assert actions.load_spec("./dogs-and-cats-retrain") == PLANTED  # given as a path, the file is read
    assert actions.load_spec(str(tmp_path / "dogs-and-cats-retrain")) == PLANTED
    pp.data.create_repo("dogs-and-cats")
    created = actions.retrain_on_commit(pp.pipelines)
    assert created.cmd == ("sh",) and created.spec == json.loads(shipped.read_text())
    with pytest.raises(NotFound) as e:
        actions.load_spec("dogs-and-cats-retrian")
    assert "dogs-and-cats-retrain" in str(e.value) and "./dogs-and-cats-retrian" in str(e.value)


# --- jobs and datums ------------------------------------------------------------------------


def test_each_input_commit_is_a_job_whose_output_commit_names_it(pp):
    first = raw(pp, {"/a.txt": b"hello", "/b.txt": b"world"})
    pp.pipelines.create_pipeline(spec(parallelism_spec={"constant": 2}))
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.SUCCESS and job.input_commits == (f"raw@{first.id}",)
    assert job.datums == {"total": 2, "processed": 2, "skipped": 0, "failed": 0}
    out = pp.data.inspect_commit("upper", "master")
    assert job.output_commit == f"upper@{out.id}" and out.provenance == (f"raw@{first.id}",)
    assert pp.data.get_file("upper", "master", "/a.txt") == b"HELLO"
    assert {d.files for d in pp.pipelines.list_datums(job.id)} == {("raw:/a.txt",), ("raw:/b.txt",)}

    second = raw(pp, {"/c.txt": b"third"})
    newest, _ = wait_jobs(pp, "upper", 2)
    assert newest.input_commits == (f"raw@{second.id}",)
    assert newest.datums == {"total": 3, "processed": 1, "skipped": 2, "failed": 0}  # a.txt and b.txt did not change
    assert {e.path for e in pp.data.list_files("upper", "master", "/")} == {"/a.txt", "/b.txt", "/c.txt"}
    assert pp.data.get_file("upper", "master", "/c.txt") == b"THIRD"
    assert [c.provenance for c in pp.data.list_commits("upper")] == [(f"raw@{second.id}",), (f"raw@{first.id}",)]


def test_the_code_sees_pachds_paths_and_variables(pp, monkeypatch):
    monkeypatch.setenv("SECRET_OF_THE_CONSOLE", "hunter2")
    put = raw(pp, {"/d/x.txt": b"x"})
    code = ["python3", "-c",
            "import os, sys, json; json.dump({k: os.environ.get(k) for k in "
            "('PACH_JOB_ID', 'PACH_DATUM_ID', 'PPS_PIPELINE_NAME', 'PFS', 'raw', 'raw_COMMIT', 'GREETING', "
            "'DLPTUI_HOME', 'DLPTUI_PROFILE', 'SECRET_OF_THE_CONSOLE')} | "
            "{'argv': sys.argv[1], 'exists': os.path.exists(sys.argv[1] + '/x.txt')}, open('/pfs/out/env.json'.replace('/pfs', os.environ['PFS']), 'w'))",
            "/pfs/raw/d"]
    pp.pipelines.create_pipeline({**spec(glob="/*"), "transform": {"cmd": code, "env": {"GREETING": "hi"}}})
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.SUCCESS, job.reason
    seen = json.loads(pp.data.get_file("upper", "master", "/env.json"))
    [datum] = pp.pipelines.list_datums(job.id)
    assert seen["PACH_JOB_ID"] == job.id and seen["PACH_DATUM_ID"] == datum.id and seen["PPS_PIPELINE_NAME"] == "upper"
    assert seen["exists"] and seen["argv"] == seen["PFS"] + "/raw/d" and seen["raw"] == seen["PFS"] + "/raw/d"
    assert seen["GREETING"] == "hi"
    assert seen["raw_COMMIT"] == put.id  # as pachd sets <input name>_COMMIT
    assert seen["DLPTUI_HOME"] == str(pp.config.home) and seen["DLPTUI_PROFILE"] == "local"  # where the platform is
    assert seen["SECRET_OF_THE_CONSOLE"] is None


def test_a_datum_is_running_from_its_start_and_the_others_wait_pending(pp, tmp_path):
    raw(pp, {"/a.txt": b"a", "/b.txt": b"b"})
    gate = tmp_path / "gate"
    code = ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; cp /pfs/raw/* /pfs/out/"]
    pp.pipelines.create_pipeline({**spec(cmd=code), "parallelism_spec": {"constant": 1}})
    deadline = time.monotonic() + 30
    while True:
        jobs = pp.pipelines.list_jobs("upper")
        states = sorted(d.state for d in pp.pipelines.list_datums(jobs[0].id)) if jobs else []
        if states == ["pending", "running"]:
            break
        assert time.monotonic() < deadline, f"the datums never showed one running, one pending: {states}"
        time.sleep(0.05)
    gate.write_text("")
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.SUCCESS
    assert [d.state for d in pp.pipelines.list_datums(job.id)] == ["success", "success"]


def test_a_failing_datum_is_tried_datum_tries_times_and_restart_runs_only_the_failed(pp, tmp_path):
    flag = tmp_path / "fixed"
    raw(pp, {"/good.txt": b"g", "/bad.txt": b"b"})
    code = ["sh", "-c", f"for f in /pfs/raw/*; do case $f in *bad*) test -e {flag} || {{ echo broken; exit 3; }};; esac; "
            "cp $f /pfs/out/; echo done $(basename $f); done"]
    pp.pipelines.create_pipeline({**spec(cmd=code), "datum_tries": 2})
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.FAILURE and job.datums["failed"] == 1 and job.datums["processed"] == 1
    bad = next(d for d in pp.pipelines.list_datums(job.id) if d.files == ("raw:/bad.txt",))
    assert bad.state == "failed" and bad.tries == 2 and "status 3" in bad.reason and bad.id[:12] in job.reason
    assert pp.pipelines.job_logs(job.id, bad.id).count("broken") == 2
    with pytest.raises(NotFound, match="ended with an error") as e:  # its output commit is errored, never the data
        pp.data.inspect_commit("upper", "master")
    assert bad.id[:12] in str(e.value) and pp.data.list_commits("upper") == []

    flag.write_text("")
    good = next(d for d in pp.pipelines.list_datums(job.id) if d.files == ("raw:/good.txt",))
    pp.pipelines.restart_job(job.id)
    job = actions.wait_job(pp.pipelines, job.id, timeout_s=RUNNER_S)
    assert job.state is JobState.SUCCESS and job.datums["failed"] == 0
    assert pp.pipelines.job_logs(job.id, good.id).count("done good.txt") == 1  # not run again
    assert {e.path for e in pp.data.list_files("upper", "master", "/")} == {"/good.txt", "/bad.txt"}
    with pytest.raises(Conflict, match="no failed datum"):
        pp.pipelines.restart_job(job.id)


def test_bad_code_ends_in_one_sentence(pp):
    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(spec(name="nocmd", cmd=["no-such-program-here", "/pfs/raw"]))
    pp.pipelines.create_pipeline(spec(name="writer", cmd=["sh", "-c", "echo x > /pfs/raw/new.txt"]))
    pp.pipelines.create_pipeline(spec(name="empty", glob="/nothing-*"))
    [nocmd] = wait_jobs(pp, "nocmd", 1)
    assert nocmd.state is JobState.FAILURE and "'no-such-program-here' was not found" in nocmd.reason
    [writer] = wait_jobs(pp, "writer", 1)
    assert writer.state is JobState.FAILURE and "outside its output folder" in writer.reason
    [empty] = wait_jobs(pp, "empty", 1)
    assert empty.state is JobState.SUCCESS and empty.datums["total"] == 0 and "0 datums" in empty.reason
    assert pp.data.inspect_commit("empty", "master").files == 0


def test_cross_inputs_pair_every_datum(pp):
    raw(pp, {"/a.txt": b"a", "/b.txt": b"b"})
    pp.data.create_repo("models")
    pp.data.put_files("models", "master", {"/m1": b"1", "/m2": b"2"})
    body = {"pipeline": {"name": "pairs"},
            "input": {"cross": [{"pfs": {"repo": "raw", "glob": "/*"}}, {"pfs": {"repo": "models", "glob": "/*"}}]},
            "transform": {"cmd": ["sh", "-c", "touch /pfs/out/$(ls /pfs/raw)-$(ls /pfs/models)"]}}
    pp.pipelines.create_pipeline(body)
    [job] = wait_jobs(pp, "pairs", 1)
    assert job.state is JobState.SUCCESS and job.datums["total"] == 4
    assert {e.path for e in pp.data.list_files("pairs", "master", "/")} == {"/a.txt-m1", "/a.txt-m2", "/b.txt-m1", "/b.txt-m2"}
    assert len(pp.data.inspect_commit("pairs", "master").provenance) == 2


# --- the runner lives outside the console ------------------------------------------------------


def test_stop_start_delete_and_jobs_going_on_without_the_console(pp, config):
    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(spec(cmd=["sh", "-c", "sleep 30"]))
    deadline = time.monotonic() + RUNNER_S
    while not pp.pipelines.list_jobs("upper") or pp.pipelines.list_jobs("upper")[0].state is not JobState.RUNNING:
        assert time.monotonic() < deadline, f"no running job: {pp.pipelines.list_jobs('upper')}"
        time.sleep(0.05)
    other = Platform(config)  # another console or CLI sees the running job
    try:
        assert other.pipelines.list_jobs("upper")[0].state is JobState.RUNNING
        assert other.pipelines.stop_pipeline("upper").state == "paused"
    finally:
        other.close()
    job = pp.pipelines.list_jobs("upper")[0]
    assert job.state is JobState.KILLED and "stopped" in job.reason
    with pytest.raises(NotFound, match=r"ended with an error \(Pipeline 'upper' was stopped\)"):  # as pachd's, never data
        pp.data.inspect_commit("upper", "master")
    # a running pipeline over the same repo witnesses that the runner looked at the new commit: once its job of
    # that commit has ended, the look that made it passed the stopped pipeline over
    pp.pipelines.create_pipeline(spec(name="witness", cmd=["sh", "-c", "cp /pfs/raw/* /pfs/out/"]))
    commit = raw(pp, {"/b.txt": b"b"})
    deadline = time.monotonic() + RUNNER_S
    while not any(j.input_commits == (f"raw@{commit.id}",) and j.state.terminal for j in pp.pipelines.list_jobs("witness")):
        assert time.monotonic() < deadline, f"the runner made no job of the new commit: {pp.pipelines.list_jobs('witness')}"
        time.sleep(0.05)
    assert len(pp.pipelines.list_jobs("upper")) == 1  # stopped: no new job
    pp.pipelines.delete_pipeline("witness")
    assert pp.pipelines.start_pipeline("upper").state == "running"
    deadline = time.monotonic() + RUNNER_S
    while len(pp.pipelines.list_jobs("upper")) < 2:
        assert time.monotonic() < deadline, f"the started pipeline made no job of the new commit: {pp.pipelines.list_jobs('upper')}"
        time.sleep(0.05)
    pp.pipelines.delete_pipeline("upper")
    assert pp.pipelines.list_pipelines() == [] and pp.pipelines.list_jobs() == []
    assert [r.name for r in pp.data.list_repos()] == ["raw"]
    with pytest.raises(NotFound):
        pp.pipelines.inspect_job(job.id)


def test_the_shipped_split_makes_dogs_and_cats_from_the_raw_repo(pp):
    names = [f"{label}.{i}.jpg" for label in ("cat", "dog") for i in range(10)]
    pp.data.create_repo("dogs-and-cats-raw")
    odd = {"/train/notes.txt": b"x", "/train/my[cat] é.jpg": b"y", "/more/cat.3.jpg": b"z"}  # skipped, each said why
    commit = pp.data.put_files("dogs-and-cats-raw", "master", {f"/train/{n}": n.encode() for n in names} | odd)
    [path] = [p for p in actions.shipped_specs() if p.name == "dogs-and-cats-split.json"]
    actions.create_from_file(pp.pipelines, path)
    job = actions.wait_for_input(pp.pipelines, "dogs-and-cats", f"dogs-and-cats-raw@{commit.id}", timeout_s=RUNNER_S)
    assert job.state is JobState.SUCCESS, job.reason
    made = {e.path for e in pp.data.list_files("dogs-and-cats", "master", "/", recursive=True)}
    assert made == {f"/{part}/{name}" for name, part in split(names).items()}  # the split create-dataset.py made
    assert pp.data.get_file("dogs-and-cats", "master", "/eval/" + next(n for n, p in split(names).items() if p == "eval"))
    assert pp.data.inspect_commit("dogs-and-cats", "master").provenance == (f"dogs-and-cats-raw@{commit.id}",)
    # the job's summary and its datum's log say what was skipped and why
    assert job.reason == ("Split 20 images into train/ and eval/ (seed 42, eval fraction 0.2); skipped 3 files "
                          "(2 not named cat.N or dog.N with .jpg, .jpeg or .png; 1 a second file of the same name).")
    [datum] = pp.pipelines.list_datums(job.id)
    assert datum.state == "success" and datum.reason == job.reason[0].lower() + job.reason[1:-1]
    log = "\n".join(pp.pipelines.job_logs(job.id))
    assert "skipped 'train/notes.txt': not named cat.N or dog.N" in log
    assert "skipped 'train/my[cat] é.jpg': not named" in log
    assert "skipped 'train/cat.3.jpg': a second file of the same name" in log or "'more/cat.3.jpg'" in log


def test_sample_goes_through_the_split_pipeline_with_the_direct_split_and_lineage_reaches_the_raw_commit(pp, tmp_path):
    from dlptui.actions.datasets import import_sample
    from dlptui.actions.lineage import upstream

    direct = import_sample(pp.data, repo="direct", count=20, size=16)
    piped = import_sample(pp.data, repo="dogs-and-cats", count=20, size=16, pipelines=pp.pipelines)
    assert piped.counts == direct.counts and piped.ref.repo == "dogs-and-cats"
    tree = lambda ref: {(e.path, e.hash) for e in pp.data.list_files(ref.repo, ref.commit, "/", recursive=True)}
    assert tree(piped.ref) == tree(direct.ref)  # the same split, file for file
    [raw_commit] = pp.data.list_commits("dogs-and-cats-raw")
    made = pp.data.inspect_commit("dogs-and-cats", piped.ref.commit)
    assert made.provenance == (f"dogs-and-cats-raw@{raw_commit.id}",)
    steps = upstream(pp, made)
    assert [s.kind for s in steps] == ["job", "data commit"] and steps[1].id == f"dogs-and-cats-raw@{raw_commit.id}"
    assert steps[0].id == pp.pipelines.list_jobs("dogs-and-cats")[0].id

    again = import_sample(pp.data, repo="dogs-and-cats", count=20, size=16, pipelines=pp.pipelines)
    assert tree(again.ref) == tree(piped.ref)  # the same input gives the same output
    assert pp.pipelines.list_jobs("dogs-and-cats")[0].datums["skipped"] == 1
    with pytest.raises(Conflict, match="seed"):
        import_sample(pp.data, repo="dogs-and-cats", count=20, size=16, seed=7, pipelines=pp.pipelines)
    assert upstream(pp, pp.data.inspect_commit("direct", "master")) == []  # put by hand: nothing further down


def test_a_failed_output_starts_nothing_downstream_and_lineage_reads_the_last_good_one(pp):
    """What reads a pipeline's output branch (a pipeline over it, as the retrain on commit is; `train --data`, which
    resolves the branch; lineage) reads its data head: a failed job's errored output commit is passed over."""
    from dlptui.actions.lineage import upstream

    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(spec(cmd=["sh", "-c", "grep -q bad /pfs/raw/* && exit 1; cp /pfs/raw/* /pfs/out/"]))
    pp.pipelines.create_pipeline(spec(name="down", repo="upper", cmd=["sh", "-c", "cp /pfs/upper/* /pfs/out/"]))
    [first] = wait_jobs(pp, "upper", 1)
    [down] = wait_jobs(pp, "down", 1)
    assert down.input_commits == (first.output_commit,)
    raw(pp, {"/b.txt": b"bad"})
    failed, _ = wait_jobs(pp, "upper", 2)
    assert failed.state is JobState.FAILURE and failed.output_commit is None
    good = pp.data.inspect_commit("upper", "master")
    assert f"upper@{good.id}" == first.output_commit == f"upper@{pp.data.resolve('upper', 'master').commit}"
    assert [s.id for s in upstream(pp, good)][0] == first.id  # its lineage: the job that made it
    raw(pp, {"/b.txt": b"fixed"})  # the next good output: the downstream's next job reads it
    fixed, _, _ = wait_jobs(pp, "upper", 3)
    assert fixed.state is JobState.SUCCESS
    deadline = time.monotonic() + RUNNER_S
    while len(pp.pipelines.list_jobs("down")) < 2 or not all(j.state.terminal for j in pp.pipelines.list_jobs("down")):
        assert time.monotonic() < deadline, f"no downstream job of the fixed output: {pp.pipelines.list_jobs('down')}"
        time.sleep(0.05)
    # every downstream job, in the order made: none ever read the failed job's output commit
    assert [j.input_commits for j in pp.pipelines.list_jobs("down")] == [(fixed.output_commit,), (first.output_commit,)]


def runner_record(pp, timeout=RUNNER_S):
    """The home runner's record, once a runner runs and has written it."""
    deadline = time.monotonic() + timeout
    while True:
        record = pp.pipelines.runner_record()
        if record is not None and processes.alive(record):
            return record
        if time.monotonic() >= deadline:  # what the home says about its runner, for whoever reads the failure
            log = pp.pipelines.root / "runner.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no runner.log)"
            raise AssertionError(f"no runner recorded itself: lock held {pp.pipelines.runner_running()}, starting "
                                 f"{pp.pipelines._starting()}, record {record}; runner.log ends:\n{tail}")
        time.sleep(0.05)


def datum_processes(pp, pipeline):
    """The live processes of the pipeline's datums in this home (they carry the platform's mark)."""
    from dlptui.platform.local.pipeline_job import PIPELINE_VAR

    return processes.marked({PIPELINE_VAR: pipeline, "DLPTUI_HOME": str(pp.config.home)})


def wait_datum_processes(pp, pipeline, count, timeout=RUNNER_S):
    deadline = time.monotonic() + timeout
    while len(found := datum_processes(pp, pipeline)) < count:
        assert time.monotonic() < deadline, f"{count} datum processes did not start: {found}, {pp.pipelines.list_jobs(pipeline)}"
        time.sleep(0.05)
    return found


def test_a_runner_killed_mid_job_leaves_no_output_commit_and_the_job_goes_on_when_it_comes_back(pp, tmp_path):
    import os
    import signal

    raw(pp, {f"/{n}.txt": n.encode() for n in "abcd"})
    gate = tmp_path / "gate"
    code = ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; cp /pfs/raw/* /pfs/out/"]
    pp.pipelines.create_pipeline({**spec(cmd=code), "parallelism_spec": {"constant": 2}})
    record = runner_record(pp)
    # both datums' code started (the job is running before they are): none is spawned after the kill below
    leaders = lambda: [p for p in datum_processes(pp, "upper") if os.getpgid(p.pid) == p.pid]
    deadline = time.monotonic() + RUNNER_S
    while len(leaders()) < 2:
        assert time.monotonic() < deadline, f"the two datums' code did not start: {pp.pipelines.list_jobs('upper')}"
        time.sleep(0.05)
    assert pp.pipelines.list_jobs("upper")[0].state is JobState.RUNNING
    os.kill(record.pid, signal.SIGKILL)  # kill -9 the runner
    deadline = time.monotonic() + 30
    while processes.alive(record):
        assert time.monotonic() < deadline, "the runner outlived its SIGKILL"
        time.sleep(0.05)
    assert pp.data.list_commits("upper") == []  # no half commit
    gate.write_text("")
    pp.pipelines.inspect_pipeline("upper")  # the next look starts the runner again; it resumes the job
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.SUCCESS and job.datums["total"] == 4
    assert {e.path for e in pp.data.list_files("upper", "master", "/")} == {"/a.txt", "/b.txt", "/c.txt", "/d.txt"}


def test_a_second_runner_of_a_home_leaves_at_once(pp, tmp_path):
    """A revive that races the first runner's start must not run (or count) any datum twice."""
    import subprocess
    import sys

    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(spec())
    [job] = wait_jobs(pp, "upper", 1)
    runner_record(pp)
    home = pp.config.home
    second = subprocess.run([sys.executable, "-m", "dlptui.platform.local.pipeline_runner", str(home)],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and f"another runner of the pipelines of {home} is running" in second.stdout


@pytest.mark.slow
def test_retrain_on_commit_is_off_until_created_then_trains_each_new_split_and_records_its_job(pp):
    from dlptui.actions.datasets import import_sample
    from dlptui.actions.lineage import of_version
    from dlptui.platform.model import ExperimentState
    from tests.fixtures.training import TINY

    first = import_sample(pp.data, repo="dogs-and-cats", count=20, size=16, pipelines=pp.pipelines)
    assert [p.name for p in pp.pipelines.list_pipelines()] == ["dogs-and-cats"]  # off by default
    assert pp.training.list_experiments() == []

    shipped = actions.load_spec("dogs-and-cats-retrain")  # a shipped spec by its name
    shipped["transform"]["env"] = {"TRAIN_CONFIG": str(TINY)}
    pp.pipelines.create_pipeline(shipped)
    job = actions.wait_for_input(pp.pipelines, "dogs-and-cats-retrain", f"dogs-and-cats@{first.ref.commit}", timeout_s=120)
    assert job.state is JobState.SUCCESS, job.reason
    started = json.loads(pp.data.get_file("dogs-and-cats-retrain", "master", "/experiment.json"))
    experiment = pp.training.get_experiment(str(started["id"]))
    assert experiment.data_repo == "dogs-and-cats" and experiment.data_commit == first.ref.commit
    assert experiment.data_job == job.id  # the job that started it, recorded on the experiment
    assert pp.data.inspect_commit("dogs-and-cats-retrain", "master").provenance == (f"dogs-and-cats@{first.ref.commit}",)
    deadline = time.monotonic() + 300
    while not (experiment := pp.training.get_experiment(experiment.id)).state.terminal:
        assert time.monotonic() < deadline, f"experiment {experiment.id} did not end: {experiment.state}"
        time.sleep(0.2)
    assert experiment.state is ExperimentState.COMPLETED, experiment.error
    [checkpoint, *_] = sorted(pp.training.checkpoints(experiment.id), key=lambda c: -c.batch)
    version = pp.registry.register("dogcat-model", experiment.id, checkpoint.uuid)
    steps = of_version(pp, version).steps
    assert [s.kind for s in steps] == ["version", "checkpoint", "experiment", "data commit", "job", "data commit"]
    assert f"started by pipeline job {job.id}" in steps[2].detail
    assert steps[-1].id.startswith("dogs-and-cats-raw@")  # experiment -> split commit -> split job -> raw commit

    again = import_sample(pp.data, repo="dogs-and-cats", count=20, size=16, pipelines=pp.pipelines)
    assert again.ref.commit != first.ref.commit
    job = actions.wait_for_input(pp.pipelines, "dogs-and-cats-retrain", f"dogs-and-cats@{again.ref.commit}", timeout_s=120)
    assert job.datums["skipped"] == 1 and len(pp.training.list_experiments()) == 1  # the same split does not train twice
    assert job.reason.startswith("Nothing ran: its datum was skipped, the input files being the same as in an earlier job")


def _runner(pp):
    from dlptui.platform.local.pipeline_job import Runner

    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(spec())
    pp.pipelines.stop_pipeline("upper")  # the test plays this pipeline's runner in its own process
    return Runner(pp.config.home, "upper")


def test_datum_code_started_as_the_stop_arrives_is_killed_not_left_to_run(pp, tmp_path):
    """A cancel kills the children it sees; one whose start it just missed must not run on untracked."""
    from dlptui.platform import pipeline_spec

    runner = _runner(pp)
    try:
        ran = tmp_path / "ran"
        runner.cancel("stopped")  # the stop lands between the datum's last look and its start
        code = pipeline_spec.parse(spec(cmd=["sh", "-c", f"sleep 1; touch {ran}"]))
        with open(tmp_path / "datum.log", "ab") as log:
            reason, output = runner.try_datum(code, "job", "d" * 64, [], tmp_path / "datum", log)
        assert not ran.exists(), "the datum's code ran to its end after the runner was stopped"
        assert reason and output is None
    finally:
        runner.db.close()
        runner.data.close()


def test_a_stop_while_the_runner_records_datums_does_not_hang_it(pp):
    """The home runner's SIGTERM handler cancels in the main thread, which may be inside `flush` holding the lock."""
    import threading

    runner = _runner(pp)
    try:
        def stopped_mid_flush() -> None:
            with runner.lock:
                runner.cancel(None)

        thread = threading.Thread(target=stopped_mid_flush, daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), "the stop waited for a lock its own thread held"
        assert runner.stopping.is_set()
    finally:
        runner.db.close()
        runner.data.close()


def test_a_pipeline_whose_output_another_reads_is_not_deleted_and_nothing_changes(pp):
    """Deleting `upper` would delete its output repo, which `again` reads: refused in one sentence before its
    records, its jobs or its repo are touched (the records used to go first, and the repo stayed behind)."""
    raw(pp, {"/a.txt": b"hello"})
    pp.pipelines.create_pipeline(spec())
    wait_jobs(pp, "upper", 1)
    pp.pipelines.create_pipeline(spec("again", repo="upper", cmd=["sh", "-c", "cp /pfs/upper/* /pfs/out/"]))
    wait_jobs(pp, "again", 1)
    with pytest.raises(Conflict) as info:
        pp.pipelines.delete_pipeline("upper")
    assert str(info.value) == ("Pipeline 'upper' cannot be deleted: its output repo is the input of 'again'; delete "
                               "that pipeline first.")
    assert {p.name for p in pp.pipelines.list_pipelines()} == {"upper", "again"}
    assert len(pp.pipelines.list_jobs("upper")) == 1 and pp.data.get_file("upper", "master", "/a.txt") == b"HELLO"
    pp.pipelines.delete_pipeline("again")
    pp.pipelines.delete_pipeline("upper")
    assert pp.pipelines.list_pipelines() == [] and "upper" not in [r.name for r in pp.data.list_repos()]
