"""The in-memory state of the Determined master stand-in (tests only), as the SDK's binding objects.

An experiment's first trial has the experiment's id; a search (any searcher but single) has
`max_trials` trials (a grid: one per point), the others numbered from 10000, each with its own
hyperparameters, state and batches. State changes take time, as on the real master: a new
experiment's trials are QUEUED, then RUNNING; a kill passes through STOPPING_CANCELED, a finished
search through STOPPING_COMPLETED (`SETTLE_S`). The fixed state: user `determined`, one
completed experiment (id 1, `dogcat-resnet`, 100 batches, training and validation metrics,
log lines, two checkpoints) and one model `dogcat-model` whose version 1 is the first checkpoint.
Tests play a running trial with `report_metrics` and `add_log`, and serve a real checkpoint folder
with `add_checkpoint_files` (the master then streams it at `GET /checkpoints/<uuid>`).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import tarfile
import threading
import time
from pathlib import Path

import yaml
from determined.common.api import bindings as b

from tests.standins import DATA_COMMIT, DATA_REPO

USER, PASSWORD = "determined", "Standin-Pass-1"
TOKEN = "standin-static-token"  # also accepted, for DET_TOKEN
CHECKPOINTS = ("3f2a9c1e-5a55-4c21-9d0e-4b7f00000050", "b84d07e5-61c2-4f0a-8e3d-9c2a00000100")
TERMINAL = {"COMPLETED", "CANCELED", "ERROR", "DELETED"}
SETTLE_S = 0.3  # how long a state change takes
PAGE = 100  # the most items the master puts in one page


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


class MasterError(Exception):
    """A failure the master reports with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class MasterState:
    """Experiments, trials, metrics, logs, checkpoints and models, keyed as the master keys them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to the fixed state (tokens already handed out stay valid)."""
        with self.lock:
            self._clear()
            self._seed()

    def _clear(self) -> None:
        self.tokens = getattr(self, "tokens", set()) | {TOKEN}
        self.ids = itertools.count(2)
        self.trial_ids = itertools.count(10000)
        self.experiments: dict[int, dict] = {}
        self.pending: list[tuple[float, str, int, str]] = []  # (when, "experiment"|"trial", id, state)
        self.trials: dict[int, dict] = {}
        self.reports: list[dict] = []  # v1MetricsReport fields, in the order they were reported
        self.logs: dict[int, list[str]] = {}
        self.checkpoints: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.uploads: dict[int, list[str]] = {}  # experiment id -> paths of its model definition
        self.files: dict[str, Path] = {}  # checkpoint uuid -> the folder holding its files (the storage)
        self.downloads: list[str] = []  # uuids of the checkpoints fetched through the master, in order
        self.hook = None  # (method, path, 'before' | 'after') -> None: a test's interleaving of requests
        self.held = False  # True: no state change settles (`holding`), however long a test takes to look

    def _seed(self) -> None:
        t0 = time.time() - 3600
        config = {
            "name": "dogcat-resnet",
            "entrypoint": "model_def:DogCatTrial",
            "searcher": {"name": "single", "metric": "validation_loss", "smaller_is_better": True, "max_length": {"batches": 100}},
            "hyperparameters": {"learning_rate": 0.001, "global_batch_size": 16},
            "checkpoint_storage": {"type": "shared_fs", "host_path": "/mnt/checkpoints", "storage_path": "determined-checkpoint"},
            "data": {"store": "pachyderm", "repo": DATA_REPO, "commit": DATA_COMMIT, "branch": "master"},
        }
        self.add_experiment(1, config, "COMPLETED", t0, ended=t0 + 600)
        for batch, loss in ((25, 0.69), (50, 0.52), (75, 0.41), (100, 0.33)):
            self.report_metrics(1, "training", batch, {"loss": loss}, t0 + batch)
        for batch, vloss, acc in ((50, 0.48, 0.78), (100, 0.36, 0.86)):
            self.report_metrics(1, "validation", batch, {"validation_loss": vloss, "accuracy": acc}, t0 + batch + 1)
        self.trials[1]["batches"] = 100
        for line in ["starting trial 1", "loading data dogs-and-cats", "training", "validating", "done"]:
            self.add_log(1, f"[rank=0] {line}")
        for ckpt, batch, (vloss, acc) in zip(CHECKPOINTS, (50, 100), ((0.48, 0.78), (0.36, 0.86))):
            self.checkpoints[ckpt] = {"uuid": ckpt, "trial": 1, "batch": batch, "time": t0 + batch + 2,
                                      "metrics": {"validation_loss": vloss, "accuracy": acc}}
        self.models["dogcat-model"] = {"id": 1, "name": "dogcat-model", "description": "Dogs vs cats", "created": t0,
                                       "updated": t0, "metadata": {}, "labels": [], "versions": []}
        self.add_version("dogcat-model", CHECKPOINTS[0])

    # --- what tests (and creation) add ------------------------------------------------

    def add_experiment(self, exp_id: int, config: dict, state: str, start: float, ended: float | None = None,
                       trials: int = 1) -> list[int]:
        """The experiment with `trials` trials (the first numbered as the experiment); their ids."""
        with self.lock:
            self.experiments[exp_id] = {"id": exp_id, "config": config, "state": state, "start": start, "end": ended}
            ids = [exp_id] + [next(self.trial_ids) for _ in range(trials - 1)]
            hp = config.get("hyperparameters") or {}
            for n, trial_id in enumerate(ids):
                self.trials[trial_id] = {"id": trial_id, "experiment": exp_id, "state": state, "batches": 0, "start": start,
                                         "hparams": sample(hp, n)}
                self.logs[trial_id] = []
            return ids

    def later(self, kind: str, key: int, state: str, after: float = SETTLE_S) -> None:
        self.pending.append((time.time() + after, kind, key, state))

    @contextlib.contextmanager
    def holding(self):
        """No state change settles inside: a test looks at a passing state (trials QUEUED) for as long as a
        loaded machine takes, not only for SETTLE_S. What came due meanwhile settles at the next request after."""
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
            due = [p for p in self.pending if p[0] <= now]
            self.pending = [p for p in self.pending if p[0] > now]
            for _, kind, key, state in sorted(due):
                target = self.experiments[key] if kind == "experiment" else self.trials[key]
                target["state"] = state
                if kind == "experiment" and state in TERMINAL:
                    target["end"] = now

    def experiment_trials(self, exp_id: int) -> list[int]:
        return sorted(t for t, v in self.trials.items() if v["experiment"] == exp_id)

    def report_metrics(self, trial_id: int, group: str, batch: int, metrics: dict, when: float | None = None) -> None:
        with self.lock:
            key = "validation_metrics" if group == "validation" else "avg_metrics"
            self.reports.append({"id": len(self.reports) + 1, "trialId": trial_id, "group": group, "totalBatches": batch,
                                 "endTime": when or time.time(), "metrics": {key: metrics}})
            self.trials[trial_id]["batches"] = max(self.trials[trial_id]["batches"], batch)

    def add_log(self, trial_id: int, line: str) -> None:
        with self.lock:
            self.logs[trial_id].append(line)

    def add_version(self, model: str, checkpoint: str) -> dict:
        m = self.models[model]
        version = {"version": len(m["versions"]) + 1, "checkpoint": checkpoint, "created": time.time(), "notes": "",
                   "name": "", "labels": [], "metadata": {}}
        m["versions"].append(version)
        return version

    def add_checkpoint_files(self, folder: Path, model: str) -> int:
        """Register the Determined checkpoint in `folder` (named by its uuid) as a new version of
        `model` (created if missing), trained by experiment 1; the number of that version.

        Its storage stays the experiment's `shared_fs` path, which no client can read, so the SDK
        falls back to fetching it through the master, as a serving pod does."""
        import json

        folder = Path(folder)
        metadata = json.loads((folder / "metadata.json").read_text()) if (folder / "metadata.json").is_file() else {}
        with self.lock:
            self.checkpoints[folder.name] = {"uuid": folder.name, "trial": 1, "batch": int(metadata.get("steps_completed", 0)),
                                             "time": time.time(), "metrics": {}}
            self.files[folder.name] = folder
            if model not in self.models:
                self.models[model] = {"id": len(self.models) + 1, "name": model, "description": "", "created": time.time(),
                                      "updated": time.time(), "metadata": {}, "labels": [], "versions": []}
            return self.add_version(model, folder.name)["version"]

    def checkpoint_archive(self, ckpt: str) -> bytes:  # noqa: D401
        """The checkpoint's files as the master streams them for `Accept: application/gzip`: a gzipped
        tar whose entries are relative to the checkpoint folder."""
        self.checkpoint(ckpt)
        folder = self.files.get(ckpt)
        if folder is None:
            raise MasterError(404, f"checkpoint files not found in storage: {ckpt}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
        self.downloads.append(ckpt)
        return buf.getvalue()

    # --- binding objects -------------------------------------------------------------

    def experiment(self, exp_id: int) -> b.v1Experiment:
        self.settle()
        e = self.experiments.get(exp_id)
        if e is None:
            raise MasterError(404, f"experiment not found: {exp_id}")
        c = e["config"]
        searcher = c.get("searcher", {})
        max_len = (c.get("hyperparameters") or {}).get("max_batches") or searcher.get("max_time") or (searcher.get("max_length") or {}).get("batches", 0)
        trial_ids = self.experiment_trials(exp_id)
        metric = searcher.get("metric")
        smaller = searcher.get("smaller_is_better", True)
        bests = [(t, self._best_validation(t)) for t in trial_ids]
        bests = [(t, r) for t, r in bests if r]
        pick = min if smaller else max
        best_trial, best = pick(bests, key=lambda tr: tr[1]["metrics"]["validation_metrics"][metric]) if bests else (None, None)
        done = sum(self.trials[t]["batches"] for t in trial_ids)
        return b.v1Experiment(
            archived=False, config=c, id=exp_id, jobId=f"job-{exp_id}", name=c.get("name", f"experiment {exp_id}"),
            numTrials=len(trial_ids), originalConfig=yaml.safe_dump(c), projectId=1, projectOwnerId=1,
            searcherType=searcher.get("name", "single"),
            startTime=stamp(e["start"]), endTime=stamp(e["end"]) if e["end"] else None,
            state=b.experimentv1State(f"STATE_{e['state']}"), username=USER, trialIds=trial_ids,
            progress=min(1.0, done / (max_len * len(trial_ids))) if max_len else None,
            bestTrialId=best_trial,
            bestTrialSearcherMetric=best["metrics"]["validation_metrics"][metric] if best else None,
        )

    def _best_validation(self, trial_id: int) -> dict | None:
        """The trial's validation report with the best searcher metric, as the master ranks them."""
        searcher = self.experiments[self.trials[trial_id]["experiment"]]["config"].get("searcher", {})
        metric, smaller = searcher.get("metric"), searcher.get("smaller_is_better", True)
        scored = [r for r in self.reports if r["trialId"] == trial_id and metric in r["metrics"].get("validation_metrics", {})]
        pick = min if smaller else max
        return pick(scored, key=lambda r: r["metrics"]["validation_metrics"][metric], default=None)

    def trial(self, trial_id: int) -> b.trialv1Trial:
        self.settle()
        t = self.trials.get(trial_id)
        if t is None:
            raise MasterError(404, f"trial not found: {trial_id}")
        best = self._best_validation(trial_id)
        state = {"ACTIVE": "RUNNING"}.get(t["state"], t["state"])
        top = self._best_checkpoint(trial_id)
        return b.trialv1Trial(
            experimentId=t["experiment"], hparams=t["hparams"], id=trial_id, restarts=0,
            startTime=stamp(t["start"]), state=b.trialv1State(f"STATE_{state}"), totalBatchesProcessed=t["batches"],
            bestCheckpoint=b.v1CheckpointWorkload(state=b.checkpointv1State.COMPLETED, totalBatches=top["batch"], uuid=top["uuid"])
            if top else None,
            bestValidation=b.v1MetricsWorkload(
                metrics=b.v1Metrics(avgMetrics=best["metrics"]["validation_metrics"]), numInputs=0,
                totalBatches=best["totalBatches"], endTime=stamp(best["endTime"])) if best else None,
        )

    def _best_checkpoint(self, trial_id: int) -> dict | None:
        """The trial's checkpoint with the best searcher metric, ties to the latest (as the master keeps it)."""
        searcher = self.experiments[self.trials[trial_id]["experiment"]]["config"].get("searcher", {})
        metric, smaller = searcher.get("metric"), searcher.get("smaller_is_better", True)
        mine = [c for c in self.checkpoints.values() if c["trial"] == trial_id and metric in c["metrics"]]
        sign = 1 if smaller else -1
        return min(mine, key=lambda c: (sign * c["metrics"][metric], -c["batch"]), default=None)

    def checkpoint(self, ckpt: str) -> b.v1Checkpoint:
        c = self.checkpoints.get(ckpt)
        if c is None:
            raise MasterError(404, f"checkpoint not found: {ckpt}")
        exp = self.experiments[self.trials[c["trial"]]["experiment"]]
        training = b.v1CheckpointTrainingMetadata(
            experimentConfig=exp["config"], experimentId=exp["id"], trialId=c["trial"],
            hparams=exp["config"].get("hyperparameters", {}), validationMetrics=b.v1Metrics(avgMetrics=c["metrics"]),
            searcherMetric=c["metrics"].get("validation_loss"),
        )
        return b.v1Checkpoint(
            metadata={"steps_completed": c["batch"], "framework": "torch"}, resources=self._resources(ckpt),
            state=b.checkpointv1State.COMPLETED, training=training, uuid=ckpt, reportTime=stamp(c["time"]),
            taskId=f"task-{c['trial']}",
        )

    def _resources(self, ckpt: str) -> dict:
        folder = self.files.get(ckpt)
        if folder is None:
            return {"state_dict.pth": 1024}
        return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}

    def model(self, name: str) -> b.v1Model:
        m = self.models.get(name) or next((m for m in self.models.values() if str(m["id"]) == name), None)
        if m is None:
            raise MasterError(404, f"model not found: {name}")
        return b.v1Model(
            archived=False, creationTime=stamp(m["created"]), id=m["id"], lastUpdatedTime=stamp(m["updated"]),
            metadata=m["metadata"], name=m["name"], numVersions=len(m["versions"]), userId=1, username=USER,
            workspaceId=1, description=m["description"], labels=m["labels"],
        )

    def version(self, model: str, number: int) -> b.v1ModelVersion:
        m = self.model(model)
        v = next((v for v in self.models[m.name]["versions"] if v["version"] == number), None)
        if v is None:
            raise MasterError(404, f"model version not found: {model} {number}")
        return b.v1ModelVersion(
            checkpoint=self.checkpoint(v["checkpoint"]), creationTime=stamp(v["created"]), id=m.id * 1000 + number,
            lastUpdatedTime=stamp(v["created"]), model=m, version=number, notes=v["notes"], name=v["name"],
            labels=v["labels"], metadata=v["metadata"], username=USER,
        )


def sample(hyperparameters: dict, n: int) -> dict:
    """The n-th trial's hyperparameters, as a master's searcher would hand them out (deterministic here):
    a constant as it is, a range stepped through from its lower end, a categorical value in turn."""
    out = {}
    for name, spec in hyperparameters.items():
        if not isinstance(spec, dict) or "type" not in spec:
            out[name] = spec
        elif spec["type"] == "const":
            out[name] = spec.get("val")
        elif spec["type"] == "categorical":
            out[name] = spec["vals"][n % len(spec["vals"])]
        else:
            low, high = spec["minval"], spec["maxval"]
            value = low + (high - low) * ((n * 0.37) % 1.0)
            if spec["type"] == "int":
                out[name] = int(round(value))
            elif spec["type"] == "log":
                out[name] = float(spec.get("base", 10)) ** value
            else:
                out[name] = value
    return out


def trial_count(config: dict) -> int:
    """How many trials the master's searcher makes of a config."""
    searcher = config.get("searcher") or {}
    name = searcher.get("name", "single")
    if name == "single":
        return 1
    if name == "grid":
        count = 1
        for spec in (config.get("hyperparameters") or {}).values():
            if isinstance(spec, dict) and spec.get("type") == "categorical":
                count *= len(spec["vals"])
            elif isinstance(spec, dict) and spec.get("type") in ("int", "double", "log"):
                count *= int(spec.get("count", 1))
        return count
    return int(searcher.get("max_trials", 1))
