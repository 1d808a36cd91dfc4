"""Children of dlptui: an allow-listed environment, a token that tells their process group apart from
one that took a dead leader's pid, and model servers that listen on 127.0.0.1 only whatever the
console's environment says."""

from __future__ import annotations

import os
import sys
import time

import psutil
import pytest

from dlptui.platform.local import processes
from dlptui.platform.local.processes import ProcessRecord, child_env, members
from tests.fixtures.serving import version_of, wait_state

SECRET_AND_UNSAFE = {
    "DET_PASS": "s3cr3t", "DET_TOKEN": "s3cr3t", "PACHD_TOKEN": "s3cr3t", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    "GOOGLE_APPLICATION_CREDENTIALS": "/keys.json", "SELDON_DEBUG": "1", "FLASK_DEBUG": "1", "FLASK_RUN_HOST": "0.0.0.0",
}


def test_a_child_gets_the_allow_listed_environment_only():
    env = child_env({"EXTRA": "x"}, environ={"PATH": "/bin", "LC_ALL": "C", "HOME": "/h", **SECRET_AND_UNSAFE})
    assert env == {"PATH": "/bin", "LC_ALL": "C", "HOME": "/h", "EXTRA": "x"}


def test_spawn_passes_no_secret_and_marks_the_child(tmp_path, monkeypatch):
    for key, value in SECRET_AND_UNSAFE.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "env.txt"
    write = (f"import os, json; open({str(out) + '.tmp'!r}, 'w').write(json.dumps(dict(os.environ))); "
             f"os.replace({str(out) + '.tmp'!r}, {str(out)!r})")  # whole or absent: never read half written
    record = processes.spawn([sys.executable, "-c", write], tmp_path / "log", home=tmp_path)
    deadline = time.monotonic() + 60  # a Python start on a loaded machine
    while not out.exists():
        assert time.monotonic() < deadline, f"the child wrote nothing; its log: {(tmp_path / 'log').read_text()[-2000:]}"
        time.sleep(0.05)
    import json

    seen = json.loads(out.read_text())
    assert not set(SECRET_AND_UNSAFE) & set(seen)
    assert seen[processes.TOKEN_VAR] == record.token and record.token


def test_a_process_group_without_the_token_is_not_ours(tmp_path):
    record = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log", home=tmp_path)
    try:
        assert [p.pid for p in members(record)] == [record.pid]
        # the same pid, start time and group, but not our token: what a reused pid looks like
        assert members(ProcessRecord(record.pid, record.started, "another-token")) == []
        assert ProcessRecord.from_json(record.to_json()) == record
        assert ProcessRecord.from_json({"pid": 1, "started": 2.0}).token is None  # an older record still reads
    finally:
        processes.stop_tree(record)
    assert not processes.alive(record)


def test_a_model_server_listens_on_no_tcp_port_even_with_seldon_debug(serving_platform, tiny_checkpoints, monkeypatch):
    for key, value in SECRET_AND_UNSAFE.items():
        monkeypatch.setenv(key, value)
    import json

    serving = serving_platform.serving
    serving.deploy("loopback-only", version_of(tiny_checkpoints[0], 1))
    try:
        deployment = wait_state(serving, "loopback-only")
        assert deployment.state.value == "available", deployment.detail
        # the deployment's own processes, by their records: not every marked process that started meanwhile
        # (another test's or session's on the host, which may end while it is looked at)
        state = json.loads((serving.root / "loopback-only" / "state.json").read_text())
        records = [ProcessRecord(state[role]["pid"], state[role]["started"]) for role in ("gateway", "primary")]
        started = [p for record in records for p in members(record) if _marked(p)]
        listening = {}
        for proc in started:  # Envoy, the model server and the workers it forked
            env = proc.environ()
            assert not set(SECRET_AND_UNSAFE) & set(env), proc.cmdline()
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening[(proc.pid, conn.laddr.port)] = conn.laddr.ip
        # SELDON_DEBUG would make Seldon's wrapper run Flask on 0.0.0.0: the model server listens on no TCP port
        # at all (its Unix socket only), Envoy's endpoint on 127.0.0.1 is the one TCP listener
        assert {pid for pid, _ in listening} == {state["gateway"]["pid"]}, listening
        assert set(listening.values()) == {"127.0.0.1"}, listening
        assert os.path.exists(state["primary"]["socket"])
    finally:
        serving.undeploy("loopback-only")


def _marked(proc: psutil.Process) -> bool:
    try:
        return bool(proc.environ().get(processes.TOKEN_VAR))
    except psutil.Error:
        return False


@pytest.mark.slow
def test_a_training_child_gets_no_secret_of_the_console(platform, tmp_path, monkeypatch):
    import yaml

    from dlptui import resources
    from dlptui.platform.local import training as local_training

    for key, value in SECRET_AND_UNSAFE.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "data" / "train").mkdir(parents=True)
    conf = yaml.safe_load((resources.trial_dir() / "tiny.yaml").read_text())
    conf["data"] = {"store": "folder", "path": str(tmp_path / "data")}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(conf))
    seen = {}

    def spawn(self, row, env, log):
        seen.update(env)
        raise OSError("not started in this test")

    monkeypatch.setattr(local_training.LocalTraining, "_spawn", spawn)
    try:
        platform.training.create_experiment(config)
    except Exception:  # the spawn that this test refuses ends the experiment in a sentence
        pass
    assert seen and seen["DLPTUI_HOME"] == str(platform.config.home) and "PATH" in seen
    assert not set(SECRET_AND_UNSAFE) & set(seen)


def test_free_port_never_hands_out_a_port_twice_while_its_first_taker_may_not_listen_yet(monkeypatch):
    """The kernel may offer a port again until the model server given it binds it, seconds later."""
    import socket
    from types import SimpleNamespace

    offered = iter([40001, 40002, 40001, 40003])  # what bind(port 0) answers, a port offered twice among them

    class Probe:
        def __init__(self, *args):
            self.port = next(offered)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, address):
            pass

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(processes, "_HANDED_OUT", type(processes._HANDED_OUT)(maxlen=processes._HANDED_OUT.maxlen))
    monkeypatch.setattr(processes, "socket", SimpleNamespace(socket=Probe, AF_INET=socket.AF_INET, SOCK_STREAM=socket.SOCK_STREAM))
    assert [processes.free_port() for _ in range(3)] == [40001, 40002, 40003]


# --- children that cannot run away -----------------------------------------------------------------------------

_PARENT = """
import subprocess, sys, time
from dlptui.platform.local import processes
mode = sys.argv[1]
prefix = processes.parent_death_prefix() if mode == "as the runner does" else []  # setpriv where it is installed
child = subprocess.Popen(prefix + ["sleep", "300"], start_new_session=True,
                         preexec_fn=None if prefix else processes.dying_with_parent())
print(child.pid, flush=True)
time.sleep(300)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True



@pytest.mark.parametrize("mode", ["preexec_fn", "as the runner does"])
def test_a_child_with_the_parent_death_signal_dies_with_its_parent_however_it_dies(mode):
    import signal
    import subprocess

    parent = subprocess.Popen([sys.executable, "-c", _PARENT, mode], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child)
        # the signal is set before `sleep` runs (by setpriv, or the preexec_fn): a kill before that is not this test's
        deadline = time.monotonic() + 30
        while psutil.Process(child).name() != "sleep":
            assert time.monotonic() < deadline, f"the child {child} never became sleep"
            time.sleep(0.01)
        parent.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _gone(child):
            assert time.monotonic() < deadline, f"the child {child} outlived its parent's kill -9"
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait()


def test_the_guard_ends_every_marked_process_and_its_group_once_its_process_is_gone(tmp_path):
    import subprocess

    token = "guard-test-" + str(time.monotonic_ns())
    marked_env = {**child_env(), "GUARD_TEST": token}
    # a marked leader of its own group with a child that clears its environment: the group still goes
    leader = subprocess.Popen(["sh", "-c", "env -i sleep 300 & sleep 300"], env=marked_env, start_new_session=True)
    other = subprocess.Popen(["sleep", "300"], env={**child_env(), "GUARD_TEST": "another"}, start_new_session=True)
    guarded = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                                "from dlptui.platform.local import processes\n"
                                f"g = processes.guard({{'GUARD_TEST': {token!r}}}, env={{}})\n"
                                "print(g.pid, flush=True)\ntime.sleep(300)\n"], stdout=subprocess.PIPE, text=True)
    try:
        guard = int(guarded.stdout.readline())
        deadline = time.monotonic() + 30
        unmarked = lambda: [p for p in group if "GUARD_TEST" not in _environ(p)]
        while len(group := [p for p in psutil.process_iter() if _pgid(p.pid) == leader.pid]) < 3 or not unmarked():
            assert time.monotonic() < deadline, "the leader's children did not start"
            time.sleep(0.05)
        marked_pids = {p.pid for p in processes.marked({"GUARD_TEST": token})}
        assert leader.pid in marked_pids and not marked_pids & {p.pid for p in unmarked()}  # `env -i`: no mark
        guarded.kill()  # kill -9 of the guarded process: the pipe ends
        pids = [p.pid for p in group]
        while not all(_gone(pid) for pid in pids + [guard]):
            assert time.monotonic() < deadline, "the guard left marked processes or stayed"
            time.sleep(0.05)
        assert not _gone(other.pid)  # another mark is not the guard's
    finally:
        for proc in (leader, other, guarded):
            proc.kill()
            proc.wait()
        processes.end([p for p in psutil.process_iter() if _pgid(p.pid) == leader.pid])


def _environ(proc) -> dict:
    try:
        return proc.environ()
    except psutil.Error:
        return {}


def _pgid(pid: int) -> int | None:
    import os

    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
