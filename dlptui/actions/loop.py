"""The loop, closed with the gate in it: data commit -> split -> train -> register -> gated canary -> promote or abort.

    loop.turn_on(platform.pipelines)            # the shipped retrain on commit and the shipped canary pipeline
    loop.turn_off(platform.pipelines)           # the canary pipeline stopped: new models are registered no more
    loop.release(platform, experiment_id, ...)  # what the canary pipeline's datum runs (`dlptui canary ID`)

Retrain on commit (`dogs-and-cats-retrain`) starts the demo experiment on each new split commit and writes it to its
output repo; the canary pipeline (`dogs-and-cats-canary`, shipped, off by default like the retrain) takes each such
commit as a datum whose code runs `dlptui canary`: wait for the experiment to end, register its best checkpoint as
a version of the model, and make it a canary, at a small share and under a gate, of the deployment that serves the
model. From there the gate runner judges it against the primary and promotes or aborts it (actions/gate.py). Each
step records what made it: the experiment its pipeline job, the version its experiment and the job in its notes,
the canary's history entry the job, the experiment and the version (by LOOP), the gate's entry its reason and
numbers; `lineage MODEL@VERSION` shows them all (actions/lineage.py).

Where no deployment serves the model, the version is registered and the datum says so: the loop never deploys a
model a person has not deployed once. On the cluster profile the datum runs in a pachd worker pod and starts no gate
runner there: the runner runs where dlptui does (an open console starts it; `dlptui gate run` keeps one wherever it
is started, e.g. a Deployment of the team's own).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlptui.actions import gate as gating
from dlptui.actions import pipelines as shipped
from dlptui.actions import training
from dlptui.actions.defaults import MODEL
from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import Deployment, ExperimentState, ModelVersion

CANARY_PIPELINE = "dogs-and-cats-canary"  # the shipped spec: each retrain's experiment becomes a gated canary
LOOP = "dlptui loop"  # the "by" of the canary a loop sets
LOOP_TRAFFIC = 10  # the canary's first share: the gate's first step of `--gate auto`


@dataclass(frozen=True)
class Released:
    experiment: str
    version: ModelVersion
    deployment: Deployment | None  # None: no deployment serves the model; the version is only registered
    sentence: str

    def to_json(self) -> dict:
        d = self.deployment
        return {"experiment": self.experiment, "model": self.version.model, "version": self.version.version,
                "deployment": d.name if d else None, "canary": d.canary_version if d else None,
                "traffic": d.canary_traffic if d else None, "gate": d.gate if d else None, "sentence": self.sentence}


def _version_of(platform, model: str, experiment_id: str, job: str) -> ModelVersion:
    """The experiment's best checkpoint as a version of `model`; the one registered already when the datum runs
    again (a restarted job), so a retrain is one version."""
    try:
        for version in platform.registry.list_versions(model):
            if version.experiment_id == experiment_id:
                return version
    except NotFound:  # the first version creates the model
        pass
    notes = f"registered by pipeline job {job} ({CANARY_PIPELINE})" if job else "registered by `dlptui canary`"
    return platform.registry.register(model, experiment_id, notes=notes)


def serving(platform, model: str, name: str | None) -> Deployment | None:
    """The deployment to give the canary: `name`, else the one deployment that serves `model` (None without one;
    InvalidInput naming them when several do)."""
    if name:
        deployment = platform.serving.get_deployment(name)
        if deployment.model != model:
            raise InvalidInput(f"Deployment {name} serves {deployment.model}, not {model}; name a deployment of {model}.")
        return deployment
    found = [d for d in platform.serving.list_deployments() if d.model == model]
    if len(found) > 1:
        raise InvalidInput(f"{len(found)} deployments serve {model} ({', '.join(d.name for d in found)}); "
                           "name one with --deployment.")
    return found[0] if found else None


def release(platform, experiment_id: str, model: str = MODEL, deployment: str | None = None,
            traffic: int = LOOP_TRAFFIC, gate: str = gating.AUTO, job: str = "") -> Released:
    """Wait for the experiment to end, register its best checkpoint, and make it a gated canary of the deployment
    that serves the model (its gate kept where it has one, `gate` given where it has none)."""
    from dlptui.actions.serving import check_traffic

    if check_traffic(traffic) == 0:
        raise InvalidInput("A released version needs a canary share from 1 to 99 percent.")
    policy = gating.policy_of(gate)  # a bad policy: refused before anything is waited for or registered
    if policy is None:
        raise InvalidInput("A released version is always gated: give --gate auto or a policy file, not off.")
    experiment = training.wait(platform, platform.training.get_experiment(experiment_id))
    if experiment.state is not ExperimentState.COMPLETED:
        raise Conflict(f"Experiment {experiment_id} ended {experiment.state.value}"
                       f"{f' ({experiment.error})' if experiment.error else ''}; nothing is registered or deployed.")
    version = _version_of(platform, model, experiment_id, job)
    target = serving(platform, model, deployment)
    if target is None:
        return Released(experiment_id, version, None, f"Registered {model}@{version.version} from experiment "
                        f"{experiment_id}; no deployment serves {model}, so there is no canary (deploy one first).")
    if target.version == version.version:
        return Released(experiment_id, version, target, f"{target.name} serves {model}@{version.version} already.")
    if target.canary_version == version.version:
        return Released(experiment_id, version, target, f"{model}@{version.version} is the canary of {target.name} already.")
    if not target.gate:
        platform.serving.set_gate(target.name, policy.to_dict())
    data = f"{experiment.data_repo}@{experiment.data_commit}" if experiment.data_repo else "its data"
    made_by = f" (pipeline job {job})" if job else ""
    auto = {"by": LOOP,
            "reason": f"Retrained: experiment {experiment_id} on {data}{made_by} registered as {model}@{version.version}, "
                      f"a gated canary at {traffic} %.",
            "numbers": {"experiment": experiment_id, "version": version.version, "job": job or None, "data": data,
                        "traffic": traffic}}
    changed = platform.serving.set_canary(target.name, version, traffic, auto=auto)
    if platform.config.kind == "local" or not job:  # a datum in a pachd worker pod starts no runner that the pod keeps
        gating.wake(platform, changed)
    return Released(experiment_id, version, changed, f"{target.name}: {auto['reason']}")


def _ensure(pipelines, name: str, env: dict[str, str] | None) -> str:
    """Create the shipped spec `name` (with `env` in its transform) or start it; what was done, in words."""
    try:
        found = pipelines.inspect_pipeline(name)
    except NotFound:
        spec = shipped.load_spec(name)
        if env:
            spec["transform"]["env"] = {**(spec["transform"].get("env") or {}), **env}
        pipelines.create_pipeline(spec)
        return f"created {name}"
    if found.state != "running":
        pipelines.start_pipeline(name)
        return f"started {name}"
    return f"{name} runs already"


def turn_on(pipelines, env: dict[str, str] | None = None) -> str:
    """Retrain on commit and the canary pipeline, both running: one sentence of what it took."""
    done = [_ensure(pipelines, shipped.RETRAIN, env), _ensure(pipelines, CANARY_PIPELINE, env)]
    return (f"The loop is on ({'; '.join(done)}): each new commit of the split trains the demo model, and each "
            "trained model becomes a gated canary of the deployment that serves it.")


def turn_off(pipelines) -> str:
    """The canary pipeline stopped (retrain on commit goes on: models are trained, not deployed)."""
    try:
        found = pipelines.inspect_pipeline(CANARY_PIPELINE)
    except NotFound:
        return "The loop is off already: there is no canary pipeline."
    if found.state == "running":
        pipelines.stop_pipeline(CANARY_PIPELINE)
    return (f"The loop is off: {CANARY_PIPELINE} is stopped, so trained models are no longer deployed "
            f"(retrain on commit goes on; `dlptui pipeline stop {shipped.RETRAIN}` stops it too).")


def is_on(pipelines) -> bool:
    try:
        return pipelines.inspect_pipeline(CANARY_PIPELINE).state == "running"
    except NotFound:
        return False
