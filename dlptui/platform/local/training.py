"""ports.Training on one machine: Determined's PyTorch Trainer in child processes, the search run by dlptui.

    <home>/training/training.db          experiments, trials, the metric stream, checkpoints (training_db.py)
    <home>/training/logs/<id>.log        the experiment's log: its search runner's, and every trial's lines
    <home>/training/logs/trial-<t>.log   one trial's stdout and stderr
    <home>/training/searches/<id>.journal  the experiment's Optuna study (search.py)
    <home>/training/determined/<uuid>/   Determined's checkpoints (XDG_DATA_HOME of the child)
    <home>/training/data/<commit>/       data commits, materialized once

Each experiment is one child, its search runner (`search_runner.py`), in its own session, so it
outlives the console that started it; it runs the trials (`training_runner.py`, one process each,
in its group) with the searcher of the config (single, random, grid, adaptive ASHA) and writes the
final state itself. This side checks a config
before starting (one sentence for a missing file, bad YAML, an unknown backbone, a bad
hyperparameter, missing weights, an unknown data commit), pins the data commit (lineage),
and notices a child that died without a word (kill -9, OOM): its experiment becomes error,
and `resume` continues from the latest checkpoint.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from dlptui import resources
from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound
from dlptui.platform.local import processes
from dlptui.platform.local.training_db import Row, TrainingDB
from dlptui.platform.model import Checkpoint, DataRef, Experiment, ExperimentState, MetricPoint, Service, Trial

ACTIVE = (ExperimentState.QUEUED, ExperimentState.RUNNING)
STOP_WAIT_S = 180.0  # how long a pause waits for the child's checkpoint before it stops it hard
LOG_CHUNK = 1 << 20  # the most bytes of log one call returns


def default_trial_dir() -> Path:
    """The trial dlptui ships (DLPTUI_TRIAL_DIR overrides it)."""
    return resources.trial_dir()


@lru_cache(maxsize=8)
def trial_settings(trial_dir: str) -> ModuleType:
    """The trial's settings.py (torch-free checks), loaded by path under a private name."""
    path = Path(trial_dir) / "settings.py"
    spec = importlib.util.spec_from_file_location(f"_dlptui_trial_settings_{abs(hash(trial_dir))}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise NotAvailable(f"The trial folder {trial_dir} has no settings.py; use the project's trial/ folder.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LocalTraining:
    """ports.Training for the local profile."""

    def __init__(self, config, platform=None) -> None:
        self.config = config
        self.platform = platform
        self.root = Path(config.home) / "training"
        self.db = TrainingDB(self.root)
        (self.root / "logs").mkdir(exist_ok=True)
        self._children: dict[int, subprocess.Popen] = {}

    # --- reading -------------------------------------------------------------------

    def health(self) -> Service:
        try:
            running = len(self._refreshed(self.db.rows(ACTIVE)))
            paused = len(self.db.rows((ExperimentState.PAUSED,)))
        except Exception as e:  # a health check never raises
            return Service("training", "Determined Trainer (local)", False, f"The training records cannot be read: {e}")
        detail = f"{running} running" + (f", {paused} paused" if paused else "")
        missing = [p for p in ("determined", "torch") if importlib.util.find_spec(p) is None]  # a base or [cluster] install
        if missing:
            what = f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"
            return Service("training", "Determined Trainer (local)", False, f"{what}: install dlptui with its local extra, pip install 'dlptui[local]'.")
        return Service("training", "Determined Trainer (local)", True, detail, version=_determined_version())

    def list_experiments(self) -> list[Experiment]:
        return [self.db.experiment(r) for r in self._refreshed(self.db.rows())]

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.db.experiment(self._refresh(self.db.row(experiment_id)))

    def metrics(self, experiment_id: str, cursor: int = 0) -> tuple[list[MetricPoint], int]:
        row = self.db.row(experiment_id)
        return self.db.metrics(row.id, max(0, int(cursor)))

    def list_trials(self, experiment_id: str) -> list[Trial]:
        return self.db.trials(self._refresh(self.db.row(experiment_id)))

    def _trial_ref(self, trial_id: str) -> tuple[int, int, bool]:
        """(experiment id, trial id, whether it is the one trial of an experiment recorded before trials were)."""
        try:
            t = self.db.trial_row(trial_id)
            return t.experiment_id, t.id, False
        except NotFound:
            pass
        try:  # such an experiment's one trial is numbered as the experiment
            row = self.db.row(trial_id)
        except NotFound:
            row = None
        if row is not None and not self.db.trial_rows(row.id) and any(t.id == str(row.id) for t in self.db.trials(row)):
            return row.id, row.id, True
        raise NotFound(f"There is no trial {trial_id}; see `dlptui trials EXPERIMENT` for the trial ids.")

    def get_trial(self, trial_id: str) -> Trial:
        experiment_id, key, _ = self._trial_ref(trial_id)
        return next(t for t in self.list_trials(str(experiment_id)) if t.id == str(key))

    def trial_metrics(self, trial_id: str, cursor: int = 0) -> tuple[list[MetricPoint], int]:
        experiment_id, key, _ = self._trial_ref(trial_id)
        return self.db.metrics(experiment_id, max(0, int(cursor)), trial_id=key)

    def trial_logs(self, trial_id: str, cursor: int = 0) -> tuple[list[str], int]:
        experiment_id, key, legacy = self._trial_ref(trial_id)
        from dlptui.platform.local.search_runner import trial_log

        return self._lines(self._log(experiment_id) if legacy else trial_log(self.root, key), cursor)

    def logs(self, experiment_id: str, cursor: int = 0) -> tuple[list[str], int]:
        """Whole lines after byte offset `cursor`; a line still being written waits for the next call."""
        row = self.db.row(experiment_id)
        return self._lines(self._log(row.id), cursor)

    def _lines(self, path: Path, cursor: int) -> tuple[list[str], int]:
        try:
            with open(path, "rb") as f:
                f.seek(max(0, int(cursor)))
                chunk = f.read(LOG_CHUNK)
        except FileNotFoundError:
            return [], cursor
        end = chunk.rfind(b"\n") + 1
        if end == 0 and len(chunk) < LOG_CHUNK:
            return [], cursor
        end = end or len(chunk)
        lines = chunk[:end].decode("utf-8", errors="replace").splitlines()
        return lines, cursor + end

    def checkpoints(self, experiment_id: str) -> list[Checkpoint]:
        return self.db.checkpoints(self.db.row(experiment_id).id)

    def checkpoint(self, uuid: str) -> Checkpoint:
        found = self.db.checkpoints(uuid=str(uuid).strip())
        if not found:
            raise NotFound(f"There is no checkpoint {uuid}; see `dlptui experiment ID` for an experiment's checkpoints.")
        return found[0]

    # --- starting ----------------------------------------------------------------

    def create_experiment(self, config: Path, data: DataRef | None = None, name: str | None = None,
                          source_checkpoint: str | None = None, job: str | None = None) -> Experiment:
        file = Path(config).expanduser()
        if not file.is_file():
            raise NotFound(f"The config file {file} does not exist; give the path of an experiment YAML file such as trial/local.yaml.")
        trial_dir = file.resolve().parent if (file.resolve().parent / "model_def.py").is_file() else default_trial_dir()
        if not (trial_dir / "model_def.py").is_file():
            raise NotAvailable(f"No trial code (model_def.py) beside {file} or in {trial_dir}; put the config in the trial/ folder.")
        settings = trial_settings(str(trial_dir))
        try:
            conf = settings.load_config(file)
            length = settings.periods(conf)[0]
        except settings.SettingsError as e:
            raise InvalidInput(str(e)) from None
        from dlptui.platform.local.search_runner import expected_batches

        max_batches = length if conf["searcher"]["name"] == "single" else expected_batches(conf["searcher"], settings.space(conf), length)
        problem = settings.weights_problem(conf["hyperparameters"])
        if problem:
            raise NotAvailable(problem)
        if source_checkpoint:
            source = self.checkpoint(source_checkpoint)  # NotFound for an unknown one, before anything starts
            conf["searcher"]["source_checkpoint_uuid"] = source.uuid
            conf["warm_start"] = source.location
        conf["data"], ref = self._pin_data(conf["data"], data, file.resolve().parent)
        if job:
            conf["data"]["job"] = str(job)
        experiment_id = self.db.insert(
            name=name or str(conf.get("name") or file.stem),
            config_file=str(file.resolve()),
            trial_dir=str(trial_dir),
            config=conf,
            data_repo=ref.repo if ref else None,
            data_commit=ref.commit if ref else None,
            max_batches=max_batches,
        )
        self._start(self.db.row(experiment_id))
        return self.get_experiment(str(experiment_id))

    def _pin_data(self, section: dict, data: DataRef | None, beside: Path) -> tuple[dict, DataRef | None]:
        """The data section with the commit pinned to its full id (or a folder made absolute), and that commit."""
        if data is not None:
            section = {"store": "local", "repo": data.repo, "commit": data.commit}
        if section["store"] == "folder":
            folder = (beside / Path(section["path"]).expanduser()).resolve()  # a relative path is the config's
            if not folder.is_dir():
                raise NotFound(f"The data folder {folder} does not exist; check data.path in the config.")
            return {**section, "path": str(folder)}, None
        if section["store"] != "local":
            raise InvalidInput(
                f"The config's data store is {section['store']!r}, but the local profile trains on its own store; "
                "pass --data REPO@BRANCH or set data.store: local."
            )
        if self.platform is None:
            raise NotAvailable("The local Training part needs the platform's data store to pin the data commit.")
        ref = self.platform.data.resolve(section["repo"], section.get("commit") or "master")
        return {**section, "repo": ref.repo, "commit": ref.commit}, ref

    def _log(self, experiment_id: int) -> Path:
        return self.root / "logs" / f"{experiment_id}.log"

    def _start(self, row: Row) -> None:
        # the allow-listed environment (processes.child_env): no secret of the console reaches the
        # trial, but for the Pachyderm token of a config that reads its data from Pachyderm
        data = (row.config or {}).get("data") or {}
        passed = ("PACHD_ADDRESS", "PACHD_TOKEN") if data.get("store") == "pachyderm" else ()
        env = processes.child_env({
            **{k: os.environ[k] for k in passed if k in os.environ},
            "DLPTUI_HOME": str(self.config.home),
            "XDG_DATA_HOME": str(self.root),
            "PYTHONUNBUFFERED": "1",
            processes.TOKEN_VAR: secrets.token_hex(12),  # marks the runner and its trials as the platform's
            processes.PART_VAR: "training",
        })
        # queued until the child exists; a child that ends at once must not be overwritten to running
        self.db.update(row.id, state=ExperimentState.QUEUED, pid=None, request=None, error=None, ended=None)
        with open(self._log(row.id), "ab") as log:
            try:
                child = self._spawn(row, env, log)
            except OSError as e:
                error = f"The training process could not be started ({e}); check that {sys.executable} still exists."
                self.db.update(row.id, state=ExperimentState.ERROR, error=error, ended=time.time())
                raise NotAvailable(error) from None
        self._children[row.id] = child
        # a waiter reaps the child the moment it exits: no zombie, and its exit is seen at once
        threading.Thread(target=child.wait, name=f"training-{row.id}-waiter", daemon=True).start()
        started = self.db.update(
            row.id, only_if=ACTIVE, state=ExperimentState.RUNNING, pid=child.pid, pid_started=_started(child.pid)
        )
        if not started and self.db.row(row.id).pid != child.pid:
            # killed or paused while it was being spawned (the request saw no process to signal),
            # or it already ended: nothing may keep training untracked
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _spawn(self, row: Row, env: dict, log) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "dlptui.platform.local.search_runner", str(self.config.home), str(row.id)],
            cwd=row.trial_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: it outlives the console, and stops as one
        )

    # --- changing state ------------------------------------------------------------

    def pause(self, experiment_id: str) -> Experiment:
        row = self._refresh(self.db.row(experiment_id))
        if row.state not in ACTIVE:
            raise Conflict(f"Experiment {row.id} is {row.state.value}, not running; only a running experiment can be paused.")
        self.db.update(row.id, request="pause")
        self._signal(row, signal.SIGTERM)
        if not self._wait(row, STOP_WAIT_S):
            self._signal(row, signal.SIGKILL, group=True)
            self._wait(row, 10.0)
        if self.db.row(row.id).pid in (row.pid, None):  # not resumed meanwhile by someone else
            self.db.update(row.id, only_if=ACTIVE, state=ExperimentState.PAUSED, pid=None, request=None)
            self._settle_trials(row.id, ExperimentState.PAUSED)
        return self.get_experiment(str(row.id))

    def _settle_trials(self, experiment_id: int, state: ExperimentState) -> None:
        """Trials left running or queued by a runner that is gone take the experiment's state."""
        for t in self.db.trial_rows(experiment_id):
            if not t.state.terminal and (state is not ExperimentState.PAUSED or t.state is not ExperimentState.PAUSED):
                self.db.update_trial(t.id, state=state, pid=None, **({"ended": time.time()} if state.terminal else {}))

    def resume(self, experiment_id: str) -> Experiment:
        row = self._refresh(self.db.row(experiment_id))
        if row.state not in (ExperimentState.PAUSED, ExperimentState.ERROR):
            raise Conflict(
                f"Experiment {row.id} is {row.state.value}; only a paused experiment, or one that stopped with an error, can be resumed."
            )
        # two resumes at once start one runner: only the caller that moves it out of paused or error starts it
        if not self.db.update(row.id, only_if=(ExperimentState.PAUSED, ExperimentState.ERROR), state=ExperimentState.QUEUED, pid=None):
            raise Conflict(f"Experiment {row.id} is being resumed already; see `dlptui experiment {row.id}`.")
        self._start(self.db.row(row.id))
        return self.get_experiment(str(row.id))

    def kill(self, experiment_id: str) -> Experiment:
        row = self._refresh(self.db.row(experiment_id))
        if row.state.terminal:
            raise Conflict(f"Experiment {row.id} is {row.state.value} already; there is nothing to kill.")
        self.db.update(row.id, request="kill")
        self._signal(row, signal.SIGKILL, group=True)
        self._wait(row, 10.0)
        self.db.update(row.id, state=ExperimentState.KILLED, pid=None, request=None, ended=time.time())
        self._settle_trials(row.id, ExperimentState.KILLED)
        return self.get_experiment(str(row.id))

    def close(self) -> None:
        """Only the records' connections: children keep training after the console closes (and init reaps them then)."""
        self.db.close()

    # --- the child process -----------------------------------------------------------

    def _alive(self, row: Row) -> bool:
        """Whether the row's process is still the child it started (not a reused pid, not a zombie)."""
        if not row.pid:
            return False
        child = self._children.get(row.id)
        if child is not None and child.pid == row.pid and child.returncode is not None:
            return False
        import psutil

        try:
            process = psutil.Process(row.pid)
            if row.pid_started and abs(process.create_time() - row.pid_started) > 1.0:
                return False
            return process.status() != psutil.STATUS_ZOMBIE  # exited, not yet reaped by its parent
        except psutil.Error:
            return False

    def _refresh(self, row: Row) -> Row:
        """The row, with a child that died without writing its final state given one."""
        if row.state not in ACTIVE or (row.state is ExperimentState.QUEUED and not row.pid) or self._alive(row):
            return row  # (queued without a process: being started right now)
        if row.request == "kill":
            state, error = ExperimentState.KILLED, None
        elif row.request == "pause":
            state, error = ExperimentState.PAUSED, None
        else:
            state = ExperimentState.ERROR
            error = (
                f"The training process of experiment {row.id} died unexpectedly; "
                f"resume it to continue from its latest checkpoint (see `dlptui experiment logs {row.id}`)."
            )
        ended = None if state is ExperimentState.PAUSED else time.time()
        if self.db.update(row.id, only_if=ACTIVE, state=state, error=error, ended=ended, pid=None, request=None):
            self._settle_trials(row.id, state)
        return self.db.row(row.id)

    def _refreshed(self, rows: list[Row]) -> list[Row]:
        return [self._refresh(r) for r in rows]

    def _signal(self, row: Row, signum: int, group: bool = False) -> None:
        if not self._alive(row):
            return
        try:
            if group:
                os.killpg(row.pid, signum)  # the child leads its own session: its loader workers go too
            else:
                os.kill(row.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _wait(self, row: Row, timeout: float) -> bool:
        """Wait for the child to exit; True when it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(row):
                return True
            time.sleep(0.1)
        return False


def _started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _determined_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("determined")
    except PackageNotFoundError:
        return None

