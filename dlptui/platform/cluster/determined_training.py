"""The training part of the cluster profile: experiments on a Determined master, through the determined 0.38 SDK.

Actions (create, pause, activate, kill, trial metrics and logs) go through the SDK's client
objects; listings read the SDK's generated bindings, which keep the times and counts the client
objects drop. The connection, its timeouts and its error sentences are in determined_master.py;
the registry part is in determined_registry.py and is found here by the name the platform uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlptui.platform.cluster.determined_connection import (
    Master,
    experiment_checkpoints,
    experiment_number,
    numbers,
    seconds,
    to_checkpoint,
)
from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import Checkpoint, DataRef, Experiment, ExperimentState, MetricPoint, Service

if TYPE_CHECKING:
    from dlptui.config import Config

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


def max_batches(config: dict) -> int:
    length = ((config or {}).get("searcher") or {}).get("max_length")
    if isinstance(length, int):
        return length
    return int((length or {}).get("batches") or 0)


class DeterminedTraining:
    """ports.Training on a Determined master."""

    def __init__(self, config: Config, platform: Any = None) -> None:
        self.config = config
        self.platform = platform
        self.master = Master(config)

    def health(self) -> Service:
        return self.master.health("training")

    # --- experiments ------------------------------------------------------------

    def _experiment(self, exp: Any, trials: list | None = None) -> Experiment:
        config = exp.config or {}
        data = config.get("data") or {}
        total = max_batches(config)
        if trials is None:  # a listing carries the progress and the best trial's searcher metric
            done = round((exp.progress or 0.0) * total)
            metric = (config.get("searcher") or {}).get("metric")
            best = numbers({metric: exp.bestTrialSearcherMetric}) if metric else {}
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
        if not config.is_file():
            raise NotFound(f"The config file {config} does not exist; give the path of an experiment YAML file such as trial/const.yaml.")
        try:
            conf = yaml.safe_load(config.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise InvalidInput(f"The experiment config {config} cannot be read ({type(e).__name__}); check the path.") from None
        if not isinstance(conf, dict):
            raise InvalidInput(f"The experiment config {config} is not a YAML mapping.")
        conf["data"] = self._pin_data(conf.get("data") or {}, data)
        if name:
            conf["name"] = name
        with self.master.errors("the new experiment"):
            created = self.master.client().create_experiment(config=conf, model_dir=config.parent)
        return self.get_experiment(str(created.id))

    def _pin_data(self, section: dict, data: DataRef | None) -> dict:
        """The config's data section on `data` (or on the data it names), its commit pinned to a full id.

        The rest of the section (pachd's host and port as the trial sees them) stays as written."""
        if data is not None:
            section = {**section, "store": "pachyderm", "repo": data.repo, "commit": data.commit}
            if data.branch:
                section["branch"] = data.branch
        store = section.get("store")
        if store == "folder" or self.platform is None:
            return section
        if store != "pachyderm" or not section.get("repo"):
            raise InvalidInput(
                f"The config's data store is {store!r}, but the cluster profile trains on Pachyderm; "
                "pass the data (REPO@BRANCH) or set data.store: pachyderm and data.repo."
            )
        ref = self.platform.data.resolve(section["repo"], section.get("commit") or "master")
        return {**section, "commit": ref.commit, "branch": section.get("branch") or ref.branch}

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
from dlptui.platform.cluster.determined_registry import DeterminedRegistry  # noqa: E402

__all__ = ["DeterminedRegistry", "DeterminedTraining", "Master"]
