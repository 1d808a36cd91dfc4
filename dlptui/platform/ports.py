"""The five parts of the platform, as Protocols.

`platform/local/` implements each on one machine; `platform/cluster/` on a cluster
(`pachyderm_data.py`, `determined_training.py`, `determined_registry.py`,
`seldon_serving.py`, `kube_cluster.py`). The console and the CLI see only these methods.
Every method may block (disk, network, a child process): callers on an event loop run
them in a thread. Every method raises `errors.PlatformError` subclasses for failures a
user can cause; anything else is a bug.

What every method promises, on both profiles (tests/contract/ checks it for each, and
docs/contract.md lists the promises and where the profiles still differ):

- An error is one line for a person, ending in a full stop and naming what was asked for
  (the repo, ref, path, experiment, model, version or deployment), without the client
  library's exception chained to it: `NotFound` for a thing that is not there, `Conflict`
  for one that exists already or whose state forbids the change, `InvalidInput` for a bad
  argument.
- A change that fails changes nothing: no commit, experiment, version, alias move or
  deployment is left behind.
- Listings have a fixed order, given on each method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from dlptui.platform.model import (
    Checkpoint,
    Commit,
    Comparison,
    DataRef,
    Deployment,
    DeploymentChange,
    Experiment,
    Datum,
    Feedback,
    FileEntry,
    KeptInputs,
    Job,
    LoggedPrediction,
    MetricPoint,
    Model,
    ModelVersion,
    Node,
    Pipeline,
    Prediction,
    PredictionSummary,
    Promotion,
    Repo,
    Service,
    Trial,
    VersionFigures,
    Workload,
)

# called as progress(done, total) with counts of bytes (puts) or items
Progress = Callable[[int, int], None]


def changes(method):
    """Marks a port method that changes the platform: a read-only Platform refuses it."""
    method.changes_platform = True
    return method


@runtime_checkable
class Part(Protocol):
    def health(self) -> Service:
        """Whether the backend answers, within the profile's `timeout_s` (5 s by default); never raises.

        `part` is the port's name in PORTS. A broken, dead or hung backend is
        `reachable=False` with the reason in `detail` (one sentence)."""
        ...


class DataStore(Part, Protocol):
    """Versioned data in Pachyderm's model: repos, branches, commits, files."""

    def list_repos(self) -> list[Repo]:
        """By name."""
        ...

    def inspect_repo(self, name: str) -> Repo:
        """`size_bytes` is that of the head of `master`; `branches` by name. NotFound for an unknown repo."""
        ...

    @changes
    def create_repo(self, name: str, description: str = "") -> Repo:
        """The new, empty repo (no branch, no commit). A name is letters, digits, '-' and '_', starting with a
        letter or digit, at most 63 characters (InvalidInput otherwise); Conflict if it exists, which is left as it was."""
        ...

    @changes
    def delete_repo(self, name: str) -> None:
        """The repo and all its commits. NotFound for a repo that is not there (pachd itself answers yes to that:
        the adapter asks first, so that a mistyped name is not taken for a deletion); Conflict, naming the pipeline,
        for a repo that a pipeline reads or writes (data_rules.check_repo_unused), stopped or not."""
        ...

    def list_branches(self, repo: str) -> list[str]:
        """By name; [] for a repo without commits."""
        ...

    def list_commits(self, repo: str, branch: str | None = None, limit: int | None = None) -> list[Commit]:
        """Newest first. `branch=None` means every branch; `limit` keeps the newest. NotFound for an unknown branch.
        Only commits that are data (finished without an error, data_rules.py): a failed job's output commit and one
        still being written are left out, and a commit's `parent` is its nearest ancestor that is data."""
        ...

    def inspect_commit(self, repo: str, ref: str) -> Commit:
        """`ref` is a branch name (its data head: the newest commit of its history that is data, data_rules.py) or a
        commit id (a unique prefix of 4 or more hex digits, in either case, is enough; an ambiguous one is
        InvalidInput). NotFound for a ref that names nothing, for a branch of a repo that has no commit yet and for
        a branch with no data (saying why its newest commit is not); Conflict for the id of a commit that is not
        data (it ended with an error, or is still being written). Every method that takes a ref reads it so."""
        ...

    @changes
    def put_files(
        self,
        repo: str,
        branch: str,
        files: Mapping[str, Path | bytes],
        message: str = "",
        progress: Progress | None = None,
        delete: Sequence[str] = (),
    ) -> Commit:
        """One atomic commit on `branch` adding or replacing `files` on top of the branch's head: the
        rest of the tree stays. A branch that is missing is created, and starts empty. `delete`: paths
        (a folder takes everything below it) removed from the head in the same commit, before `files`
        land; one that is not in the head is ignored (an import replaces the previous split in one
        commit, never an empty one in between).

        Keys are destination paths inside the repo ("/train/cat.1.jpg"; the leading '/' may be left
        out); a path with '..', '.', an empty segment or a control character is InvalidInput. Values are
        bytes, a local file, or a local folder, whose files land below the key (`pachctl put file -r`).
        A branch name is letters, digits, '-' and '_' (pachd's rule). Nothing to put is InvalidInput, a
        local file that is not there NotFound; a put that fails commits nothing. Putting the same bytes
        again is a new commit with the same tree. `progress` ends at (total, total).
        """
        ...

    @changes
    def delete_files(self, repo: str, branch: str, paths: list[str], message: str = "") -> Commit:
        """A commit on `branch` without `paths` (a folder takes everything below it); older commits keep them.
        NotFound for a path that is not in the head, InvalidInput for no path at all."""
        ...

    def list_files(self, repo: str, ref: str, path: str = "/", recursive: bool = False) -> list[FileEntry]:
        """The children of the folder `path`, by path: files, and folders as "dir" with the size of all below
        them. A file's path gives that file. `recursive`: every file below `path` (no folders), by path.
        NotFound for a path that is not in the commit."""
        ...

    def get_file(self, repo: str, ref: str, path: str) -> bytes:
        """The bytes put there, as they were put. NotFound for no such file, InvalidInput for a folder."""
        ...

    def iter_file(self, repo: str, ref: str, path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of `get_file` in chunks of at most `chunk_size`, never the whole file in memory (a multi-GB file
        streams). The same errors as `get_file`, raised before the first chunk; a stored copy found corrupt while
        streaming raises after the last one (write to a temporary file and keep it only when the stream ended)."""
        ...

    def resolve(self, repo: str, ref: str) -> DataRef:
        """Pin a branch or commit prefix to the full commit id (what an experiment records): the branch given,
        or the commit's own. Resolving the full id again gives the same DataRef."""
        ...


class Pipelines(Part, Protocol):
    """Transforms in Pachyderm's pipeline spec format, their jobs and datums.

    Every method that takes a pipeline name raises NotFound for a pipeline that is not there, and every
    method that takes a job id NotFound for a job that is not there."""

    @changes
    def create_pipeline(self, spec: Mapping) -> Pipeline:
        """The spec as `pachctl create pipeline -f` reads it (a mapping), parsed into Pachyderm's
        CreatePipelineRequest first: an unknown field or a bad value is InvalidInput naming it, and so is a name
        of more than 51 characters (pachd names its workers after it); an input repo that is not there is NotFound,
        an existing pipeline of that name Conflict, and on pachd a repo of that name too (the local profile follows
        after its runner's rewrite); what pachd's CreatePipeline refuses beyond that is InvalidInput in its words.
        Nothing is created then. Without `transform.image` the image is pachd's default, ubuntu:20.04. The output
        repo (the pipeline's name) is made; a job starts for each input's head."""
        ...

    def list_pipelines(self) -> list[Pipeline]:
        """By name."""
        ...

    def inspect_pipeline(self, name: str) -> Pipeline: ...

    @changes
    def stop_pipeline(self, name: str) -> Pipeline:
        """No new job starts; a running job is killed. Stopping a stopped pipeline is no error."""
        ...

    @changes
    def start_pipeline(self, name: str) -> Pipeline:
        """Jobs start again, for input commits that came meanwhile too."""
        ...

    @changes
    def delete_pipeline(self, name: str) -> None:
        """The pipeline, its jobs and its output repo."""
        ...

    def list_jobs(self, pipeline: str | None = None) -> list[Job]:
        """Newest (last made) first; `pipeline=None` means every pipeline's jobs, in one such order."""
        ...

    def inspect_job(self, job_id: str) -> Job: ...

    def list_datums(self, job_id: str) -> list[Datum]:
        """By datum id."""
        ...

    @changes
    def restart_job(self, job_id: str) -> Job:
        """Run the failed datums of a finished job again, on the same input commits, and return the job that runs
        them: locally that job itself; on pachd, which reruns a pipeline and never a finished job, a new job of the
        pipeline (what `pachctl update pipeline` with its own spec makes), which skips the datums an earlier
        successful job did. Conflict for a job that has not ended or has no failed datum; on pachd also for a job
        that is not its pipeline's newest (a rerun reads the inputs' newest commits) and on a stopped pipeline."""
        ...

    def job_logs(self, job_id: str, datum_id: str | None = None) -> list[str]:
        """The lines the job's code wrote (stdout and stderr; not the runner's own), by datum, each after the first
        12 characters of its datum's id; or one datum's lines alone (`datum_id`: an id or a unique prefix, NotFound
        otherwise). NotAvailable where the backend keeps none any more (pachd without Loki once the workers are
        gone)."""
        ...


class Training(Part, Protocol):
    """Experiments of the Dogs-vs-Cats trial, their metrics, logs and checkpoints.

    Experiment ids are numbers; every method that takes one raises NotFound for an id that names nothing."""

    def list_experiments(self) -> list[Experiment]:
        """Newest (highest id) first. A listing may carry only the best of the searcher metric (Determined's does)."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment:
        """`best_accuracy` and `best_validation_loss` are those of the best validation by the config's searcher metric."""
        ...

    @changes
    def create_experiment(self, config: Path, data: DataRef | None = None, name: str | None = None,
                          source_checkpoint: str | None = None, job: str | None = None,
                          coalesce: str | None = None) -> Experiment:
        """Start the trial described by the config file, on `data` (default: the config's), its commit pinned to
        the full id; with `source_checkpoint` (a checkpoint uuid) every trial starts from its weights
        (Determined's `searcher.source_checkpoint_uuid`), recorded as the experiment's `source_checkpoint`;
        `job`, the pipeline job that started it (retrain on commit), is kept as `data.job` in its config and
        shown as its `data_job`. `coalesce` (a name, kept as `data.coalesce`): at most one experiment of that
        name trains at a time; a newer one waits queued and supersedes one that waits already (the local
        profile; a cluster's master schedules them itself).
        NotFound for a config file, data or checkpoint that is not there, InvalidInput for a config that is not
        a YAML mapping of settings; nothing is started then."""
        ...

    @changes
    def pause(self, experiment_id: str) -> Experiment:
        """A queued or running experiment becomes paused; any other state is a Conflict naming it."""
        ...

    @changes
    def resume(self, experiment_id: str) -> Experiment:
        """A paused experiment runs again (locally, also one that stopped with an error); otherwise Conflict."""
        ...

    @changes
    def kill(self, experiment_id: str) -> Experiment:
        """An experiment that has not ended becomes killed (terminal, with `ended`); a finished one is a Conflict."""
        ...

    def metrics(self, experiment_id: str, cursor: int = 0) -> tuple[list[MetricPoint], int]:
        """Points reported after `cursor` (0: all), in the order reported, and the cursor for the next call.
        The cursor means nothing outside the part: called again with it, nothing new gives ([], the same cursor)."""
        ...

    def logs(self, experiment_id: str, cursor: int = 0) -> tuple[list[str], int]:
        """Whole log lines after `cursor` (0: from the start) and the cursor for the next call, which gives
        ([], the same cursor) until a line is added."""
        ...

    def checkpoints(self, experiment_id: str) -> list[Checkpoint]:
        """The completed checkpoints, by batch; each with the validation metrics reported at its batch."""
        ...

    def checkpoint(self, uuid: str) -> Checkpoint:
        """The same Checkpoint that `checkpoints` lists; NotFound for an unknown uuid."""
        ...

    def list_trials(self, experiment_id: str) -> list[Trial]:
        """The trials of the experiment's search, by id (a `single` searcher has one): each with its state, the
        hyperparameters the search drew for it, batches, best searcher metric and best checkpoint."""
        ...

    def get_trial(self, trial_id: str) -> Trial:
        """The same Trial that `list_trials` lists; NotFound for an id that names no trial."""
        ...

    def trial_metrics(self, trial_id: str, cursor: int = 0) -> tuple[list[MetricPoint], int]:
        """One trial's points, as `metrics` gives an experiment's (the same cursor rules)."""
        ...

    def trial_logs(self, trial_id: str, cursor: int = 0) -> tuple[list[str], int]:
        """One trial's log lines, as `logs` gives an experiment's (the same cursor rules)."""
        ...


class Registry(Part, Protocol):
    """Models, their versions (checkpoints), aliases and the audit history of promotions.

    Every method that takes a model name raises NotFound for a model that is not there."""

    def list_models(self) -> list[Model]:
        """By name."""
        ...

    def get_model(self, name: str) -> Model: ...

    def list_versions(self, model: str) -> list[ModelVersion]:
        """By number: versions are numbered from 1, in the order registered."""
        ...

    def get_version(self, model: str, ref: str | int) -> ModelVersion:
        """`ref`: a version number, an alias (`staging`, `production`) or `latest`. NotFound for a number or an
        alias that names no version; InvalidInput for anything else."""
        ...

    @changes
    def register(
        self, model: str, experiment_id: str, checkpoint_uuid: str | None = None, notes: str = "",
        trial_id: str | None = None,
    ) -> ModelVersion:
        """A new version (the next number; the first one creates the model) from the chosen checkpoint, else the
        best checkpoint of the chosen trial (Conflict if it has none), else the experiment's best one (that of
        its best trial): best by the config's searcher metric, as Determined ranks it, ties to the latest;
        without that metric, the highest accuracy, else the latest. The version records the experiment, its data
        commit and the checkpoint's metrics. Conflict for a checkpoint that is already a version of this model
        and for an experiment without checkpoints; InvalidInput for another experiment's checkpoint or a model
        name outside letters, digits, '-' and '_'. Nothing is registered when it fails."""
        ...

    @changes
    def promote(self, model: str, version: int, alias: str, who: str | None = None) -> Promotion:
        """Move `alias` to `version`: one version per alias and model, and one version may hold both. The move,
        `from_version` None the first time; `who` defaults to the user. InvalidInput for another alias, NotFound
        for an unknown version: the aliases and the history stay as they were."""
        ...

    def history(self, model: str) -> list[Promotion]:
        """Every promotion of the model, oldest first; [] for a model never promoted."""
        ...


class Serving(Part, Protocol):
    """Named deployments of model versions behind a Seldon prediction endpoint.

    Every method that takes the name of an existing deployment raises NotFound for one that is not there."""

    def list_deployments(self) -> list[Deployment]:
        """By name."""
        ...

    def get_deployment(self, name: str) -> Deployment: ...

    @changes
    def deploy(self, name: str, version: ModelVersion, alias: str | None = None) -> Deployment:
        """A new name follows Kubernetes' rule for a SeldonDeployment (at most 63 lower-case letters, digits and
        '-', starting and ending with a letter or digit; InvalidInput otherwise). Conflict if it exists. `alias`:
        the registry alias the version was named by (production), kept as the deployment's `alias`.

        The routing rules of every change below are `platform/deployment_policy.py`'s, on both profiles: a
        version holds one role at a time (InvalidInput otherwise), a primary change takes the new primary out of
        its old role, and every change is a history entry with the whole routing before and after."""
        ...

    @changes
    def update(self, name: str, version: ModelVersion, alias: str | None = None, auto: dict | None = None) -> Deployment:
        """Move a deployment's primary to another version without a failed request (a canary of that version is
        promoted, a shadow of it becomes the primary). `alias` as for `deploy`; None keeps the one it had if
        the version is still what it names, and forgets it otherwise. `auto`: an automatic change (the gate's)
        with its `reason` and `numbers`, kept in its history entry (by `deployment_policy.GATE`)."""
        ...

    @changes
    def set_canary(self, name: str, version: ModelVersion | None, traffic: int, auto: dict | None = None) -> Deployment:
        """Send `traffic` percent (1 to 99, checked before the deployment is looked up) of requests to `version`;
        `None` removes the canary, whatever `traffic`. All of it to one version is `update`. InvalidInput for a
        version that is the primary or the shadow. `auto` as for `update`."""
        ...

    @changes
    def set_gate(self, name: str, gate: dict | None) -> Deployment:
        """The policy that gates the deployment's canaries (`analysis.Policy.to_dict()`, kept with the deployment
        and shown as its `gate`); None removes it. A history entry; the routing does not change."""
        ...

    @changes
    def undeploy(self, name: str) -> None:
        """Gone from the listing; a second undeploy is NotFound."""
        ...

    def logs(self, name: str, lines: int = 50) -> list[str]: ...

    @changes
    def set_shadow(self, name: str, version: ModelVersion | None) -> Deployment:
        """Mirror every request to `version` (its answers are never returned, its predictions are logged);
        `None` removes the shadow. InvalidInput for a version that is the primary or the canary."""
        ...

    @changes
    def rollback(self, name: str) -> Deployment:
        """Back to the whole routing (primary, canary and its share, shadow) that served before the last change of
        the primary version, without a failed request, recorded in the history; InvalidInput when it has served
        no other version."""
        ...

    def history(self, name: str) -> list[DeploymentChange]:
        """Oldest first: every change (deploys, updates, promotions, rollbacks, canary and shadow changes), who
        made it, and the routing it left."""
        ...

    def versions(self, name: str) -> list[VersionFigures]:
        """Primary first, then canary and shadow: traffic, requests, errors, latency and labels of each version,
        each figure from one source (so that every face shows the same numbers); what a profile cannot count is
        None, with a sentence in `note`."""
        ...

    def comparisons(self, name: str) -> list[Comparison]:
        """What the canary and the shadow (where there is one) are judged on against the primary: both versions'
        numbers over the same period, since it started (the history entry that began its present run; a canary's
        traffic steps do not restart it): [] with neither. NotAvailable, in one sentence, where the profile cannot
        count them."""
        ...

    def predictions(self, name: str, since: float | None = None, limit: int = 1000) -> list[LoggedPrediction]:
        """The prediction log, oldest first: the last `limit` after `since`. NotAvailable where the profile keeps none."""
        ...

    def prediction_summaries(self, name: str, version: int | None = None, limit: int = 1000) -> list[PredictionSummary]:
        """The summaries of the last `limit` answered predictions that carry one (of `version` when given), oldest
        first. NotAvailable where the profile keeps no prediction log."""
        ...

    def drift_record(self, name: str) -> dict:
        """What `save_drift_record` kept for the deployment ({} before the first). NotAvailable where the profile
        keeps no prediction log."""
        ...

    @changes
    def save_drift_record(self, name: str, record: dict) -> None:
        """Keep the drift evaluations of the deployment (a JSON-ready mapping, actions/drift.py's), beside it and
        gone with it."""
        ...

    def predict(self, name: str, image: bytes, filename: str = "image") -> Prediction:
        """Send the encoded image (JPEG/PNG bytes, Seldon `binData`); never raises for a bad image:
        the Prediction carries `error` instead; its `id` names it for `feedback` (Seldon's meta.puid). Raises for
        an unknown (NotFound, before anything else) or dead deployment."""
        ...

    @changes
    def feedback(self, name: str, items: list[Feedback]) -> list[LoggedPrediction]:
        """Ground truth (a label) and/or a reward for logged predictions, sent as Seldon's feedback
        (`/api/v1.0/feedback`) and recorded in the prediction log against the prediction each names (its id, the
        client's puid, or its image's sha256); a second feedback for a prediction replaces the first. Every item is
        checked before any is recorded: NotFound for a prediction the log does not hold, InvalidInput for a label
        the model does not have or an item with neither label nor reward. The predictions with their feedback.
        NotAvailable, in one sentence, where the profile keeps no prediction log to record it in."""
        ...

    def kept_inputs(self, name: str) -> KeptInputs:
        """Whether the deployment keeps the images of its last predictions (off by default), how many and how many
        bytes it holds, and its cap. NotAvailable, in one sentence, where the profile keeps no prediction log."""
        ...

    @changes
    def set_keep_inputs(self, name: str, keep: int, cap_bytes: int | None = None) -> KeptInputs:
        """Keep the images of the last `keep` answered predictions (an image sent again is kept once, as its latest),
        at most `cap_bytes` in all (rules.KEEP_INPUTS_CAP_BYTES when None), inside the home; 0 turns keeping off
        and deletes what was kept. What is kept goes with the prediction log's retention and with the deployment.
        InvalidInput for a bad number (rules.check_keep_inputs); NotAvailable where the profile keeps no log."""
        ...

    def kept_predictions(self, name: str, since: float | None = None, limit: int = 100_000) -> list[LoggedPrediction]:
        """The last `limit` answered predictions (after `since`; a shadow's are not answers) whose image is kept,
        oldest first, with their feedback. NotAvailable where the profile keeps no prediction log."""
        ...

    def kept_input(self, name: str, prediction_id: int) -> bytes:
        """The image prediction `prediction_id` was sent, as kept: NotFound for a prediction the log does not hold
        or whose image is not kept (with how to keep them where keeping is off), PlatformError for a kept file
        that is gone or no longer the bytes it was. NotAvailable where the profile keeps no prediction log."""
        ...


class Cluster(Part, Protocol):
    """Where the platform runs: this host, or the Kubernetes cluster."""

    def context(self) -> dict[str, str]:
        """What the header shows, all text: `profile`, context or host, versions."""
        ...

    def nodes(self) -> list[Node]:
        """By name; capacity at least what is allocatable."""
        ...

    def workloads(self) -> list[Workload]:
        """The platform's own processes (local) or pods (cluster), by (namespace, name)."""
        ...


PORTS: dict[str, type] = {"cluster": Cluster, "data": DataStore, "training": Training, "registry": Registry, "serving": Serving,
                          "pipelines": Pipelines}


def changing_methods(port: type) -> frozenset[str]:
    """The methods of a port marked with @changes."""
    return frozenset(name for name, value in vars(port).items() if getattr(value, "changes_platform", False))
