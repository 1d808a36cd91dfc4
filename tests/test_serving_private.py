"""Nothing reaches past the front door: a deployment's only TCP socket is Envoy's endpoint on 127.0.0.1;
the model servers and Envoy's admin interface listen on Unix sockets in the 0700 home, answered only by
the processes dlptui started; a change that crashes half-way leaves nothing running that the state does
not name."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from dlptui.platform.local import backends, processes
from dlptui.platform.local.processes import ProcessRecord
from tests.fixtures.serving import DEPLOYMENT, UnixModelServer, image_bytes, version_of, wait_state


def _state(serving, name: str) -> dict:
    return json.loads((serving.root / name / "state.json").read_text())


def _family(state: dict) -> list[psutil.Process]:
    records = [ProcessRecord.from_json(state["gateway"])] + [ProcessRecord.from_json(state[r]) for r in ("primary", "canary", "shadow") if state.get(r)]
    return [proc for record in records for proc in processes.members(record)]


@pytest.mark.slow
def test_a_deployment_listens_on_tcp_only_at_its_endpoint_and_otherwise_on_sockets_in_its_folder(served):
    state = _state(served.serving, DEPLOYMENT)
    folder = (served.serving.root / DEPLOYMENT).resolve()
    tcp, unix = set(), set()
    for proc in _family(state):
        tcp |= {(c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        cwd = proc.cwd()
        unix |= {Path(cwd, c.laddr).resolve() for c in proc.net_connections(kind="unix") if c.laddr}
    assert tcp == {("127.0.0.1", state["gateway"]["port"])}, tcp
    assert Path(state["primary"]["socket"]).resolve() in unix
    assert folder / "envoy" / "admin.sock" in unix
    # Seldon's metrics share counters through a multiprocessing manager: its socket lies in a 0700 folder of
    # its own (tempfile.mkdtemp), answered only with the manager's random key
    for path in unix:
        if folder not in path.parents:
            info = path.parent.stat()
            assert info.st_uid == os.geteuid() and info.st_mode & 0o077 == 0 and path.name.startswith("listener-"), path


def _as_nobody(addresses: list) -> dict:
    """What a second user (uid and gid 65534) gets connecting to each address: "connected" or the error's name.

    A forked child of this (root) process drops to that user, tries, and writes its findings to a pipe."""
    import socket

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no test machinery from here on, only os._exit
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            seen = {}
            for address in addresses:
                family = socket.AF_INET if isinstance(address, tuple) else socket.AF_UNIX
                with socket.socket(family) as s:
                    try:
                        s.connect(address)
                        seen[str(address)] = "connected"
                    except OSError as e:
                        seen[str(address)] = type(e).__name__
            os.write(write, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        found = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(found)


@pytest.mark.slow
def test_no_other_user_reaches_a_model_server_or_envoys_admin(served):
    """The sockets are this user's alone (folder 0700, sockets 0600, owned by us); where the test can act
    as a second user (root: uid nobody), that user is refused by both and reaches only the endpoint."""
    state = _state(served.serving, DEPLOYMENT)
    folder = served.serving.root / DEPLOYMENT
    sockets = [Path(state["primary"]["socket"]), folder / "envoy" / "admin.sock", folder / "envoy" / "large.sock"]
    for path in sockets:
        info = path.lstat()
        assert stat.S_ISSOCK(info.st_mode) and info.st_uid == os.geteuid(), path
        assert info.st_mode & 0o077 == 0, f"{path} is open to others: {oct(info.st_mode)}"
    assert (folder / "run").stat().st_mode & 0o077 == 0
    if os.geteuid() == 0:  # a real second user
        endpoint = ("127.0.0.1", state["gateway"]["port"])
        seen = _as_nobody([*map(str, sockets), endpoint])
        assert seen.pop(str(endpoint)) == "connected", "the front door is open to everyone"
        assert set(seen.values()) == {"PermissionError"}, seen


@pytest.mark.slow
def test_envoys_admin_is_not_behind_the_endpoint(served):
    """What took a deployment down from any page before (/quitquitquit, /reset_counters, /logging) is a 404
    at the endpoint; Envoy lives on and its counters keep counting."""
    import httpx

    state = _state(served.serving, DEPLOYMENT)
    endpoint = f"http://127.0.0.1:{state['gateway']['port']}"
    before = sum(v.requests for v in served.serving.versions(DEPLOYMENT))
    assert served.serving.predict(DEPLOYMENT, image_bytes()).error is None
    with httpx.Client(timeout=10) as http:
        for path in ("/quitquitquit", "/reset_counters", "/logging?level=trace", "/config_dump"):
            assert http.post(endpoint + path).status_code == 404, path
            assert http.get(endpoint + path).status_code == 404, path
    assert processes.alive(ProcessRecord.from_json(state["gateway"]))
    assert sum(v.requests for v in served.serving.versions(DEPLOYMENT)) >= before + 1


def test_readiness_asks_the_server_it_started_not_whatever_answers_on_its_socket(tmp_path):
    """A server of another process on the socket a model server was given is not taken for it."""
    sleeper = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleeper.log", home=tmp_path)
    try:
        backend = backends.Backend("v1-x", "dogcat-model", 1, "", str(tmp_path / "run" / "v1-x.sock"),
                                   sleeper.pid, sleeper.started, str(tmp_path / "sleeper.log"), sleeper.token)
        assert backends.backend_status(backend)[0] == "starting", "nothing listens yet"
        with UnixModelServer(Path(backend.socket), "impostor"):
            status, reason = backends.backend_status(backend)
        assert status == "failed" and "another process" in reason, reason
    finally:
        processes.stop_tree(sleeper)


def test_the_model_server_will_not_start_on_a_port():
    """Without its two sockets, the local wrapper stops before Seldon binds anything."""
    from dlptui.resources import serving_dir

    run = subprocess.run([sys.executable, str(serving_dir() / "local_microservice.py"), "dogcat_model.DogCatModel",
                          "--http-port", "9999"], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1] == (
        "local_microservice: give --http-socket and --metrics-socket (the model server listens on Unix sockets only).")


@pytest.mark.slow
def test_undeploy_stops_a_model_server_that_was_still_being_started(serving_platform, tiny_checkpoints):
    serving = serving_platform.serving
    serving.deploy("half-started", version_of(tiny_checkpoints[0], 1))
    try:
        starting = backends.start_backend(version_of(tiny_checkpoints[1], 2), serving.root / "half-started")
        assert processes.alive(starting.record)
    finally:
        serving.undeploy("half-started")
    deadline = time.monotonic() + 30
    while processes.alive(starting.record) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.alive(starting.record), "undeploy left the pending model server running"
    assert not (serving.root / "half-started").exists()


@pytest.mark.slow
def test_a_change_that_crashed_after_writing_the_state_is_finished_by_the_next(serving_platform, tiny_checkpoints,
                                                                                monkeypatch):
    """The state is written before Envoy is told: a crash between the two leaves both servers named (the
    old one as draining), nothing orphaned; the next change settles it. History names the OS account."""
    from dlptui.platform.local import envoy

    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    serving = serving_platform.serving
    serving.deploy("crashy", version_of(tiny_checkpoints[0], 1))
    try:
        assert wait_state(serving, "crashy").state.value == "available"
        real = envoy.write_routes

        def crash(*args, **kwargs):
            raise RuntimeError("the console died here")

        monkeypatch.setattr(envoy, "write_routes", crash)
        with pytest.raises(RuntimeError):
            serving.update("crashy", version_of(tiny_checkpoints[1], 2))
        monkeypatch.setattr(envoy, "write_routes", real)
        state = _state(serving, "crashy")
        old = backends.Backend.from_json(state["draining"][0])
        new = backends.Backend.from_json(state["primary"])
        assert (old.version, new.version) == (1, 2)
        assert processes.alive(old.record) and processes.alive(new.record)
        assert not (serving.root / "crashy" / backends.PENDING).exists()

        serving.set_shadow("crashy", None)  # any next change
        assert _state(serving, "crashy")["draining"] == []
        assert not processes.alive(old.record)
        assert serving.predict("crashy", image_bytes()).version == 2
        account = pwd.getpwuid(os.getuid()).pw_name
        assert {change.by for change in serving.history("crashy")} == {account}
    finally:
        serving.undeploy("crashy")
