"""What the local Serving part starts: model servers (the real `seldon-core-microservice`); Envoy is envoy.py.

Every process is detached (it outlives the console) and recorded in the deployment's state
file, so a fresh console finds it again and re-checks that it is alive. A model server listens
on a Unix socket in the deployment's folder (`run/`, 0700, inside the 0700 home), never on a
TCP port: only this user can reach it, nobody can take its address first, and readiness asks
the server dlptui started (its socket, answered by its own process group), not "something on a
port". Envoy reaches it over the same socket.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from dlptui import resources
from dlptui.errors import NotFound, Unreachable
from dlptui.platform.local import processes, unix_http
from dlptui.platform.local.processes import ProcessRecord
from dlptui.platform.model import ModelVersion

START_TIMEOUT_S = float(os.environ.get("DLPTUI_SERVING_START_TIMEOUT", "240"))
# DLPTUI_SERVING_WORKERS (gunicorn workers of a model server, default 1), DLPTUI_TORCH_THREADS (torch CPU
# threads of each, default: the cores over the workers) and
# DLPTUI_SERVING_LOAD_RETRIES (attempts to load a model, default 5) tune the model servers; DLPTUI_PREDICTION_SUMMARY=0
# keeps no per-request summary (no drift, no outliers).


PENDING = "pending.json"  # the model server being started in a deployment's folder
RUN = "run"  # the deployment's folder of sockets
KEEP_INPUTS = "keep_inputs.json"  # whether (and how many) inputs the model servers keep: dlptui writes it
INPUTS = "inputs"  # the kept inputs, a file per image named by its sha256 (0700 folder, 0600 files)
serving_dir = resources.serving_dir
trial_dir = resources.trial_dir


@dataclass
class Backend:
    """One model server: a version of a model behind its own Unix socket."""

    id: str
    model: str
    version: int
    checkpoint: str
    socket: str  # absolute path of its REST socket
    pid: int
    started: float
    log: str
    token: str | None = None  # the process token (processes.ProcessRecord)

    @property
    def record(self) -> ProcessRecord:
        return ProcessRecord(self.pid, self.started, self.token)

    def request(self, method: str, target: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 2.0) -> unix_http.Reply:
        """A request to this model server, answered by its own process group or not at all (unix_http.NotOurs)."""
        return unix_http.request(Path(self.socket), method, target, body, headers, timeout, group=self.pid)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> Backend:
        if "socket" not in data:
            raise ValueError("a model server recorded by an older dlptui (on a TCP port)")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def private_folder(folder: Path) -> Path:
    """`folder/run`, made 0700 (also when it was there with another mode)."""
    run = folder / RUN
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(run, 0o700)
    return run


def home_of(folder: Path) -> Path:
    """The home a deployment's folder belongs to (`<home>/serving/<deployment>`): its processes carry it."""
    return Path(folder).parent.parent


def launch(ident: str, folder: Path, args: Sequence[str], env: Mapping[str, str], model: str = "", version: int = 0,
           checkpoint: str = "") -> Backend:
    """Start the Seldon microservice with `args` (after the class name) on sockets in `folder/run`; do not wait."""
    run = private_folder(folder)
    log = folder / "logs" / f"{ident}.log"
    argv = [
        sys.executable,
        str(serving_dir() / "local_microservice.py"),
        "dogcat_model.DogCatModel",
        "--service-type", "MODEL",
        "--http-socket", f"{RUN}/{ident}.sock",  # relative to its folder: short, however deep the home is
        "--metrics-socket", f"{RUN}/{ident}.metrics.sock",
        *args,
    ]  # fmt: skip
    record = processes.spawn(argv, log, cwd=folder, env=env, part="serving", home=home_of(folder))
    return Backend(ident, model, version, checkpoint, str(run / f"{ident}.sock"), record.pid, record.started, str(log),
                   record.token)


def start_backend(version: ModelVersion, folder: Path) -> Backend:
    """Start `seldon-core-microservice` serving `version` on a private socket; do not wait for it."""
    checkpoint = version.checkpoint_location
    if not checkpoint or not Path(checkpoint).is_dir():
        raise NotFound(
            f"The checkpoint of {version} is not on this machine ({checkpoint or 'no location'}); "
            "register a version whose checkpoint exists."
        )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, int(os.environ.get("DLPTUI_SERVING_WORKERS", "1")))
    # each worker's torch gets its share of the cores, so that workers do not fight over them
    torch_threads = int(os.environ.get("DLPTUI_TORCH_THREADS") or max(1, cores // workers))
    ident = f"v{version.version}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"
    parameters = [
        {"name": "checkpoint_dir", "value": str(Path(checkpoint).resolve()), "type": "STRING"},
        {"name": "model_name", "value": version.model, "type": "STRING"},
        {"name": "version", "value": str(version.version), "type": "INT"},
        {"name": "torch_threads", "value": str(torch_threads), "type": "INT"},
        {"name": "load_retries", "value": os.environ.get("DLPTUI_SERVING_LOAD_RETRIES", "5"), "type": "INT"},
        {"name": "prediction_log", "value": str((folder / "predictions.sqlite").resolve()), "type": "STRING"},
        {"name": "log_keep", "value": os.environ.get("DLPTUI_PREDICTION_LOG_KEEP", "100000"), "type": "INT"},
        # each request's summary for drift and outliers (serving/embedding_summary.py); "0" turns it off
        {"name": "prediction_summary", "value": os.environ.get("DLPTUI_PREDICTION_SUMMARY", "1"), "type": "STRING"},
        # the images of the last N predictions, kept while the settings file asks (kept_inputs.py; off by default)
        {"name": "keep_inputs", "value": str((folder / KEEP_INPUTS).resolve()), "type": "STRING"},
        {"name": "inputs_dir", "value": str((folder / INPUTS).resolve()), "type": "STRING"},
    ]
    args = ["--grpc-workers", "0", "--workers", str(workers), "--threads", "4", "--parameters", json.dumps(parameters)]
    # the allow-listed environment: no secret of the console, no SELDON_DEBUG or FLASK_* (either makes
    # the wrapper run Flask's own server on 0.0.0.0)
    env = processes.child_env({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(serving_dir()), str(trial_dir()), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    })
    backend = launch(ident, folder, args, env, version.model, version.version, checkpoint)
    # recorded the moment it exists, until a state file names it: a crash leaves no orphan (LocalServing.sweep_pending)
    processes.write_json(folder / PENDING, [r.to_json() for r in pending(folder)] + [backend.to_json()])
    return backend


def pending(folder: Path) -> list[ProcessRecord]:
    """The model servers started in `folder` that no state file names yet (a change may start several)."""
    try:
        data = json.loads((folder / PENDING).read_text())
    except (FileNotFoundError, ValueError, OSError):
        return []
    records = []
    for item in data if isinstance(data, list) else [data]:  # one record: what an older dlptui wrote
        try:
            records.append(ProcessRecord.from_json(item))
        except (KeyError, TypeError, ValueError):
            continue
    return records


def backend_status(backend: Backend) -> tuple[str, str]:
    """("available" | "starting" | "failed", the reason when not available)."""
    if not processes.alive(backend.record):
        last = next((line for line in reversed(processes.tail(Path(backend.log), 30)) if line.strip()), "")
        reason = f"The model server of version {backend.version} (pid {backend.pid}) has exited"
        return "failed", reason + (f"; its log ends: {last.strip()[:200]}" if last else ".")
    try:
        response = backend.request("GET", "/health/status")
    except unix_http.NotOurs as e:
        return "failed", f"The socket of version {backend.version} is answered by another process ({e}); deploy it again."
    except unix_http.ERRORS:
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


def wait_ready(backend: Backend, timeout: float = START_TIMEOUT_S) -> None:
    """Block until the model server answers ready; Unreachable with the reason if it fails or times out."""
    deadline = time.monotonic() + timeout
    while True:
        state, reason = backend_status(backend)
        if state == "available":
            return
        if state == "failed":
            raise Unreachable(reason.rstrip(".") + ".")
        if time.monotonic() > deadline:
            raise Unreachable(
                f"The model server of version {backend.version} was not ready after {timeout:.0f} s; see its log {backend.log}."
            )
        time.sleep(0.25)
