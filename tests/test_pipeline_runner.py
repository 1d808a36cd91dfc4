"""The home's pipeline runner: one process for every pipeline, asleep at no cost until a commit or a request;
datums that cannot outlive it (kill -9 included) nor run twice at once; datum_timeout and job_timeout; the spec
fields it cannot honour refused in one sentence, or noted. Real runner and datum processes, no training."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from dlptui.errors import InvalidInput
from dlptui.platform.local import processes
from dlptui.platform.local.pipeline_job import PIPELINE_VAR
from dlptui.platform.model import JobState
from tests.test_pipelines import RUNNER_S, raw, runner_record, spec, wait_jobs


@pytest.fixture
def pp(platform):
    yield platform
    for pipeline in platform.pipelines.list_pipelines():  # no runner outlives the test
        platform.pipelines.stop_pipeline(pipeline.name)


def home_processes(pp, **marks):
    return processes.marked({"DLPTUI_HOME": str(pp.config.home), **marks})


def datums(pp, name="upper"):
    return home_processes(pp, **{PIPELINE_VAR: name})


def leaders(procs):
    return [p for p in procs if _pgid(p) == p.pid]


def _pgid(proc):
    try:
        return os.getpgid(proc.pid)
    except ProcessLookupError:
        return None


def wait_until(what, condition, timeout=RUNNER_S):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.05)
    return value


def long_poll(pid: int) -> str | None:
    """The system call line (/proc/PID/syscall) of the process's main thread while it is blocked in poll(2) with a
    timeout longer than every look again after a change (wake.AFTER_S), else None. On x86-64 poll is call 7 and its
    third argument the timeout in ms; elsewhere (ppoll, whose timeout is a pointer) the call alone is checked."""
    import platform

    from dlptui.platform.local.wake import AFTER_S

    try:
        line = open(f"/proc/{pid}/syscall").read().strip()
    except OSError:
        return None
    fields = line.split()
    if platform.machine() == "x86_64":
        return line if fields[0] == "7" and int(fields[3], 16) > max(AFTER_S) * 1000 else None
    return line if fields[0] == "73" else None  # ppoll on arm64


def gone(pids) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def guard_of(pp, record):
    """The runner's guard: marked with the runner's token, serving no datum."""
    found = [p for p in home_processes(pp, **{processes.TOKEN_VAR: record.token}) if p.pid != record.pid
             and PIPELINE_VAR not in p.environ()]
    assert len(found) == 1, found
    return found[0]


def long_datum(counter):
    """One datum (glob /) whose code starts two children that would run for minutes, and counts its runs."""
    return spec(glob="/", cmd=["sh", "-c", f"echo run >> {counter}; sleep 300 & sleep 300 & wait"], datum_tries=1)


# --- nothing runs away ----------------------------------------------------------------------------


def test_kill_9_of_the_runner_leaves_no_datum_process(pp, tmp_path):
    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(long_datum(tmp_path / "runs"))
    record = runner_record(pp)
    started = wait_until("the datum's code and its two children did not start", lambda: len(datums(pp)) >= 3 and datums(pp))
    assert {p.environ()[processes.TOKEN_VAR] for p in started} == {record.token}  # the platform's mark, the runner's token
    assert {p.environ()[processes.PART_VAR] for p in started} == {"pipelines"}
    assert len(leaders(started)) == 1 and _pgid(started[0]) != os.getpgid(record.pid)  # a process group of its own
    os.kill(record.pid, signal.SIGKILL)
    pids = [p.pid for p in started]
    wait_until(f"the datum's processes {pids} outlived their runner", lambda: gone(pids), timeout=30)
    assert datums(pp) == []


def test_a_revived_runner_ends_what_a_dead_one_left_before_it_runs_the_datum_again_once(pp, tmp_path):
    runs = tmp_path / "runs"
    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(long_datum(runs))
    record = runner_record(pp)
    started = wait_until("the datum did not start", lambda: len(datums(pp)) >= 3 and datums(pp))
    guard = guard_of(pp, record)
    for pid in (guard.pid, record.pid):  # the runner and its guard, killed at once: the datum's children stay
        os.kill(pid, signal.SIGKILL)
    [leader] = leaders(started)
    wait_until("the datum's code outlived its runner (no parent-death signal)", lambda: gone([leader.pid]), timeout=30)
    left = [p.pid for p in started if p.pid != leader.pid]
    assert not gone(left)  # what the signal does not reach: the next runner's to end
    assert [job.state for job in pp.pipelines.list_jobs("upper")] == [JobState.RUNNING]  # the records still say so
    # the datum's code dies with the runner's thread that started it, the lock with the runner's last thread: a look
    # while that one is still ending finds the lock held and leaves the revival to the next look
    wait_until("the runner outlived its SIGKILL", lambda: not processes.alive(record), timeout=30)

    # (the leader can read as ended while a thread of it still holds the lock: a look then leaves it to the next one)

    def looked_and_revived():
        pp.pipelines.inspect_pipeline("upper")  # a look starts a runner when none holds the lock
        found = pp.pipelines.runner_record()
        return found if found is not None and found.pid != record.pid and processes.alive(found) else None

    revived = wait_until("no look started a runner again", looked_and_revived, timeout=120)
    wait_until("the revived runner did not run the datum again", lambda: runs.exists() and runs.read_text().count("run") == 2)
    assert gone(left), "the revived runner ran the datum while the dead one's processes still ran"
    now = datums(pp)
    assert len(leaders(now)) == 1 and {p.environ()[processes.TOKEN_VAR] for p in now} == {revived.token}

    pp.pipelines.stop_pipeline("upper")
    assert datums(pp) == [] and pp.pipelines.list_jobs("upper")[0].state is JobState.KILLED


def test_pipeline_stop_ends_the_datums_a_dead_runner_left(pp, tmp_path):
    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(long_datum(tmp_path / "runs"))
    record = runner_record(pp)
    started = wait_until("the datum did not start", lambda: len(datums(pp)) >= 3 and datums(pp))
    for pid in (guard_of(pp, record).pid, record.pid):
        os.kill(pid, signal.SIGKILL)
    wait_until("the runner outlived its SIGKILL", lambda: not processes.alive(record), timeout=30)
    assert pp.pipelines.stop_pipeline("upper").state == "paused"  # no runner: the stop ends them itself
    assert gone([p.pid for p in started]) and datums(pp) == []
    [job] = pp.pipelines.list_jobs("upper")
    assert job.state is JobState.KILLED and "stopped" in job.reason


# --- one runner, asleep while nothing happens -------------------------------------------------------


def test_one_runner_serves_every_pipeline_sleeps_at_no_cost_and_wakes_on_a_commit(pp):
    raw(pp, {"/a.txt": b"a"})
    for name in ("one", "two", "three"):
        pp.pipelines.create_pipeline(spec(name=name, cmd=["sh", "-c", "cp /pfs/raw/* /pfs/out/"]))
    for name in ("one", "two", "three"):
        wait_jobs(pp, name, 1)
    record = runner_record(pp)
    ours = home_processes(pp, **{processes.PART_VAR: "pipelines"})
    assert sorted(p.pid for p in ours) == sorted([record.pid, guard_of(pp, record).pid])  # one runner (and its guard)
    runner = psutil.Process(record.pid)
    # settled: the looks again after the last change (wake.AFTER_S, up to 4 s after it) are over, and its one
    # thread that loops is blocked in poll(2) until a change or its safety look (the kernel says so, no pause)
    asleep = wait_until("the idle runner never slept in poll(2) for longer than its looks again",
                        lambda: long_poll(record.pid))
    before = sum(runner.cpu_times()[:2])
    time.sleep(3.0)  # the measure: what 3 s of sleeping cost
    spent = sum(runner.cpu_times()[:2]) - before
    assert spent < 0.05, f"the idle runner used {spent:.3f} s of CPU in 3 s"
    assert long_poll(record.pid) == asleep, "the idle runner woke up with nothing to do"

    commit = raw(pp, {"/b.txt": b"b"})  # a commit wakes it: a job per pipeline
    for name in ("one", "two", "three"):
        jobs = wait_jobs(pp, name, 2)
        assert jobs[0].input_commits == (f"raw@{commit.id}",) and jobs[0].state is JobState.SUCCESS
    for name in ("one", "two", "three"):
        pp.pipelines.stop_pipeline(name)
    wait_until("the runner stayed with no pipeline to run", lambda: not processes.alive(record), timeout=30)
    assert home_processes(pp, **{processes.PART_VAR: "pipelines"}) == []


# --- timeouts ---------------------------------------------------------------------------------------


def test_a_datum_past_its_datum_timeout_is_killed_with_its_group_and_fails_with_a_sentence(pp, tmp_path):
    raw(pp, {"/a.txt": b"a"})
    pp.pipelines.create_pipeline(spec(glob="/", cmd=["sh", "-c", "echo begun; sleep 300 & sleep 300; echo never"],
                                      datum_timeout="1s", datum_tries=2))
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.FAILURE and "datum_timeout (1s)" in job.reason
    [datum] = pp.pipelines.list_datums(job.id)
    assert datum.state == "failed" and datum.tries == 2 and "datum_timeout (1s)" in datum.reason
    log = pp.pipelines.job_logs(job.id, datum.id)
    assert log.count("begun") == 2 and "never" not in log
    assert sum("dlptui: The datum ran past its datum_timeout (1s)" in line for line in log) == 2
    assert datums(pp) == []  # the code and the child it started in the background: both killed


def test_a_job_past_its_job_timeout_is_killed_with_a_sentence(pp):
    raw(pp, {"/a.txt": b"a", "/b.txt": b"b"})
    pp.pipelines.create_pipeline(spec(cmd=["sh", "-c", "sleep 300"], job_timeout="2s"))
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.KILLED and job.reason == "The job ran past its job_timeout (2s): its datums were killed."
    assert job.finished - job.started < 60
    assert datums(pp) == [] and pp.pipelines.inspect_pipeline("upper").state == "running"  # the next commit runs


# --- fields the local runner cannot honour ----------------------------------------------------------


def test_a_field_the_local_runner_cannot_honour_is_refused_in_one_sentence_or_noted(pp):
    raw(pp, {"/a.txt": b"a"})
    for field, value, words in [("resource_limits", {"memory": "1G", "cpu": 1}, "resource_limits"),
                                ("egress", {"URL": "s3://bucket/dir"}, "egress"),
                                ("transform", {"cmd": ["true"], "err_cmd": ["true"]}, "transform.err_cmd"),
                                ("transform", {"cmd": ["true"], "secrets": [{"name": "s", "env_var": "X", "key": "k"}]},
                                 "transform.secrets")]:
        with pytest.raises(InvalidInput) as e:
            pp.pipelines.create_pipeline({**spec(), field: value})
        assert words in str(e.value) and "local profile refuses" in str(e.value) and "\n" not in str(e.value)
    assert pp.pipelines.list_pipelines() == []
    made = pp.pipelines.create_pipeline({**spec(cmd=["sh", "-c", "cp /pfs/raw/* /pfs/out/; exit 3"]),
                                         "resource_requests": {"memory": "1G"}, "pod_patch": "[]",
                                         "transform": {"cmd": ["sh", "-c", "cp /pfs/raw/* /pfs/out/; exit 3"],
                                                       "accept_return_code": [3]}})
    assert "Not used locally: pod_patch (Kubernetes only); resource_requests (one machine: nothing to schedule)." in made.detail
    assert "not running" not in made.detail  # its runner is on its way
    [job] = wait_jobs(pp, "upper", 1)
    assert job.state is JobState.SUCCESS  # accept_return_code honoured
