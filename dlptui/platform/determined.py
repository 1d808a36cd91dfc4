"""The training part of the cluster profile: a Determined master through the determined 0.38 SDK.

The master comes from DET_MASTER (the config's `det_master`); the user from DET_USER (default
`determined`); the secret from DET_TOKEN, else DET_PASS, else the token that `det user login`
cached, else Determined's default empty password. Actions go through the SDK's client
objects; listings read the SDK's generated bindings, which keep the times and counts the
client objects drop. Every request has a connect timeout (`timeout_s`), so a dead master
is one Unreachable sentence in seconds. `determined` is imported only on first use.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlptui.platform.errors import Conflict, InvalidInput, NotFound, PlatformError, Unreachable
from dlptui.platform.model import Checkpoint, DataRef, Experiment, ExperimentState, MetricPoint, Service

if TYPE_CHECKING:
    from dlptui.config import Config

READ_TIMEOUT_S = 60.0
STATES = {  # Determined's experiment and trial states, without their "STATE_" prefix
    "UNSPECIFIED": ExperimentState.QUEUED,
    "QUEUED": ExperimentState.QUEUED,
    "PULLING": ExperimentState.QUEUED,
    "STARTING": ExperimentState.QUEUED,
    "ACTIVE": ExperimentState.RUNNING,
    "RUNNING": ExperimentState.RUNNING,
    "STOPPING_COMPLETED": ExperimentState.RUNNING,
    "PAUSED": ExperimentState.PAUSED,
    "COMPLETED": ExperimentState.COMPLETED,
    "STOPPING_ERROR": ExperimentState.ERROR,
    "ERROR": ExperimentState.ERROR,
    "DELETE_FAILED": ExperimentState.ERROR,
    "STOPPING_CANCELED": ExperimentState.KILLED,
    "STOPPING_KILLED": ExperimentState.KILLED,
    "CANCELED": ExperimentState.KILLED,
    "DELETING": ExperimentState.KILLED,
    "DELETED": ExperimentState.KILLED,
}


def state_of(determined_state: Any) -> ExperimentState:
    return STATES.get(str(determined_state.value).removeprefix("STATE_"), ExperimentState.QUEUED)


def seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    from determined.common import util

    return util.parse_protobuf_timestamp(stamp).timestamp()


def numbers(metrics: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def experiment_number(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise NotFound(f"There is no experiment {experiment_id!r}; experiment ids are numbers.") from None


class Master:
    """One logged-in SDK session with a Determined master, and the translation of its errors."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.url = config.cluster.det_master or ""
        self.user = config.cluster.det_user or os.environ.get("DET_USER") or "determined"
        self._session: Any = None
        self._lock = threading.Lock()

    def _canonical(self) -> str:
        if not self.url:
            raise Unreachable("No Determined master is set; set DET_MASTER (http://host:8080) or det_master in the cluster profile.")
        from determined.common import api

        return api.canonicalize_master_url(self.url)

    def unreachable(self) -> Unreachable:
        return Unreachable(f"The Determined master at {self.url} does not answer; check DET_MASTER and that the master is up, then retry.")

    def probe(self) -> str:
        """The master's version, asked without logging in and within `timeout_s`."""
        from determined.common import api
        from determined.common.api import bindings, certs

        master = self._canonical()
        cert = certs.default_load(master)
        try:
            r = api.UnauthSession(master, cert, max_retries=0).get("api/v1/master", timeout=self.config.timeout_s)
            return bindings.v1GetMasterResponse.from_json(r.json()).version
        except Exception as e:
            error = self.translate(e, "master info")
            if isinstance(error, Unreachable):
                raise error from None
            raise Unreachable(f"{self.url} does not answer as a Determined master; check DET_MASTER.") from None

    def _login(self) -> Any:
        import urllib3
        from determined.common import api
        from determined.common.api import authentication, certs

        master = self._canonical()
        cert = certs.default_load(master)
        token = os.environ.get("DET_TOKEN")
        if not token and os.environ.get("DET_PASS") is None:
            token = authentication.TokenStore(master).get_token(self.user)  # from `det user login`
        if not token:
            self.probe()  # login itself has no timeout: first make sure the master answers
            with self.errors(f"user {self.user!r}"):
                token = authentication.login(master, self.user, os.environ.get("DET_PASS") or "", cert).token
        retry = urllib3.util.retry.Retry(total=2, connect=0, backoff_factor=0.2, status_forcelist=[502, 503, 504])
        return _bounded_session(master, self.user, token, cert, retry, self.config.timeout_s)

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._login()
            return self._session

    def client(self) -> Any:
        from determined.experimental import client

        return client.Determined._from_session(self.session())

    def translate(self, e: BaseException, what: str) -> PlatformError:
        import requests
        from determined.common.api import errors

        if isinstance(e, PlatformError):
            return e
        if isinstance(e, (errors.MasterNotFoundException, requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return self.unreachable()
        if isinstance(e, errors.NotFoundException):
            return NotFound(f"There is no {what} on the Determined master at {self.url}.")
        if isinstance(e, (errors.UnauthenticatedException, errors.ForbiddenException)):
            self._session = None  # a stale token: log in again next time
            return PlatformError(
                f"The Determined master at {self.url} refused user {self.user!r}; set DET_USER and DET_PASS (or DET_TOKEN)."
            )
        message = str(getattr(e, "message", "") or e).strip().rstrip(".") or type(e).__name__
        if "timed out" in message.lower():
            return self.unreachable()
        if getattr(e, "status_code", None) == 409:
            return Conflict(f"The {what} already exists on the Determined master; choose another name.")
        if getattr(e, "status_code", None) == 400:
            return Conflict(f"The Determined master refused that for {what}: {message}.")
        return PlatformError(f"The Determined master at {self.url} failed on {what}: {message}.")

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as e:
            raise self.translate(e, what) from None

    def health(self, part: str) -> Service:
        try:
            version = self.probe()
            self.session()
            return Service(part, "Determined master", True, detail=f"{self.url} as {self.user}", version=version, endpoint=self.url)
        except PlatformError as e:
            return Service(part, "Determined master", False, detail=str(e), endpoint=self.url or None)


def _bounded_session(master: str, user: str, token: str, cert: Any, retry: Any, connect_s: float) -> Any:
    """The SDK's Session, with a (connect, read) timeout on every request: the SDK sets none."""
    from determined.common import api

    class BoundedSession(api.Session):
        def _do_request(self, method, path, params, json, data, headers, timeout, stream):  # noqa: ANN001
            timeout = timeout or (connect_s, READ_TIMEOUT_S)
            return super()._do_request(method, path, params, json, data, headers, timeout, stream)

    return BoundedSession(master, user, token, cert, max_retries=retry)


def checkpoint_location(config: dict, uuid: str) -> str:
    """Where the experiment's checkpoint storage keeps the checkpoint."""
    storage = (config or {}).get("checkpoint_storage") or {}
    prefix = "/".join(p for p in (storage.get("prefix") or "").split("/") if p)
    kind = storage.get("type")
    if kind in ("s3", "gcs", "azure"):
        scheme = {"s3": "s3", "gcs": "gs", "azure": "azure"}[kind]
        bucket = storage.get("bucket") or storage.get("container") or ""
        return f"{scheme}://{bucket}/" + "/".join(p for p in (prefix, uuid) if p)
    if kind == "shared_fs":
        return str(Path(storage.get("host_path") or "/") / (storage.get("storage_path") or "") / uuid)
    return f"determined://checkpoints/{uuid}"


def to_checkpoint(ckpt: Any) -> Checkpoint:
    """A model.Checkpoint from a bindings v1Checkpoint."""
    training = ckpt.training
    return Checkpoint(
        uuid=ckpt.uuid,
        experiment_id=str(training.experimentId or ""),
        trial_id=str(training.trialId or ""),
        batch=int((ckpt.metadata or {}).get("steps_completed") or 0),
        created=seconds(ckpt.reportTime) or 0.0,
        location=checkpoint_location(training.experimentConfig or {}, ckpt.uuid),
        metrics=numbers(training.validationMetrics.avgMetrics if training.validationMetrics else {}),
    )


def experiment_checkpoints(session: Any, experiment_id: int) -> list[Checkpoint]:
    """Every completed checkpoint of the experiment, oldest batch first."""
    from determined.common import api
    from determined.common.api import bindings

    def page(offset: int):
        return bindings.get_GetExperimentCheckpoints(session, id=experiment_id, offset=offset)

    found = [c for r in api.read_paginated(page) for c in r.checkpoints]
    done = [to_checkpoint(c) for c in found if c.state == bindings.checkpointv1State.COMPLETED]
    return sorted(done, key=lambda c: (c.batch, c.created))


def max_batches(config: dict) -> int:
    length = ((config or {}).get("searcher") or {}).get("max_length")
    if isinstance(length, int):
        return length
    return int((length or {}).get("batches") or 0)


class DeterminedTraining:
    """ports.Training on a Determined master."""

    def __init__(self, config: Config, platform: Any = None) -> None:
        self.config = config
        self.master = Master(config)

    def health(self) -> Service:
        return self.master.health("training")

    # --- experiments ------------------------------------------------------------

    def _experiment(self, exp: Any, trials: list | None = None) -> Experiment:
        config = exp.config or {}
        data = config.get("data") or {}
        total = max_batches(config)
        if trials is None:
            done = round((exp.progress or 0.0) * total)
            best = {}
        else:
            done = sum(t.totalBatchesProcessed for t in trials)
            best = numbers(trials[0].bestValidation.metrics.avgMetrics) if trials and trials[0].bestValidation else {}
        state = state_of(exp.state)
        return Experiment(
            id=str(exp.id),
            name=exp.name,
            state=state,
            created=seconds(exp.startTime) or 0.0,
            data_repo=data.get("repo"),
            data_commit=data.get("commit"),
            ended=seconds(exp.endTime),
            batches_done=done,
            max_batches=total,
            best_accuracy=best.get("accuracy"),
            best_validation_loss=best.get("validation_loss"),
            config=config,
            error=f"Experiment {exp.id} failed on the master; read its logs." if state is ExperimentState.ERROR else None,
        )

    def _trials(self, session: Any, number: int) -> list:
        from determined.common import api
        from determined.common.api import bindings

        def page(offset: int):
            return bindings.get_GetExperimentTrials(session, experimentId=number, offset=offset)

        return sorted((t for r in api.read_paginated(page) for t in r.trials), key=lambda t: t.id)

    def list_experiments(self) -> list[Experiment]:
        from determined.common import api
        from determined.common.api import bindings

        with self.master.errors("the experiment list"):
            session = self.master.session()
            pages = api.read_paginated(lambda offset: bindings.get_GetExperiments(session, offset=offset))
            found = [self._experiment(e) for r in pages for e in r.experiments]
        return sorted(found, key=lambda e: int(e.id), reverse=True)

    def get_experiment(self, experiment_id: str) -> Experiment:
        from determined.common.api import bindings

        number = experiment_number(experiment_id)
        with self.master.errors(f"experiment {experiment_id}"):
            session = self.master.session()
            exp = bindings.get_GetExperiment(session, experimentId=number).experiment
            return self._experiment(exp, self._trials(session, number))

    def create_experiment(self, config: Path, data: DataRef | None = None, name: str | None = None) -> Experiment:
        import yaml

        config = Path(config)
        try:
            conf = yaml.safe_load(config.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise InvalidInput(f"The experiment config {config} cannot be read ({type(e).__name__}); check the path.") from None
        if not isinstance(conf, dict):
            raise InvalidInput(f"The experiment config {config} is not a YAML mapping.")
        if data is not None:
            conf["data"] = {**(conf.get("data") or {}), "store": "pachyderm", "repo": data.repo, "commit": data.commit}
            if data.branch:
                conf["data"]["branch"] = data.branch
        if name:
            conf["name"] = name
        with self.master.errors("the new experiment"):
            created = self.master.client().create_experiment(config=conf, model_dir=config.parent)
        return self.get_experiment(str(created.id))

    def _act(self, experiment_id: str, verb: str, allowed: set[ExperimentState]) -> Experiment:
        current = self.get_experiment(experiment_id)
        if current.state not in allowed:
            done = {"pause": "paused", "resume": "resumed", "kill": "killed"}[verb]
            raise Conflict(f"Experiment {experiment_id} is {current.state.value}; it cannot be {done} now.")
        with self.master.errors(f"experiment {experiment_id}"):
            experiment = self.master.client().get_experiment(int(current.id))
            {"pause": experiment.pause, "resume": experiment.activate, "kill": experiment.kill}[verb]()
        return self.get_experiment(experiment_id)

    def pause(self, experiment_id: str) -> Experiment:
        return self._act(experiment_id, "pause", {ExperimentState.QUEUED, ExperimentState.RUNNING})

    def resume(self, experiment_id: str) -> Experiment:
        return self._act(experiment_id, "resume", {ExperimentState.PAUSED})

    def kill(self, experiment_id: str) -> Experiment:
        return self._act(experiment_id, "kill", {ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.PAUSED})

    # --- what a trial reports ------------------------------------------------------

    def _sdk_trials(self, experiment_id: str) -> list:
        number = experiment_number(experiment_id)
        with self.master.errors(f"experiment {experiment_id}"):
            return sorted(self.master.client().get_experiment(number).list_trials(), key=lambda t: t.id)

    def metrics(self, experiment_id: str, cursor: int = 0) -> tuple[list[MetricPoint], int]:
        """The cursor counts the metric reports (all trials, both groups, in the order reported) already seen."""
        reports = []
        trials = self._sdk_trials(experiment_id)
        with self.master.errors(f"the metrics of experiment {experiment_id}"):
            for trial in trials:
                for group in ("training", "validation"):
                    reports += [(r.end_time.timestamp(), group, r.steps_completed, r.metrics) for r in trial.iter_metrics(group)]
        reports.sort(key=lambda r: (r[0], r[2], r[1]))
        points = [
            MetricPoint(batch=batch, group=group, name=name, value=value, time=when)
            for when, group, batch, values in reports[cursor:]
            for name, value in numbers(values).items()
        ]
        return points, max(cursor, len(reports))

    def logs(self, experiment_id: str, cursor: int = 0) -> tuple[list[str], int]:
        """The log lines of the experiment's first trial; the cursor counts the lines already seen."""
        trials = self._sdk_trials(experiment_id)
        if not trials:
            return [], cursor
        with self.master.errors(f"the logs of experiment {experiment_id}"):
            lines = [line.rstrip("\n") for line in trials[0].iter_logs()]
        return lines[cursor:], max(cursor, len(lines))

    def checkpoints(self, experiment_id: str) -> list[Checkpoint]:
        number = experiment_number(experiment_id)
        with self.master.errors(f"experiment {experiment_id}"):
            return experiment_checkpoints(self.master.session(), number)

    def checkpoint(self, uuid: str) -> Checkpoint:
        from determined.common.api import bindings

        with self.master.errors(f"checkpoint {uuid!r}"):
            return to_checkpoint(bindings.get_GetCheckpoint(self.master.session(), checkpointUuid=uuid).checkpoint)


# The registry lives in its own module; the platform finds it here, by the name IMPLEMENTATIONS gives.
from dlptui.platform.determined_registry import DeterminedRegistry  # noqa: E402

__all__ = ["DeterminedRegistry", "DeterminedTraining", "Master"]
