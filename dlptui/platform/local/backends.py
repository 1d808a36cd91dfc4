"""What the local Serving part starts: model servers (the real `seldon-core-microservice`); Envoy is envoy.py.

Every process is detached (it outlives the console) and recorded in the deployment's state
file with its ports, so a fresh console finds it again and re-checks that it is alive.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from dlptui import resources
from dlptui.errors import NotFound, Unreachable
from dlptui.platform.local import processes
from dlptui.platform.local.processes import ProcessRecord
from dlptui.platform.model import ModelVersion

START_TIMEOUT_S = float(os.environ.get("DLPTUI_SERVING_START_TIMEOUT", "240"))
# DLPTUI_SERVING_WORKERS (gunicorn workers of a model server, default 1), DLPTUI_TORCH_THREADS (torch CPU
# threads of each, default: the cores over the workers) and
# DLPTUI_SERVING_LOAD_RETRIES (attempts to load a model, default 5) tune the model servers.


PENDING = "pending.json"  # the model server being started in a deployment's folder
serving_dir = resources.serving_dir
trial_dir = resources.trial_dir


@dataclass
class Backend:
    """One model server: a version of a model behind its own ports."""

    id: str
    model: str
    version: int
    checkpoint: str
    http_port: int
    metrics_port: int
    pid: int
    started: float
    log: str
    token: str | None = None  # the process token (processes.ProcessRecord)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def record(self) -> ProcessRecord:
        return ProcessRecord(self.pid, self.started, self.token)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Backend:
        return cls(**data)


def start_backend(version: ModelVersion, folder: Path) -> Backend:
    """Start `seldon-core-microservice` serving `version` on free loopback ports; do not wait for it."""
    checkpoint = version.checkpoint_location
    if not checkpoint or not Path(checkpoint).is_dir():
        raise NotFound(
            f"The checkpoint of {version} is not on this machine ({checkpoint or 'no location'}); "
            "register a version whose checkpoint exists."
        )
    http_port, metrics_port = processes.free_port(), processes.free_port()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, int(os.environ.get("DLPTUI_SERVING_WORKERS", "1")))
    # each worker's torch gets its share of the cores, so that workers do not fight over them
    torch_threads = int(os.environ.get("DLPTUI_TORCH_THREADS") or max(1, cores // workers))
    ident = f"v{version.version}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"
    log = folder / "logs" / f"{ident}.log"
    parameters = [
        {"name": "checkpoint_dir", "value": str(Path(checkpoint).resolve()), "type": "STRING"},
        {"name": "model_name", "value": version.model, "type": "STRING"},
        {"name": "version", "value": str(version.version), "type": "INT"},
        {"name": "torch_threads", "value": str(torch_threads), "type": "INT"},
        {"name": "load_retries", "value": os.environ.get("DLPTUI_SERVING_LOAD_RETRIES", "5"), "type": "INT"},
        {"name": "prediction_log", "value": str((folder / "predictions.sqlite").resolve()), "type": "STRING"},
        {"name": "log_keep", "value": os.environ.get("DLPTUI_PREDICTION_LOG_KEEP", "100000"), "type": "INT"},
    ]
    argv = [
        sys.executable,
        str(serving_dir() / "local_microservice.py"),
        "dogcat_model.DogCatModel",
        "--service-type", "MODEL",
        "--http-port", str(http_port),
        "--metrics-port", str(metrics_port),
        "--grpc-workers", "0",
        "--workers", str(workers),
        "--threads", "4",
        "--parameters", json.dumps(parameters),
    ]  # fmt: skip
    # the allow-listed environment: no secret of the console, no SELDON_DEBUG or FLASK_* (either makes
    # the wrapper run Flask's own server on 0.0.0.0)
    env = processes.child_env({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(serving_dir()), str(trial_dir()), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    })
    record = processes.spawn(argv, log, cwd=serving_dir(), env=env, part="serving")
    backend = Backend(ident, version.model, version.version, checkpoint, http_port, metrics_port, record.pid, record.started,
                      str(log), record.token)
    # recorded the moment it exists, until a state file names it: a crash leaves no orphan (LocalServing.sweep_pending)
    processes.write_json(folder / PENDING, backend.to_json())
    return backend


def backend_status(backend: Backend, client: httpx.Client) -> tuple[str, str]:
    """("available" | "starting" | "failed", the reason when not available)."""
    if not processes.alive(backend.record):
        last = next((line for line in reversed(processes.tail(Path(backend.log), 30)) if line.strip()), "")
        reason = f"The model server of version {backend.version} (pid {backend.pid}) has exited"
        return "failed", reason + (f"; its log ends: {last.strip()[:200]}" if last else ".")
    try:
        response = client.get(backend.url + "/health/status", timeout=2.0)
    except httpx.HTTPError:
        return "starting", f"The model server of version {backend.version} is starting."
    if response.status_code == 200:
        return "available", ""
    try:
        status = response.json().get("status", {})
    except ValueError:
        status = {}
    if status.get("reason") == "MODEL_LOAD_FAILED":
        return "failed", f"Version {backend.version} could not be loaded: {status.get('info', 'no reason given')}"
    return "starting", f"Version {backend.version} is loading its model."


def wait_ready(backend: Backend, client: httpx.Client, timeout: float = START_TIMEOUT_S) -> None:
    """Block until the model server answers ready; Unreachable with the reason if it fails or times out."""
    deadline = time.monotonic() + timeout
    while True:
        state, reason = backend_status(backend, client)
        if state == "available":
            return
        if state == "failed":
            raise Unreachable(reason.rstrip(".") + ".")
        if time.monotonic() > deadline:
            raise Unreachable(
                f"The model server of version {backend.version} was not ready after {timeout:.0f} s; see its log {backend.log}."
            )
        time.sleep(0.25)
