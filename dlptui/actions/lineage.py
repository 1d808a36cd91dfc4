"""Where a deployment or a model version came from:

    deployment -> model version -> checkpoint -> experiment -> data commit

Built only from port calls (Serving, Registry, Training, DataStore), so it is the same on the
local and the cluster profile. The target itself must exist (NotFound otherwise); a later
step that cannot be followed (a deleted checkpoint, a data store that does not answer) ends
the chain with one sentence in `missing` instead of failing the whole answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlptui import text
from dlptui.actions import refs
from dlptui.errors import InvalidInput, NotFound, PlatformError
from dlptui.platform.model import CommitRef, ModelVersion, PredictionRef


@dataclass(frozen=True)
class Step:
    kind: str  # "deployment", "version", "checkpoint", "experiment", "data commit"
    id: str  # what names it for its part: a deployment name, "model@3", a uuid, an experiment id, "repo@commit"
    detail: str = ""  # one line of facts: state, metrics, dates


@dataclass(frozen=True)
class Lineage:
    target: str
    steps: tuple[Step, ...]
    missing: str = ""  # why the chain stops before the data commit, if it does


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {text.metric(k, v)}" for k, v in sorted(metrics.items())) or "no metrics"


def trace(platform, target: str) -> Lineage:
    """`MODEL@VERSION` (a number, an alias or `latest`), a deployment name, or `DEPLOYMENT#ID` (a logged prediction)."""
    if "#" in target:
        try:
            ref = PredictionRef(target)
        except ValueError:
            ref = None
        if ref is None or not ref.id.isdigit():
            name = target.partition("#")[0]
            raise InvalidInput(f"A logged prediction is DEPLOYMENT#ID (the id `dlptui predictions {name}` shows), not {target!r}.")
        return of_prediction(platform, ref.deployment, int(ref.id))
    if "@" in target:
        model, ref = refs.model_ref(target)
        return of_version(platform, platform.registry.get_version(model, ref), target, serving=True)
    return of_deployment(platform, target)


def of_deployment(platform, name: str) -> Lineage:
    deployment = platform.serving.get_deployment(name)
    detail = f"{deployment.state.value}, {deployment.endpoint or 'no endpoint'}"
    if deployment.canary_version is not None:
        detail += f", canary version {deployment.canary_version} takes {deployment.canary_traffic}%"
    return _then_version(platform, name, Step("deployment", deployment.name, detail), deployment.model, deployment.version)


def _then_version(platform, target: str, first: Step, model: str, version: int) -> Lineage:
    """`first`, then the chain of the model version it names (or where that stops)."""
    try:
        found = platform.registry.get_version(model, version)
    except PlatformError as e:
        return Lineage(target, (first,), f"The chain stops at the {first.kind}: {e}")
    rest = of_version(platform, found, target)
    return Lineage(target, (first, *rest.steps), rest.missing)


def served(platform, version: ModelVersion) -> list[Step]:
    """What the loop and the gate did with the version, newest first: the gate's verdicts (promoted, stepped,
    aborted: the reason with its numbers) and the canary the loop made of it (its pipeline job and experiment).
    Nothing where the serving part cannot say."""
    from dlptui.platform.deployment_policy import GATE

    steps: list[Step] = []
    try:
        deployments = [d for d in platform.serving.list_deployments() if d.model == version.model]
    except PlatformError:
        return []
    for deployment in deployments:
        try:
            history = platform.serving.history(deployment.name)
        except PlatformError:
            continue
        for change in reversed(history):
            numbers = change.numbers or {}
            if change.reason and version.version in (numbers.get("canary"), numbers.get("version")):
                kind = "verdict" if change.by == GATE else "canary"
                steps.append(Step(kind, deployment.name, f"{text.timestamp(change.time)}, {change.change} by {change.by}: "
                                                         f"{change.reason}"))
    return steps


def of_version(platform, version: ModelVersion, target: str | None = None, serving: bool = False) -> Lineage:
    """version -> checkpoint -> experiment -> data commit (-> the job and commits it came from); with `serving`,
    what the loop and the gate did with the version first (`served`)."""
    aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
    steps = [*(served(platform, version) if serving else []), Step("version", text.model_ref(version.model, version.version), f"registered {text.timestamp(version.created)}{aliases}, {_metrics(version.metrics)}")]
    target = target or str(version)
    try:
        checkpoint = platform.training.checkpoint(version.checkpoint_uuid)
        steps.append(
            Step("checkpoint", checkpoint.uuid, f"batch {checkpoint.batch}, saved {text.timestamp(checkpoint.created)}, {checkpoint.location}")
        )
        experiment = platform.training.get_experiment(checkpoint.experiment_id)
        steps.append(
            Step("experiment", experiment.id, f"{experiment.name}, {experiment.state.value}, {experiment.batches_done} batches"
                 + (f", started warm from checkpoint {experiment.source_checkpoint}" if experiment.source_checkpoint else "")
                 + (f", started by pipeline job {experiment.data_job}" if experiment.data_job else ""))
        )
    except PlatformError as e:
        return Lineage(target, tuple(steps), f"The chain stops at {steps[-1].kind} {steps[-1].id}: {e}")
    repo = experiment.data_repo or version.data_repo
    commit = experiment.data_commit or version.data_commit
    if not (repo and commit):
        return Lineage(target, tuple(steps), f"Experiment {experiment.id} does not record which data commit it trained on.")
    try:
        found = platform.data.inspect_commit(repo, commit)
    except PlatformError as e:
        steps.append(Step("data commit", f"{repo}@{commit}", "as the experiment recorded it"))
        return Lineage(target, tuple(steps), f"The data commit cannot be read: {e}")
    message = f"\"{found.message}\", " if found.message else ""
    steps.append(Step("data commit", f"{repo}@{found.id}", f"{message}{found.files} files, {text.timestamp(found.created)}"))
    return Lineage(target, tuple(steps + upstream(platform, found)))


def upstream(platform, commit) -> list[Step]:
    """A pipeline's output commit one step further down: the job that made it, then the commits it read.
    Nothing for a commit put by hand, or where the pipelines part cannot say."""
    if not commit.provenance:
        return []
    steps: list[Step] = []
    try:
        made = CommitRef.of(commit.repo, commit.id)
        job = next((j for j in platform.pipelines.list_jobs(commit.repo) if j.output_commit == made), None)
        if job is not None:
            d = job.datums
            steps.append(Step("job", job.id, f"pipeline {job.pipeline}, {job.state.value}, {d.get('total', 0)} datums "
                                             f"({d.get('skipped', 0)} skipped), {text.timestamp(job.started)}"))
    except PlatformError:
        pass
    for source in commit.provenance:
        try:
            found = platform.data.inspect_commit(source.repo, source.ref)
            steps.append(Step("data commit", CommitRef.of(source.repo, found.id), f"{found.files} files, {text.timestamp(found.created)}"))
        except PlatformError:
            steps.append(Step("data commit", source, "no longer in its repo"))
    return steps


def of_prediction(platform, deployment: str, ident: int) -> Lineage:
    """prediction -> version -> checkpoint -> experiment -> data commit."""
    found = next((p for p in platform.serving.predictions(deployment, limit=1_000_000) if p.id == ident), None)
    if found is None:
        raise NotFound(f"Deployment {deployment} logged no prediction {ident} (or it is older than the log keeps).")
    target = PredictionRef.of(deployment, ident)
    label = f"{found.label} ({text.percent(found.probabilities.get(found.label, 0))})" if found.label else f"HTTP {found.status}"
    first = Step("prediction", target, f"{text.timestamp(found.time)}, {label}, {found.role} v{found.version}, "
                                       f"{text.latency(found.latency_ms)}, input sha256 {found.input_sha256[:12]}")
    return _then_version(platform, target, first, found.model, found.version)
