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
final state itself. At most the config's max_concurrent_experiments
experiments train at once on the platform: one started beyond that stays queued, its runner waiting
for a slot (training_start.py). This side checks a config
before starting (one sentence for a missing file, bad YAML, an unknown backbone, a bad
hyperparameter, missing weights, an unknown data commit), pins the data commit (lineage),
and notices a child that died without a word (kill -9, OOM): its experiment becomes error,
and `resume` continues from the latest checkpoint.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from dlptui import resources
from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound, PlatformError
from dlptui.platform import rules
from dlptui.platform.local import training_start
from dlptui.platform.local.training_db import Row, TrainingDB
from dlptui.platform.model import Checkpoint, DataRef, Experiment, ExperimentState, MetricPoint, Service, Trial
from dlptui.text import data_ref

ACTIVE = (ExperimentState.QUEUED, ExperimentState.RUNNING)
LIVE = (*ACTIVE, ExperimentState.PAUSED)  # what a kill may end
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
        # the last listing: (stamp, its active rows, its experiments)
        self._listed: tuple[int, list[Row], list[Experiment]] | None = None

    # --- reading -------------------------------------------------------------------

    def health(self) -> Service:
        try:
            active = self._refreshed(self.db.rows(ACTIVE))
            queued = sum(1 for r in active if training_start.waiting(r.state, r.pid))
            paused = self.db.count((ExperimentState.PAUSED,))
        except Exception as e:  # a health check never raises
            return Service("training", "Determined Trainer (local)", False, f"The training records cannot be read: {e}")
        detail = f"{len(active) - queued} running" + (f", {queued} queued" if queued else "") + (f", {paused} paused" if paused else "")
        missing = [p for p in ("determined", "torch") if importlib.util.find_spec(p) is None]  # a base or [cluster] install
        if missing:
            what = f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"
            return Service("training", "Determined Trainer (local)", False, f"{what}: install dlptui with its local extra, pip install 'dlptui[local]'.")
        return Service("training", "Determined Trainer (local)", True, detail, version=_determined_version())

    def list_experiments(self) -> list[Experiment]:
        """Newest first. When nothing of the records changed since the last listing (their stamp) and every
        experiment it showed as active still has its process, that same list (the same object) again."""
        stamp = self.db.stamp()
        if self._listed is not None and self._listed[0] == stamp and all(self._alive(r) for r in self._listed[1]):
            return self._listed[2]
        rows = self._refreshed(self.db.rows())
        listed = self._described(rows)
        self._listed = (stamp, [r for r in rows if r.state in ACTIVE], listed)
        return listed

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._described([self._refresh(self.db.row(experiment_id))])[0]

    def _described(self, rows: list[Row]) -> list[Experiment]:
        """The rows as experiments (`TrainingDB.experiments`), a queued one that waits for a slot saying so."""
        waits = training_start.queued(self.config.max_concurrent_experiments)
        return [replace(e, detail=waits) if training_start.waiting(r.state, r.pid) else e
                for r, e in zip(rows, self.db.experiments(rows))]

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
                          source_checkpoint: str | None = None, job: str | None = None,
                          coalesce: str | None = None) -> Experiment:
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
        if coalesce:
            conf["data"]["coalesce"] = training_start.check_key(coalesce)
        claim: list[int | None] = []  # the start lock, taken before anyone can see the queued experiment
        experiment_id = self.db.insert(
            name=name or str(conf.get("name") or file.stem),
            config_file=str(file.resolve()),
            trial_dir=str(trial_dir),
            config=conf,
            data_repo=ref.repo if ref else None,
            data_commit=ref.commit if ref else None,
            max_batches=max_batches,
            before_commit=lambda new: claim.append(training_start.take(self.root, new, wait=True)),
        )
        try:
            if coalesce:  # before it starts: it and no older one may get the turn of its key
                self._supersede(self.db.row(experiment_id), coalesce)
            self._start(self.db.row(experiment_id), claim[0])
        finally:
            training_start.release(claim[0])
        return self.get_experiment(str(experiment_id))

    def _supersede(self, new: Row, key: str) -> None:
        """Every older experiment of `key` still queued (waiting for its turn) ends killed, superseded by `new`; the
        pipeline job that started one says which commit it skipped and why."""
        for row in self.db.rows((ExperimentState.QUEUED,)):
            if row.id >= new.id or training_start.key_of(row.config) != key:
                continue
            newer = data_ref(new.data_repo, new.data_commit)
            reason = (f"Superseded by experiment {new.id} on the newer {newer} before it started: {key} trains one "
                      "commit at a time, the newest next.")
            if not self.db.update(row.id, only_if=(ExperimentState.QUEUED,), state=ExperimentState.KILLED, error=reason,
                                  ended=time.time(), request=None):
                continue  # it got its turn (running now) or ended meanwhile
            self._signal(row, signal.SIGTERM)  # its runner waits for the turn: it leaves (it could not run now anyway)
            job = ((row.config or {}).get("data") or {}).get("job")
            if job and self.platform is not None:
                skipped = data_ref(row.data_repo, row.data_commit)
                note = (f"Skipped {skipped}: its experiment {row.id} was superseded by experiment {new.id} on the newer "
                        f"{newer} before it started ({key} trains one commit at a time, the newest next).")
                try:
                    self.platform.pipelines.note_job(job, note)
                except (PlatformError, AttributeError):  # the job was deleted meanwhile
                    pass

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
        ref = self.platform.data.resolve(section["repo"], section.get("commit") or rules.DEFAULT_BRANCH)
        return {**section, "repo": ref.repo, "commit": ref.commit}, ref

    def _log(self, experiment_id: int) -> Path:
        return self.root / "logs" / f"{experiment_id}.log"

    def _start(self, row: Row, lock: int | None) -> None:
        """Spawn the runner of a queued experiment; the caller holds its start lock (`lock`), which the runner inherits."""
        # one of the platform's slots (max_concurrent_experiments) when one is free and no older experiment waits:
        # the runner inherits it and the experiment runs; without one it stays queued, its runner waiting for a slot
        # (one of a coalesce key gets none here: it takes a slot only once it has its key's turn, never holding
        # a slot while it waits for the turn)
        cap = self.config.max_concurrent_experiments
        keyed = training_start.key_of(row.config) is not None
        waits = keyed or training_start.others_wait(self.db.rows((ExperimentState.QUEUED,)), row.id)
        slot = None if waits else training_start.take_slot(self.root, cap)
        try:
            self._start_with(row, training_start.runner_env(self.config.home, self.root, row.config, lock, cap, slot), slot)
        finally:
            training_start.release(slot)  # the runner holds its own copy

    def _start_with(self, row: Row, env: dict, slot: int | None) -> None:
        # queued until the child exists; a child that ends at once must not be overwritten to running
        if not self.db.update(row.id, only_if=(ExperimentState.QUEUED,), pid=None, request=None, error=None, ended=None):
            return  # killed (or paused) before its runner was spawned: nothing to start
        with open(self._log(row.id), "ab") as log:
            try:
                child = self._spawn(row, env, log)
            except OSError as e:
                error = f"The training process could not be started ({e}); check that {sys.executable} still exists."
                self.db.update(row.id, only_if=ACTIVE, state=ExperimentState.ERROR, error=error, ended=time.time())
                raise NotAvailable(error) from None
        self._children[row.id] = child
        # a waiter reaps the child the moment it exits: no zombie, and its exit is seen at once
        threading.Thread(target=child.wait, name=f"training-{row.id}-waiter", daemon=True).start()
        # the child records itself too (search_runner.Runner.claim): a starter that dies here loses nothing; without
        # a slot it stays queued until its runner has one (and, of a coalesce key, its key's turn first)
        running = {"state": ExperimentState.RUNNING} if slot is not None else {}
        started = self.db.update(
            row.id, only_if=ACTIVE, pid=child.pid, pid_started=training_start.started(child.pid), **running
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
            pass_fds=training_start.passed_fds(env),
        )

    # --- changing state ------------------------------------------------------------

    def pause(self, experiment_id: str) -> Experiment:
        row = self._refresh(self.db.row(experiment_id))
        if row.state not in ACTIVE or not self.db.update(row.id, only_if=ACTIVE, request="pause"):
            state = self.db.row(row.id).state
            raise Conflict(f"Experiment {row.id} is {state.value}, not running; only a running experiment can be paused.")
        self._stop(row, "pause", STOP_WAIT_S, ACTIVE, state=ExperimentState.PAUSED)  # its runner leaves that to us
        return self.get_experiment(str(row.id))

    def _stop(self, row: Row, request: str, wait_s: float, expected: tuple[ExperimentState, ...], **end) -> None:
        """Stop the recorded runner, then write `end` while that runner is still the one recorded: one that
        recorded itself meanwhile (it was being started) is stopped too; one that left `expected` first stays,
        and so does one started after this request was settled by someone else (a look that found the runner
        gone wrote the end and cleared the request, and a resume came: that runner is the user's)."""
        signum = signal.SIGKILL if request == "kill" else signal.SIGTERM
        while True:
            self._signal(row, signum, group=signum == signal.SIGKILL)
            if not self._wait(row, wait_s):
                self._signal(row, signal.SIGKILL, group=True)
                self._wait(row, 10.0)
            if self.db.update(row.id, only_if=expected, only_pid=row.pid, pid=None, request=None, **end):
                self._settle_trials(row.id, end["state"])
                return
            row = self.db.row(row.id)
            if row.state not in expected or row.request != request:
                return

    def _settle_trials(self, experiment_id: int, state: ExperimentState) -> None:
        """Trials left running or queued by a runner that is gone take the experiment's state (a trial's end stays)."""
        expected = ACTIVE if state is ExperimentState.PAUSED else LIVE
        for t in self.db.trial_rows(experiment_id):
            if t.state in expected:
                self.db.update_trial(t.id, only_if=expected, state=state, pid=None,
                                     **({"ended": time.time()} if state.terminal else {}))

    def resume(self, experiment_id: str) -> Experiment:
        row = self._refresh(self.db.row(experiment_id))
        if row.state not in (ExperimentState.PAUSED, ExperimentState.ERROR):
            raise Conflict(
                f"Experiment {row.id} is {row.state.value}; only a paused experiment, or one that stopped with an error, can be resumed."
            )
        # two resumes at once start one runner: only the caller that holds the start lock and moves it
        # out of paused or error starts it
        lock = training_start.take(self.root, row.id)
        try:
            if lock is None or not self.db.update(
                row.id, only_if=(ExperimentState.PAUSED, ExperimentState.ERROR), state=ExperimentState.QUEUED, pid=None
            ):
                raise Conflict(f"Experiment {row.id} is being resumed already; see `dlptui experiment {row.id}`.")
            self._start(self.db.row(row.id), lock)
        finally:
            training_start.release(lock)
        return self.get_experiment(str(row.id))

    def kill(self, experiment_id: str) -> Experiment:
        row = self._refresh(self.db.row(experiment_id))
        if row.state.terminal or not self.db.update(row.id, only_if=LIVE, request="kill"):
            state = self.db.row(row.id).state
            raise Conflict(f"Experiment {row.id} is {state.value} already; there is nothing to kill.")
        self._stop(row, "kill", 10.0, LIVE, state=ExperimentState.KILLED, ended=time.time())
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
        return training_start.alive(row.pid, row.pid_started)

    def _refresh(self, row: Row) -> Row:
        """The row, with a child that died without writing its final state given one, and one that
        never came (queued with no process and no starter: its start lock is free) an error."""
        if row.state not in ACTIVE or self._alive(row):
            return row
        lock = None
        if row.state is ExperimentState.QUEUED and not row.pid:
            lock = training_start.take(self.root, row.id)
            if lock is None:
                return row  # being started right now
        try:
            return self._settle(row, lock is not None)
        finally:
            training_start.release(lock)

    def _settle(self, row: Row, never_came: bool) -> Row:
        if row.request == "kill":
            state, error = ExperimentState.KILLED, None
        elif row.request == "pause":
            state, error = ExperimentState.PAUSED, None
        else:
            state = ExperimentState.ERROR
            error = (
                f"The training process of experiment {row.id} "
                + ("was never started (what started it stopped first)" if never_came else "died unexpectedly")
                + f"; resume it to continue from its latest checkpoint (see `dlptui experiment logs {row.id}`)."
            )
        ended = None if state is ExperimentState.PAUSED else time.time()
        if self.db.update(row.id, only_if=ACTIVE, only_pid=row.pid, state=state, error=error, ended=ended, pid=None, request=None):
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


def _determined_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("determined")
    except PackageNotFoundError:
        return None

