"""The in-memory state of the Determined master stand-in (tests only): what a 0.38.1 master keeps in its
database, and how it changes over time. The binding objects built from it are in det_master_views.py.

Facts from determined-ai/determined at tag v0.38.1 (master/internal, master/pkg):

- Ids are sequences: experiments 1, 2, ...; trials one sequence across every experiment (an experiment's
  trial is not numbered as the experiment); models their own.
- An experiment is ACTIVE in the database; what the API shows is refined by its trials' allocations
  (api_experiment.go `enrichExperimentStateTx`, api_trials.go `enrichTrialState`): QUEUED, then PULLING,
  STARTING, RUNNING as an allocation gets its image and starts (`SETTLE_S` each step here).
- Kill (experiment.go `KillExperiment`): STOPPING_KILLED for the experiment and its trials; each trial's
  allocation is torn down (`TEARDOWN_S` here) and the trial becomes CANCELED; once no trial is left the
  experiment becomes CANCELED (`StoppingToTerminalStates`) with its end time. Killing a stopping-killed or
  ended experiment is no error; a transition the state machine forbids is FailedPrecondition.
- The searcher (det_searcher.py) creates a search's first trials; more come as trials end.
- When an experiment ends, the checkpoint GC (experiment.go `stop`, postgres_experiments.go
  `ExperimentCheckpointsToGCRaw`) marks DELETED every checkpoint that is neither among the experiment's best
  `save_experiment_best` nor its trial's best `save_trial_best` by the searcher metric (one whose batch
  has no validation of that metric is never "best") nor its trial's latest `save_trial_latest`, unless
  a model version holds it or an experiment started from it. The master's own storage sets 0, 1, 1.
- Session tokens expire (`SessionDuration`, 7 days; `token_lifetime_s` here); an expired or unknown token
  is 401 "invalid credentials".

The fixed state: user `determined`; one completed experiment (id 1, `dogcat-resnet`, trial 1, 100 batches,
training and validation metrics, log lines, two checkpoints) and one model `dogcat-model` (id 1) whose
version 1 is the first checkpoint. Tests play a running trial with `report_metrics`, `add_checkpoint`,
`add_log` and `end_trial`, and serve a real checkpoint folder with `add_checkpoint_files`.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import tarfile
import threading
import time
from pathlib import Path

from tests.standins import DATA_COMMIT, DATA_REPO
from tests.standins.det_searcher import brackets, sample

USER, PASSWORD = "determined", "Standin-Pass-1"
TOKEN = "standin-static-token"  # an access token that does not expire, for DET_TOKEN
CHECKPOINTS = ("3f2a9c1e-5a55-4c21-9d0e-4b7f00000050", "b84d07e5-61c2-4f0a-8e3d-9c2a00000100")
TERMINAL = {"COMPLETED", "CANCELED", "ERROR", "DELETED"}
STOPPING = {"STOPPING_KILLED", "STOPPING_CANCELED", "STOPPING_COMPLETED", "STOPPING_ERROR"}
TO_TERMINAL = {"STOPPING_KILLED": "CANCELED", "STOPPING_CANCELED": "CANCELED", "STOPPING_COMPLETED": "COMPLETED",
               "STOPPING_ERROR": "ERROR"}
ALLOCATION = ("QUEUED", "PULLING", "STARTING", "RUNNING")
SETTLE_S = 0.1  # one step of an allocation (queued, pulling, starting, running)
TEARDOWN_S = 0.3  # a killed trial's allocation going away
PAGE = 100  # the most items the master puts in one page when no limit is asked
SESSION_S = 7 * 24 * 3600.0
MASTER_STORAGE = {"type": "shared_fs", "host_path": "/mnt/checkpoints", "storage_path": "determined-checkpoint",
                  "save_experiment_best": 0, "save_trial_best": 1, "save_trial_latest": 1}


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


class MasterError(Exception):
    """A failure the master reports: a gRPC code name (InvalidArgument, NotFound, ...) or, on the echo routes, an
    HTTP status."""

    def __init__(self, code: str | int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class MasterState:
    """Experiments, trials, metrics, logs, checkpoints, models and sessions, keyed as the master keys them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}
        self.token_lifetime_s = SESSION_S
        self.reset()

    def reset(self) -> None:
        """Back to the fixed state (sessions already handed out stay valid)."""
        with self.lock:
            self._clear()
            self._seed()

    def _clear(self) -> None:
        self.tokens[TOKEN] = float("inf")
        self.token_lifetime_s = SESSION_S
        self.ids, self.trial_ids, self.model_ids = itertools.count(1), itertools.count(1), itertools.count(1)
        self.experiments: dict[int, dict] = {}
        self.pending: list[tuple[float, str, int, str]] = []  # (when, "allocation"|"exit", trial id, state)
        self.trials: dict[int, dict] = {}
        self.reports: list[dict] = []  # v1MetricsReport fields, in the order they were reported
        self.logs: dict[int, list[str]] = {}
        self.checkpoints: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.uploads: dict[int, list[str]] = {}  # experiment id -> paths of its model definition
        self.files: dict[str, Path] = {}  # checkpoint uuid -> the folder holding its files (the storage)
        self.downloads: list[str] = []  # uuids of the checkpoints fetched through the master, in order
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, query) of every request, in order
        self.hook = None  # (method, path, 'before' | 'after') -> None: a test's interleaving of requests
        self.held = False  # True: no state change settles (`holding`), however long a test takes to look

    def _seed(self) -> None:
        t0 = time.time() - 3600
        config = {
            "name": "dogcat-resnet",
            "entrypoint": "model_def:DogCatTrial",
            "searcher": {"name": "single", "metric": "validation_loss", "smaller_is_better": True, "max_length": {"batches": 100}},
            "hyperparameters": {"learning_rate": 0.001, "global_batch_size": 16},
            "checkpoint_storage": dict(MASTER_STORAGE),
            "data": {"store": "pachyderm", "repo": DATA_REPO, "commit": DATA_COMMIT, "branch": "master"},
        }
        [trial] = self.add_experiment(next(self.ids), config, "COMPLETED", t0, ended=t0 + 600)
        for batch, loss in ((25, 0.69), (50, 0.52), (75, 0.41), (100, 0.33)):
            self.report_metrics(trial, "training", batch, {"loss": loss}, t0 + batch)
        for batch, vloss, acc in ((50, 0.48, 0.78), (100, 0.36, 0.86)):
            self.report_metrics(trial, "validation", batch, {"validation_loss": vloss, "accuracy": acc}, t0 + batch + 1)
        for line in ["starting trial 1", "loading data dogs-and-cats", "training", "validating", "done"]:
            self.add_log(trial, f"[rank=0] {line}")
        for ckpt, batch in zip(CHECKPOINTS, (50, 100)):
            self.add_checkpoint(ckpt, trial, batch, when=t0 + batch + 2)
        self.add_model("dogcat-model", "Dogs vs cats", t0)
        self.add_version("dogcat-model", CHECKPOINTS[0])

    # --- sessions ---------------------------------------------------------------------------------

    def new_token(self) -> str:
        import uuid

        token = f"standin-{uuid.uuid4().hex}"
        self.tokens[token] = time.time() + self.token_lifetime_s
        return token

    def token_valid(self, token: str) -> bool:
        return self.tokens.get(token, 0.0) > time.time()

    def expire_tokens(self) -> None:
        """Every session handed out so far has expired (the static access token stays)."""
        with self.lock:
            for token in self.tokens:
                if token != TOKEN:
                    self.tokens[token] = 0.0

    # --- experiments and trials ---------------------------------------------------------------------

    def add_experiment(self, exp_id: int, config: dict, state: str, start: float, ended: float | None = None,
                       trials: int = 1) -> list[int]:
        """An experiment in the database state `state` with `trials` trials in the same state (a seeded run); their ids."""
        with self.lock:
            self.experiments[exp_id] = {"id": exp_id, "config": config, "state": state, "start": start, "end": ended,
                                        "brackets": [{"max": trials, "first": trials, "created": 0}]}
            ids = [self._new_trial(exp_id, 0, state, start) for _ in range(trials)]
            for trial_id in ids:
                self.trials[trial_id]["end"] = ended if state in TERMINAL else None
            return ids

    def create(self, config: dict, activate: bool, files: list[str]) -> int:
        """A new experiment as CreateExperiment makes it: the searcher's first trials, queued when activated."""
        with self.lock:
            exp_id = next(self.ids)
            now = time.time()
            self.experiments[exp_id] = {"id": exp_id, "config": config, "state": "ACTIVE" if activate else "PAUSED",
                                        "start": now, "end": None, "brackets": [{**b, "created": 0} for b in brackets(config)]}
            for n, bracket in enumerate(self.experiments[exp_id]["brackets"]):
                for _ in range(bracket["first"]):
                    self._new_trial(exp_id, n, "ACTIVE" if activate else "PAUSED", now)
            self.uploads[exp_id] = sorted(files)
            return exp_id

    def _new_trial(self, exp_id: int, bracket: int, state: str, start: float) -> int:
        e = self.experiments[exp_id]
        trial_id = next(self.trial_ids)
        n = sum(b["created"] for b in e["brackets"])
        e["brackets"][bracket]["created"] += 1
        self.trials[trial_id] = {"id": trial_id, "experiment": exp_id, "bracket": bracket, "state": state, "batches": 0,
                                 "start": start, "end": None, "hparams": sample(e["config"].get("hyperparameters") or {}, n),
                                 "allocation": None}
        self.logs[trial_id] = []
        if state == "ACTIVE":
            self._allocate(trial_id)
        return trial_id

    def _allocate(self, trial_id: int) -> None:
        self.trials[trial_id]["allocation"] = "QUEUED"
        for step, name in enumerate(ALLOCATION[1:], start=1):
            self.later("allocation", trial_id, name, after=step * SETTLE_S)

    def experiment_trials(self, exp_id: int) -> list[int]:
        return sorted(t for t, v in self.trials.items() if v["experiment"] == exp_id)

    def first_trial(self, exp_id: int) -> int:
        return self.experiment_trials(exp_id)[0]

    def later(self, kind: str, key: int, state: str, after: float = SETTLE_S) -> None:
        self.pending.append((time.time() + after, kind, key, state))

    @contextlib.contextmanager
    def holding(self):
        """No state change settles inside: a test looks at a passing state (trials QUEUED) for as long as a
        loaded machine takes. What came due meanwhile settles at the next request after."""
        self.held = True
        try:
            yield self
        finally:
            self.held = False

    def settle(self) -> None:
        """Apply the state changes whose time has come (none while `holding`)."""
        with self.lock:
            if self.held:
                return
            now = time.time()
            due = sorted(p for p in self.pending if p[0] <= now)
            self.pending = [p for p in self.pending if p[0] > now]
            for _, kind, trial_id, state in due:
                t = self.trials[trial_id]
                if kind == "allocation" and t["state"] == "ACTIVE" and t["allocation"] is not None:
                    t["allocation"] = state
                elif kind == "exit" and t["state"] not in TERMINAL:
                    self._trial_exited(trial_id, state)

    def _trial_exited(self, trial_id: int, state: str) -> None:
        t = self.trials[trial_id]
        t.update(state=state, allocation=None, end=time.time())
        e = self.experiments[t["experiment"]]
        if e["state"] == "ACTIVE":
            bracket = e["brackets"][t["bracket"]]
            if bracket["created"] < bracket["max"]:  # the searcher's next trial in that bracket
                self._new_trial(e["id"], t["bracket"], "ACTIVE", time.time())
            elif all(self.trials[i]["state"] in TERMINAL for i in self.experiment_trials(e["id"])):
                e["state"] = "STOPPING_COMPLETED"  # the search is done
        if e["state"] in STOPPING and all(self.trials[i]["state"] in TERMINAL for i in self.experiment_trials(e["id"])):
            e.update(state=TO_TERMINAL[e["state"]], end=time.time())
            self.collect_garbage(e["id"])

    def end_trial(self, trial_id: int, state: str = "COMPLETED") -> None:
        """The trial's code returned (or the searcher stopped it): it exits, and the searcher goes on."""
        with self.lock:
            self.settle()
            self._trial_exited(trial_id, state)

    def transition(self, exp_id: int, action: str) -> None:
        """Pause, activate or kill, as the master's experiment actor does them."""
        with self.lock:
            self.settle()
            e = self.experiments[exp_id]
            if action == "kill" and (e["state"] == "STOPPING_KILLED" or e["state"] in TERMINAL):
                return
            if e["state"] in TERMINAL:  # no actor is left: activate does not find it, pause is refused
                if action == "activate":
                    raise MasterError("NotFound", f"experiment not found: {exp_id}")
                raise MasterError("FailedPrecondition", "experiment in terminal state")
            target = {"pause": "PAUSED", "activate": "ACTIVE", "kill": "STOPPING_KILLED"}[action]
            allowed = {"ACTIVE": {"PAUSED", "STOPPING_KILLED"}, "PAUSED": {"ACTIVE", "STOPPING_KILLED"},
                       "STOPPING_CANCELED": {"STOPPING_KILLED"}}.get(e["state"], set())
            if target == e["state"]:
                return
            if target not in allowed:
                raise MasterError("FailedPrecondition", f"experiment in incompatible state {e['state']}")
            e["state"] = target
            for trial_id in self.experiment_trials(exp_id):
                t = self.trials[trial_id]
                if t["state"] in TERMINAL:
                    continue
                if target == "PAUSED":
                    t.update(state="PAUSED", allocation=None)
                elif target == "ACTIVE":
                    t["state"] = "ACTIVE"
                    self._allocate(trial_id)
                else:  # its allocation is torn down first
                    t["state"] = "STOPPING_KILLED"
                    self.later("exit", trial_id, "CANCELED", after=TEARDOWN_S if t["allocation"] else SETTLE_S)
            if target == "STOPPING_KILLED" and not any(self.trials[i]["state"] not in TERMINAL for i in self.experiment_trials(exp_id)):
                e.update(state="CANCELED", end=time.time())
                self.collect_garbage(exp_id)

    # --- what trials report ---------------------------------------------------------------------------

    def report_metrics(self, trial_id: int, group: str, batch: int, metrics: dict, when: float | None = None) -> None:
        with self.lock:
            key = "validation_metrics" if group == "validation" else "avg_metrics"
            self.reports.append({"id": len(self.reports) + 1, "trialId": trial_id, "group": group, "totalBatches": batch,
                                 "endTime": when or time.time(), "metrics": {key: metrics}})
            self.trials[trial_id]["batches"] = max(self.trials[trial_id]["batches"], batch)

    def validation_at(self, trial_id: int, batch: int) -> dict:
        found = [r for r in self.reports if r["trialId"] == trial_id and r["group"] == "validation" and r["totalBatches"] == batch]
        return dict(found[-1]["metrics"]["validation_metrics"]) if found else {}

    def add_checkpoint(self, uuid: str, trial_id: int, batch: int, when: float | None = None) -> None:
        """A completed checkpoint of the trial after `batch`; its metrics are the validation reported at that batch."""
        with self.lock:
            self.checkpoints[uuid] = {"uuid": uuid, "trial": trial_id, "batch": batch, "time": when or time.time(),
                                      "metrics": self.validation_at(trial_id, batch), "state": "COMPLETED"}

    def add_log(self, trial_id: int, line: str) -> None:
        with self.lock:
            self.logs[trial_id].append(line)

    def searcher(self, trial_id: int) -> tuple[str | None, bool]:
        searcher = self.experiments[self.trials[trial_id]["experiment"]]["config"].get("searcher") or {}
        return searcher.get("metric"), searcher.get("smaller_is_better", True) is not False

    def collect_garbage(self, exp_id: int) -> list[str]:
        """The checkpoint GC of an ended experiment: the uuids it marked DELETED."""
        with self.lock:
            storage = self.experiments[exp_id]["config"].get("checkpoint_storage") or {}
            policy = {k: storage.get(k) if storage.get(k) is not None else MASTER_STORAGE[k]
                      for k in ("save_experiment_best", "save_trial_best", "save_trial_latest")}
            mine = [c for c in self.checkpoints.values() if self.trials[c["trial"]]["experiment"] == exp_id]
            registered = {v["checkpoint"] for m in self.models.values() for v in m["versions"]}
            sources = {(e["config"].get("searcher") or {}).get("source_checkpoint_uuid") for e in self.experiments.values()}

            def score(c):
                metric, smaller = self.searcher(c["trial"])
                value = self.validation_at(c["trial"], c["batch"]).get(metric)
                return None if value is None else (value if smaller else -value)

            def rank(group, key):
                ordered = sorted(group, key=key)
                return {c["uuid"]: ordered.index(c) + 1 for c in group}

            by_metric = lambda c: (score(c) is None, score(c) or 0.0, c["batch"])  # noqa: E731  nulls last, then the earlier validation
            exp_rank = rank(mine, by_metric)
            deleted = []
            for trial_id in {c["trial"] for c in mine}:
                group = [c for c in mine if c["trial"] == trial_id]
                trial_rank, latest = rank(group, by_metric), rank(group, lambda c: -c["batch"])
                for c in group:
                    not_best = (exp_rank[c["uuid"]] > policy["save_experiment_best"] and trial_rank[c["uuid"]] > policy["save_trial_best"])
                    if ((not_best or score(c) is None) and latest[c["uuid"]] > policy["save_trial_latest"]
                            and c["uuid"] not in registered and c["uuid"] not in sources and c["state"] == "COMPLETED"):
                        c["state"] = "DELETED"
                        deleted.append(c["uuid"])
            return deleted

    # --- models ---------------------------------------------------------------------------------------

    def add_model(self, name: str, description: str = "", created: float | None = None) -> dict:
        with self.lock:
            now = created or time.time()
            self.models[name] = {"id": next(self.model_ids), "name": name, "description": description, "created": now,
                                 "updated": now, "metadata": {}, "labels": [], "versions": []}
            return self.models[name]

    def find_model(self, identifier: str) -> dict:
        """ModelFromIdentifier: an identifier of digits only is a model id, anything else a name."""
        if identifier.isdigit() and identifier.isascii():
            found = next((m for m in self.models.values() if m["id"] == int(identifier)), None)
        else:
            found = self.models.get(identifier)
        if found is None:
            raise MasterError("NotFound", f'model "{identifier}" not found')
        return found

    def add_version(self, model: str, checkpoint: str) -> dict:
        m = self.models[model]
        version = {"version": len(m["versions"]) + 1, "checkpoint": checkpoint, "created": time.time(), "notes": "",
                   "name": "", "labels": [], "metadata": {}}
        m["versions"].append(version)
        return version

    def add_checkpoint_files(self, folder: Path, model: str) -> int:
        """Register the Determined checkpoint in `folder` (named by its uuid) as a new version of `model` (created
        if missing), trained by experiment 1; the number of that version. Its storage stays the experiment's
        `shared_fs` path, which no client can read, so the SDK fetches it through the master, as a pod does."""
        import json

        folder = Path(folder)
        metadata = json.loads((folder / "metadata.json").read_text()) if (folder / "metadata.json").is_file() else {}
        with self.lock:
            self.checkpoints[folder.name] = {"uuid": folder.name, "trial": 1, "batch": int(metadata.get("steps_completed", 0)),
                                             "time": time.time(), "metrics": {}, "state": "COMPLETED"}
            self.files[folder.name] = folder
            if model not in self.models:
                self.add_model(model)
            return self.add_version(model, folder.name)["version"]

    def checkpoint_archive(self, ckpt: str) -> bytes:
        """The checkpoint's files as the master streams them for `Accept: application/gzip`: a gzipped tar whose
        entries are relative to the checkpoint folder."""
        if ckpt not in self.checkpoints:
            raise MasterError(404, f"checkpoint not found: {ckpt}")
        folder = self.files.get(ckpt)
        if folder is None:
            raise MasterError(404, f"checkpoint files not found in storage: {ckpt}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
        self.downloads.append(ckpt)
        return buf.getvalue()
