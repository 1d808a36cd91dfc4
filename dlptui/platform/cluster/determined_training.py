"""The training part of the cluster profile: experiments on a Determined master, through the determined 0.38 SDK.

Actions (create, pause, activate, kill, trial metrics and logs) go through the SDK's client
objects; listings read the SDK's generated bindings, which keep the times and counts the client
objects drop. The connection, its timeouts and its error sentences are in determined_master.py;
the registry part is in determined_registry.py and is found here by the name the platform uses.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlptui.platform import rules
from dlptui.platform.cluster.determined_connection import (
    Master,
    deleted,
    experiment_checkpoints,
    experiment_number,
    numbers,
    seconds,
    to_checkpoint,
)
from dlptui import resources
from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import Checkpoint, DataRef, Experiment, ExperimentState, MetricPoint, Service, Trial

if TYPE_CHECKING:
    from dlptui.config import Config

STATES = {  # Determined's experiment and trial states, without their "STATE_" prefix
    # The master refines ACTIVE by the allocations (api_experiment.go enrichExperimentStateTx): RUNNING once
    # one runs; QUEUED, PULLING (the image) and STARTING (its environment) are all still waiting to run, and
    # an ACTIVE it could not refine has no allocation yet: queued too.
    "UNSPECIFIED": ExperimentState.QUEUED,
    "QUEUED": ExperimentState.QUEUED,
    "PULLING": ExperimentState.QUEUED,
    "STARTING": ExperimentState.QUEUED,
    "ACTIVE": ExperimentState.QUEUED,
    "RUNNING": ExperimentState.RUNNING,
    # A search winding down still runs its last trials; a kill is final from its request on (the master
    # refuses to pause or resume it), though its trials take a moment to stop: `ended` comes then.
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


CONFIG_REFUSALS = ("invalid experiment configuration", "managed experiments require entrypoint",
                   'additionalProperties "slots"', "no checkpoint found with UUID")
CONFIG_PREFIXES = ("invalid experiment configuration: ", "version 0 experiment config is invalid: ",
                   "config is invalid or incomplete: ", "config is invalid: ")
KILL_WAIT_S = 30.0  # how long kill waits for the master to tear the trials down before it answers


def state_of(determined_state: Any) -> ExperimentState:
    return STATES.get(str(determined_state.value).removeprefix("STATE_"), ExperimentState.QUEUED)


def max_batches(config: dict) -> int:
    """One trial's length in batches: the searcher's max_time (ASHA, time_metric batches), else the
    hyperparameter max_batches, else the deprecated searcher.max_length."""
    searcher = (config or {}).get("searcher") or {}
    if searcher.get("name") in ("adaptive_asha", "async_halving") and isinstance(searcher.get("max_time"), int):
        return searcher["max_time"]
    hp = ((config or {}).get("hyperparameters") or {}).get("max_batches")
    if isinstance(hp, dict):
        hp = hp.get("val") if hp.get("type", "const") == "const" else hp.get("maxval")
    if isinstance(hp, int) and not isinstance(hp, bool):
        return hp
    length = searcher.get("max_length")
    if isinstance(length, int):
        return length
    return int((length or {}).get("batches") or 0)


def searched(config: dict) -> set[str]:
    """The names of the hyperparameters the config searches (not constants)."""
    hp = (config or {}).get("hyperparameters") or {}
    return {k for k, v in hp.items() if isinstance(v, dict) and v.get("type") not in (None, "const")}


def trial_folder(config: Path) -> Path:
    """What goes to the master as the experiment's code: the folder of the config when it is a trial
    (it holds model_def.py), else the trial dlptui ships; never any other folder (a config in the
    home folder must not upload the home folder). Its .detignore leaves keys and .env files out."""
    folder = config.resolve().parent
    return folder if (folder / "model_def.py").is_file() else resources.trial_dir()


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
        count = max(1, len(trials) if trials is not None else int(exp.numTrials or 1))
        total = max_batches(config) * count
        searcher = config.get("searcher") or {}
        metric = searcher.get("metric")
        if trials is None:  # a listing carries the progress and the best trial's searcher metric
            done = round((exp.progress or 0.0) * total)
            best = numbers({metric: exp.bestTrialSearcherMetric}) if metric else {}
        else:
            done = sum(t.totalBatchesProcessed for t in trials)
            best = {}
            smaller = searcher.get("smaller_is_better", True)
            for t in trials:  # the best trial by the searcher metric, as the master ranks them
                found = numbers(t.bestValidation.metrics.avgMetrics) if t.bestValidation else {}
                if metric in found and (metric not in best or (found[metric] < best[metric] if smaller else found[metric] > best[metric])):
                    best = found
            if not best and trials and trials[0].bestValidation:
                best = numbers(trials[0].bestValidation.metrics.avgMetrics)
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
            source_checkpoint=(config.get("searcher") or {}).get("source_checkpoint_uuid"),
            data_job=data.get("job"),
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
            # without showTrialData the master leaves out the best trial's searcher metric (api_experiment.go)
            pages = api.read_paginated(lambda offset: bindings.get_GetExperiments(session, offset=offset, showTrialData=True))
            found = [self._experiment(e) for r in pages for e in r.experiments]
        return sorted(found, key=lambda e: int(e.id), reverse=True)

    def get_experiment(self, experiment_id: str) -> Experiment:
        from determined.common.api import bindings

        number = experiment_number(experiment_id)
        with self.master.errors(f"experiment {experiment_id}"):
            session = self.master.session()
            exp = bindings.get_GetExperiment(session, experimentId=number).experiment
            return self._experiment(exp, self._trials(session, number))

    def create_experiment(self, config: Path, data: DataRef | None = None, name: str | None = None,
                          source_checkpoint: str | None = None, job: str | None = None,
                          coalesce: str | None = None) -> Experiment:
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
        if job:
            conf["data"]["job"] = str(job)
        if coalesce:  # recorded; the master's scheduler queues experiments itself (no coalescing here)
            conf["data"]["coalesce"] = str(coalesce)
        if name:
            conf["name"] = name
        if source_checkpoint:  # the master starts every trial from it (warm start)
            self.checkpoint(source_checkpoint)  # NotFound before anything is created
            conf["searcher"] = {**(conf.get("searcher") or {}), "source_checkpoint_uuid": source_checkpoint}
        try:
            # the SDK prints its upload progress to stdout, which would break `dlptui train --json`
            with contextlib.redirect_stdout(io.StringIO()):
                created = self.master.client().create_experiment(config=conf, model_dir=trial_folder(config))
        except Exception as e:
            raise self._refused(e, config) from None
        return self.get_experiment(str(created.id))

    def _refused(self, e: BaseException, config: Path) -> Exception:
        """The master's answer to a config it will not run (CreateExperiment checks it against Determined's
        expconf schemas and answers 500 with what is wrong) as one InvalidInput sentence naming the file."""
        message = str(getattr(e, "message", "") or "")
        if not any(mark in message for mark in CONFIG_REFUSALS):
            return self.master.translate(e, "the new experiment")
        if "no checkpoint found with UUID" in message:
            return NotFound(f"The Determined master has no checkpoint {message.rsplit(' ', 1)[-1]} to start from; "
                            "give a checkpoint uuid that `dlptui experiment describe` lists.")
        for prefix in CONFIG_PREFIXES:
            message = message.replace(prefix, "")
        details = "; ".join(dict.fromkeys(line.strip() for line in message.splitlines() if line.strip())).rstrip(".")
        return InvalidInput(f"The Determined master refused the experiment config {config}: {details}; fix it and start again.")

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
        ref = self.platform.data.resolve(section["repo"], section.get("commit") or rules.DEFAULT_BRANCH)
        return {**section, "commit": ref.commit, "branch": section.get("branch") or ref.branch}

    def _act(self, experiment_id: str, verb: str, allowed: set[ExperimentState]) -> Experiment:
        current = self.get_experiment(experiment_id)
        if current.state not in allowed:
            done = {"pause": "paused", "resume": "resumed", "kill": "killed"}[verb]
            raise Conflict(f"Experiment {experiment_id} is {current.state.value}; it cannot be {done} now.")
        with self.master.errors(f"experiment {experiment_id}"):
            experiment = self.master.client().get_experiment(int(current.id))
            {"pause": experiment.pause, "resume": experiment.activate, "kill": experiment.kill}[verb]()
        if verb == "kill":
            return self._settled(experiment_id)
        return self.get_experiment(experiment_id)

    def _settled(self, experiment_id: str) -> Experiment:
        """The experiment once the master has moved it out of STOPPING_KILLED (its trials are torn down first: the
        end time comes then), or as it is after KILL_WAIT_S."""
        import time

        deadline = time.monotonic() + max(KILL_WAIT_S, float(getattr(self.config, "timeout_s", 5.0) or 5.0))
        while True:
            found = self.get_experiment(experiment_id)
            if found.ended is not None or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def pause(self, experiment_id: str) -> Experiment:
        return self._act(experiment_id, "pause", {ExperimentState.QUEUED, ExperimentState.RUNNING})

    def resume(self, experiment_id: str) -> Experiment:
        return self._act(experiment_id, "resume", {ExperimentState.PAUSED})

    def kill(self, experiment_id: str) -> Experiment:
        return self._act(experiment_id, "kill", {ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.PAUSED})

    # --- trials -------------------------------------------------------------------

    def _trial(self, t: Any, config: dict) -> Trial:
        metric = ((config or {}).get("searcher") or {}).get("metric")
        best = numbers(t.bestValidation.metrics.avgMetrics) if t.bestValidation else {}
        names = searched(config)
        hparams = {k: v for k, v in (t.hparams or {}).items() if k in names} if names else {}
        return Trial(
            id=str(t.id), experiment_id=str(t.experimentId), state=state_of(t.state), batches_done=t.totalBatchesProcessed,
            hparams=hparams, max_batches=max_batches(config), best_metric=best.get(metric) if metric else None,
            best_checkpoint=t.bestCheckpoint.uuid if t.bestCheckpoint else None,
            error=f"Trial {t.id} failed on the master; read its logs." if state_of(t.state) is ExperimentState.ERROR else None,
        )

    def list_trials(self, experiment_id: str) -> list[Trial]:
        """By id; every page of the master's listing (it gives 100 at most per page)."""
        from determined.common.api import bindings

        number = experiment_number(experiment_id)
        with self.master.errors(f"experiment {experiment_id}"):
            session = self.master.session()
            exp = bindings.get_GetExperiment(session, experimentId=number).experiment
            return [self._trial(t, exp.config or {}) for t in self._trials(session, number)]

    def _trial_number(self, trial_id: str) -> int:
        try:
            return int(str(trial_id).strip())
        except ValueError:
            raise NotFound(f"There is no trial {trial_id!r}; trial ids are numbers (see `dlptui trials EXPERIMENT`).") from None

    def get_trial(self, trial_id: str) -> Trial:
        from determined.common.api import bindings

        number = self._trial_number(trial_id)
        with self.master.errors(f"trial {trial_id}"):
            session = self.master.session()
            t = bindings.get_GetTrial(session, trialId=number).trial
            exp = bindings.get_GetExperiment(session, experimentId=t.experimentId).experiment
            return self._trial(t, exp.config or {})

    def trial_metrics(self, trial_id: str, cursor: int = 0) -> tuple[list[MetricPoint], int]:
        """The cursor counts the trial's metric reports already seen."""
        number = self._trial_number(trial_id)
        with self.master.errors(f"the metrics of trial {trial_id}"):
            trial = self.master.client().get_trial(number)
            reports = [(r.end_time.timestamp(), g, r.steps_completed, r.metrics) for g in ("training", "validation")
                       for r in trial.iter_metrics(g)]
        reports.sort(key=lambda r: (r[0], r[2], r[1]))
        points = [MetricPoint(batch, group, name, value, when, str(number))
                  for when, group, batch, values in reports[cursor:] for name, value in numbers(values).items()]
        return points, max(cursor, len(reports))

    def trial_logs(self, trial_id: str, cursor: int = 0) -> tuple[list[str], int]:
        number = self._trial_number(trial_id)
        with self.master.errors(f"the logs of trial {trial_id}"):
            lines = [line.rstrip("\n") for line in self.master.client().get_trial(number).iter_logs()]
        return lines[cursor:], max(cursor, len(lines))

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
                    reports += [(r.end_time.timestamp(), group, r.steps_completed, r.metrics, trial.id)
                                for r in trial.iter_metrics(group)]
        reports.sort(key=lambda r: (r[0], r[2], r[1], r[4]))
        points = [
            MetricPoint(batch=batch, group=group, name=name, value=value, time=when, trial_id=str(trial_id))
            for when, group, batch, values, trial_id in reports[cursor:]
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
        """NotFound also for a checkpoint the master's garbage collection deleted (it is no longer listed)."""
        from determined.common.api import bindings

        with self.master.errors(f"checkpoint {uuid!r}"):
            found = bindings.get_GetCheckpoint(self.master.session(), checkpointUuid=uuid).checkpoint
        if found.state != bindings.checkpointv1State.COMPLETED:
            raise NotFound(deleted(uuid, found))
        return to_checkpoint(found)


# The registry lives in its own module; the platform finds it here, by the name IMPLEMENTATIONS gives.
from dlptui.platform.cluster.determined_registry import DeterminedRegistry  # noqa: E402

__all__ = ["DeterminedRegistry", "DeterminedTraining", "Master"]
