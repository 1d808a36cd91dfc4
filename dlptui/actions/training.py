"""Starting and following experiments: the default config, the start choices, waiting, following."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dlptui import resources
from dlptui.actions.defaults import demo_config
from dlptui.errors import InvalidInput, PlatformError
from dlptui.platform.model import DataRef, Experiment, ExperimentState
from dlptui.text import commit_id, data_ref

POLL_S = 0.5


def start(platform, config: Path | None = None, data: DataRef | None = None, name: str | None = None,
          source: str | None = None, job: str | None = None, coalesce: str | None = None) -> Experiment:
    """An experiment of `config` (default: the demo config) on `data` (default: the config's); with `source`
    (MODEL@VERSION, MODEL@ALIAS or a checkpoint uuid) its trials start warm from that checkpoint's weights;
    `job` is the pipeline job that starts it (a retrain on commit), checked and recorded for lineage; with
    `coalesce` (a retrain pipeline's name) at most one experiment of that name trains at a time: a newer one
    waits queued, superseding one that waits already."""
    extra = {}
    if source:
        extra["source_checkpoint"] = source_checkpoint(platform, source)
    if job:
        extra["job"] = platform.pipelines.inspect_job(job).id  # NotFound for a job that is not there
    if coalesce:
        extra["coalesce"] = check_coalesce_key(coalesce)
    return platform.training.create_experiment(config or demo_config(), data=data, name=name, **extra)


def check_coalesce_key(key: str) -> str:
    """A coalesce key names a lock file and a retrain pipeline: the NAME rule, one sentence otherwise."""
    from dlptui.platform.rules import NAME

    if not NAME.match(key or ""):
        raise InvalidInput(f"--coalesce {key!r} is not a valid name; use letters, digits, '-' and '_' (a pipeline's name).")
    return key


def source_checkpoint(platform, source: str) -> str:
    """The checkpoint uuid that `--from` names: a registered version's (MODEL@VERSION|ALIAS|latest) or the uuid itself."""
    source = source.strip()
    if "@" in source:
        model, _, ref = source.partition("@")
        if not model or not ref:
            raise InvalidInput(f"{source!r} is not MODEL@VERSION; give e.g. dogcat-model@3, dogcat-model@production or a checkpoint uuid.")
        return platform.registry.get_version(model, ref).checkpoint_uuid
    return platform.training.checkpoint(source).uuid


def started(e: Experiment) -> str:
    return f"Experiment {e.id} ({e.name}) is {e.state.value} on {data_ref(e.data_repo, e.data_commit)}."


def settled(e: Experiment) -> bool:
    """Nothing more will happen without the user: it ended, or it is paused."""
    return e.state.terminal or e.state is ExperimentState.PAUSED


def start_choices(platform, per_repo: int = 10) -> tuple[list[Path], Path, list[tuple[str, DataRef]]]:
    """The shipped configs, the default one, and the newest commits of every repo (what a start dialog offers)."""
    configs = resources.trial_configs()
    commits: list[tuple[str, DataRef]] = []
    try:
        data = platform.data
        for repo in data.list_repos():
            for c in data.list_commits(repo.name, limit=per_repo):
                label = f"{repo.name}@{commit_id(c.id)}  {c.branch}  {c.message[:50]}"
                commits.append((label, DataRef(repo.name, c.id, c.branch)))
    except PlatformError:  # no data part: the config's own data is still a choice
        pass
    return configs, demo_config(), commits


def wait(platform, experiment: Experiment, on_poll: Callable[[Experiment], None] | None = None) -> Experiment:
    """Poll until the experiment settles; `on_poll` sees it after every poll."""
    while True:
        if on_poll is not None:
            on_poll(experiment)
        if settled(experiment):
            return experiment
        time.sleep(POLL_S)
        experiment = platform.training.get_experiment(experiment.id)


def follow(poll: Callable[[int], tuple[list[Any], int]], finished: Callable[[], bool], keep: bool) -> Iterator[list[Any]]:
    """Batches of what `poll(cursor)` returns; with `keep`, until `finished()` and nothing is left."""
    cursor = 0
    while True:
        ended = finished() if keep else True  # asked before the poll, so nothing written at the end is lost
        items, cursor = poll(cursor)
        if items:
            yield items
        if ended and not items:
            return
        if not items:
            time.sleep(POLL_S)


def as_trials(experiments: list[Experiment]) -> tuple[list, str, bool]:
    """Experiments as one-trial rows for a side-by-side view: their constant hyperparameters and their best
    value of the first one's searcher metric; (rows, metric, smaller_is_better)."""
    from dlptui.platform.model import Trial

    searcher = (experiments[0].config or {}).get("searcher") or {} if experiments else {}
    metric, smaller = searcher.get("metric", "validation_loss"), searcher.get("smaller_is_better", True)
    rows = []
    for e in experiments:
        best = e.best_accuracy if "acc" in metric else e.best_validation_loss
        hp = {k: v for k, v in ((e.config or {}).get("hyperparameters") or {}).items() if not isinstance(v, dict)}
        rows.append(Trial(id=e.id, experiment_id=e.id, state=e.state, batches_done=e.batches_done, hparams=hp,
                          max_batches=e.max_batches, best_metric=best))
    return rows, metric, smaller


def searched(trials) -> list[str]:
    """The hyperparameters a trial list shows as columns: those the search drew (every trial records them)."""
    return sorted({k for t in trials for k in t.hparams})


def all_logs(platform, experiment_id: str) -> list[str]:
    lines: list[str] = []
    for batch in follow(lambda c: platform.training.logs(experiment_id, c), lambda: True, keep=False):
        lines += batch
    return lines
