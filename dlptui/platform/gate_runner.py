"""The home's gate runner: one process that looks at every gated canary every few seconds, on either profile.

    gate_runner.start(config)          # detached `dlptui --profile P gate run`, unless one runs (or read-only)
    gate_runner.serve(config, look)    # in that process: the lock, the record, the loop
    gate_runner.stop(config)           # `dlptui stop`: SIGTERM to it, the sentence of what was stopped

A gate must act when nobody looks (the canary of a retrain at night), and never in a model server (it must judge
it). So each home has one gate runner: started by whatever sets a canary on a gated deployment (deploy, `dlptui
deployment gate`, the console, the loop pipeline), holding an flock on `gates/runner.lock` so that a second one
leaves at once, recorded in `gates/runner.json` (pid, start time, token: what `dlptui status` lists and `dlptui
stop` stops), its log in `gates/runner.log`. Between looks it sleeps DLPTUI_GATE_INTERVAL seconds (default 10);
when no gated canary is left it ends, and the next canary starts it again. On the cluster profile it runs on
this machine too, with the profile's environment, and acts through the SeldonDeployment.

The looks themselves are the caller's (`actions.gate.look_all`): this module only keeps one process alive.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dlptui.errors import PlatformError

INTERVAL_VAR = "DLPTUI_GATE_INTERVAL"
INTERVAL_S = 10.0
STARTING_S = 30.0  # a runner not at its lock this long after its start is not waited for
RECORD, LOCK, STARTING, LOG = "runner.json", "runner.lock", "runner-starting.json", "runner.log"
# what a runner on the cluster profile needs of this environment to reach the same cluster (its secrets included:
# it acts on the cluster, as the user would)
PASSED = ("DLPTUI_CONFIG", "DLPTUI_HOME", INTERVAL_VAR, "KUBECONFIG", "DLPTUI_KUBE_CONTEXT", "DLPTUI_ISTIO_INGRESS",
          "DLPTUI_PROMETHEUS_URL", "DLPTUI_REQUEST_LOGGER_URL", "DLPTUI_CA_FILE", "DET_MASTER", "DET_USER", "PACHD_ADDRESS")
SECRETS = ("DLPTUI_SERVING_TOKEN", "DET_PASS", "DET_TOKEN", "PACHD_TOKEN")  # passed on the cluster profile only


def root(config) -> Path:
    return Path(config.home) / "gates"


def interval(env=os.environ) -> float:
    try:
        value = float(env.get(INTERVAL_VAR) or INTERVAL_S)
    except ValueError:
        return INTERVAL_S
    return value if 0.05 <= value <= 3600 else INTERVAL_S


def running(config) -> bool:
    from dlptui.platform.local import processes

    folder = root(config)
    return folder.is_dir() and processes.lock_held(folder / LOCK)


def start(config) -> bool:
    """Start the runner unless one runs or is on its way (or dlptui is read-only); whether one was started."""
    if config.read_only:
        return False
    from dlptui.platform.local import processes  # the way of starting a recorded child, whatever the profile

    folder = root(config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if processes.lock_held(folder / LOCK) or processes.starting(folder / STARTING, STARTING_S):
        return False
    names = PASSED + (SECRETS if config.kind != "local" else ())
    env = processes.child_env({k: os.environ[k] for k in names if k in os.environ})
    env["DLPTUI_HOME"] = str(config.home)
    record = processes.spawn([sys.executable, "-m", "dlptui", "--profile", config.profile, "gate", "run"],
                             log=folder / LOG, cwd=folder, env=env, part="gate", home=config.home)
    processes.write_json(folder / STARTING, record.to_json())
    return True


def record(config):
    """The runner as it recorded itself (None before the first)."""
    from dlptui.platform.local import processes

    return processes.read_record(root(config) / RECORD)


def stop(config) -> list[str]:
    """End the runner if it runs; the sentence of what was stopped."""
    from dlptui.platform.local import processes

    found = record(config)
    if found is None or not processes.alive(found):
        return []
    processes.stop_tree(found, timeout=10.0)
    return [f"Stopped the gate runner (pid {found.pid}); gated canaries wait until the next command that sets or "
            "looks at one starts it again (`dlptui deployment gate NAME`, the console's Deployments screen)."]


def _say(line: str) -> None:
    sys.stdout.write(time.strftime("%Y-%m-%d %H:%M:%S") + f" {line}\n")
    sys.stdout.flush()


def serve(config, look: Callable[[Callable[[str], None]], bool]) -> int:
    """The runner's life: the lock (or leave), the record, then `look(say)` every interval until it says no gated
    canary is left, or SIGTERM. A look that fails is said in the log and tried again at the next."""
    from dlptui.platform.local import processes
    import psutil

    folder = root(config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(folder / LOCK, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _say("another gate runner of this home is running; this one stops.")
        lock.close()
        return 0
    quit = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: quit.set())
    try:
        me = os.getpid()
        processes.write_json(folder / RECORD, processes.ProcessRecord(me, psutil.Process(me).create_time(),
                                                                      os.environ.get(processes.TOKEN_VAR)).to_json())
        (folder / STARTING).unlink(missing_ok=True)
        wait = interval()
        _say(f"gate runner started (a look every {wait:g} s).")
        while not quit.is_set():
            try:
                left = look(_say)
            except PlatformError as e:
                _say(f"this look failed: {e}")
                left = True
            if not left:
                _say("no gated canary is left; the gate runner ends.")
                break
            quit.wait(wait)
    finally:
        lock.close()
    return 0
