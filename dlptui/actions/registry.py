"""Registering and promoting: which checkpoints a user may register, and the sentences of the result."""

from __future__ import annotations

from dlptui.platform.model import Checkpoint, Experiment, ModelVersion, Promotion

# what "register" takes when no checkpoint is named: the registry picks the experiment's best
BEST = None


def register_choices(platform) -> list[tuple[Experiment, list[Checkpoint]]]:
    """Every experiment that has saved a checkpoint, with its checkpoints by batch."""
    training = platform.training
    found = []
    for experiment in training.list_experiments():
        checkpoints = training.checkpoints(experiment.id)
        if checkpoints:
            found.append((experiment, sorted(checkpoints, key=lambda c: c.batch)))
    return found


def register(platform, model: str, experiment_id: str, checkpoint_uuid: str | None = BEST, notes: str = "",
             trial_id: str | None = None) -> ModelVersion:
    """A new version from the chosen checkpoint, else the best checkpoint of the chosen trial, else that of the
    experiment's best trial (its best validation by the searcher metric, which is the experiment's best)."""
    if trial_id:
        return platform.registry.register(model.strip(), experiment_id, checkpoint_uuid or None, notes=notes, trial_id=str(trial_id))
    return platform.registry.register(model.strip(), experiment_id, checkpoint_uuid or None, notes=notes)


def registered(version: ModelVersion) -> str:
    return f"Registered {version} from checkpoint {version.checkpoint_uuid} of experiment {version.experiment_id}."


def best_trial(platform, experiment_id: str):
    """The experiment's trial with the best searcher metric (Determined's ranking), or None before any validation."""
    experiment = platform.training.get_experiment(experiment_id)
    searcher = (experiment.config or {}).get("searcher") or {}
    smaller = searcher.get("smaller_is_better", True)
    best = None
    for t in platform.training.list_trials(experiment_id):
        if t.best_metric is None:
            continue
        if best is None or (t.best_metric < best.best_metric if smaller else t.best_metric > best.best_metric):
            best = t
    return best


def promote(platform, model: str, version: int, alias: str) -> Promotion:
    return platform.registry.promote(model, version, alias)


def promoted(p: Promotion) -> str:
    before = f"version {p.from_version}" if p.from_version is not None else "no version"
    return f"{p.model}: {p.alias} moved from {before} to version {p.to_version}."
