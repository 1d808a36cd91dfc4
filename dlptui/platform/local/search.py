"""The local profile's searcher: which trials to start, which to promote, which to stop.

Determined 0.38 runs its searchers in the master only, so off a cluster dlptui runs the same
config's search itself (`search_runner.py` runs the trials; this module decides).

- Sampling is Optuna's: `RandomSampler` for random and adaptive ASHA, `GridSampler` over
  Determined's grid (every combination of `count` points per int/double/log axis and every
  categorical value) for grid. Each experiment's study lives in a journal file under the
  experiment's folder (`JournalFileStorage`), which every process of the search may open: a
  restarted runner loads the same study, so a search resumed after `kill -9` asks for the next
  trial, not the first one again.
- The rung decisions are ours, in `plan()`: Optuna's `SuccessiveHalvingPruner` decides only
  whether a *running* trial goes on ("Optuna does not support suspending or resuming ongoing
  trials", says its source), so it cannot hold a trial at a rung and promote it later, which is
  what asynchronous successive halving does and what lets a trial resume from its checkpoint
  when a later, worse trial makes room above it. The rule is a few lines, written from
  Determined's documentation of ASHA:
  * a bracket with R rungs has rung lengths `max_time / divisor^(R-1-k)`, k = 0..R-1 (the last
    is `max_time`);
  * a trial trains to its rung, validates and checkpoints there, and waits;
  * of the n results at a rung, the best floor(n / divisor) by the searcher metric are promoted
    (as soon as they are among them: asynchronously), and resume from their checkpoint to the
    next rung; a free slot goes to a promotion before a new trial;
  * when nothing runs, no new trial may start and nothing can be promoted, the waiting trials
    are stopped early.
  `adaptive_asha` spreads trials over brackets by `mode`: aggressive one bracket of `max_rungs`;
  standard the brackets `max_rungs`, `max_rungs-1`, ... down to half of them; conservative every
  bracket down to one rung. Trials go to brackets in turn. `async_halving` is one bracket of
  `num_rungs`.

Nothing here starts a process; `plan()` is a pure function of the trials as recorded, so a
restarted runner takes the same decisions.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASHA = ("adaptive_asha", "async_halving")


def default_concurrency() -> int:
    """max_concurrent_trials 0: what the cores allow (Determined's master defaults to 16 slots' worth)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def concurrency(searcher: dict[str, Any]) -> int:
    return int(searcher.get("max_concurrent_trials") or 0) or default_concurrency()


def brackets(searcher: dict[str, Any]) -> list[int]:
    """The number of rungs of each bracket."""
    if searcher.get("name") == "async_halving":
        return [int(searcher["num_rungs"])]
    top = int(searcher.get("max_rungs", 5))
    mode = searcher.get("mode", "standard")
    if mode == "aggressive":
        return [top]
    if mode == "standard":
        return list(range(top, max(1, top - (top + 1) // 2), -1)) or [top]
    return list(range(top, 0, -1))


def rungs(searcher: dict[str, Any], bracket: int) -> list[int]:
    """The rung lengths (batches) of one bracket, shortest first, the last being max_time."""
    count = brackets(searcher)[bracket]
    divisor, max_time = float(searcher.get("divisor", 4)), int(searcher["max_time"])
    lengths = sorted({max(1, int(max_time / divisor ** (count - 1 - k))) for k in range(count)})
    return lengths


def grid_points(space: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """Determined's grid: `count` evenly spaced points of each int, double and log axis (ends included,
    one point: the lower end; an int axis never repeats a value), every value of a categorical."""
    axes: dict[str, list[Any]] = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            axes[name] = list(spec["vals"])
            continue
        count, low, high = int(spec["count"]), spec["minval"], spec["maxval"]
        steps = [low + (high - low) * i / (count - 1) for i in range(count)] if count > 1 else [low]
        if spec["type"] == "int":
            axes[name] = sorted({int(round(v)) for v in steps})
        elif spec["type"] == "log":
            axes[name] = [float(spec["base"]) ** v for v in steps]
        else:
            axes[name] = [float(v) for v in steps]
    return axes


def grid_size(space: dict[str, dict[str, Any]]) -> int:
    return math.prod(len(v) for v in grid_points(space).values()) if space else 1


def max_trials(searcher: dict[str, Any], space: dict[str, dict[str, Any]]) -> int:
    name = searcher.get("name", "single")
    if name == "single":
        return 1
    if name == "grid":
        return grid_size(space)
    return int(searcher["max_trials"])


class Sampler:
    """New trials' hyperparameters from an Optuna study kept in `path` (a journal file)."""

    def __init__(self, path: Path, study: str, searcher: dict[str, Any], space: dict[str, dict[str, Any]], seed: int | None) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.distributions = self._distributions(optuna, space)
        if searcher.get("name") == "grid":
            sampler = optuna.samplers.GridSampler(grid_points(space), seed=seed)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.study = optuna.create_study(
            storage=JournalStorage(JournalFileBackend(str(path))),
            study_name=study,
            sampler=sampler,
            direction="minimize" if searcher.get("smaller_is_better", True) else "maximize",
            load_if_exists=True,
        )

    def _distributions(self, optuna, space) -> dict[str, Any]:
        d = optuna.distributions
        out: dict[str, Any] = {}
        for name, spec in space.items():
            if spec["type"] == "categorical":
                out[name] = d.CategoricalDistribution(spec["vals"])
            elif spec["type"] == "int":
                out[name] = d.IntDistribution(int(spec["minval"]), int(spec["maxval"]))
            elif spec["type"] == "log":  # base^U(minval, maxval) is log-uniform between the powers, whatever the base
                base = float(spec["base"])
                out[name] = d.FloatDistribution(base ** spec["minval"], base ** spec["maxval"], log=True)
            else:
                out[name] = d.FloatDistribution(float(spec["minval"]), float(spec["maxval"]))
        return out

    def ask(self) -> tuple[int, dict[str, Any]]:
        """(the Optuna trial number, its hyperparameters)."""
        trial = self.study.ask(self.distributions)
        return trial.number, dict(trial.params)

    def tell(self, number: int | None, value: float | None, stopped: bool = False) -> None:
        """The outcome of a trial, for the study's record; a trial already told is left alone."""
        if number is None:
            return
        import optuna

        state = optuna.trial.TrialState.PRUNED if stopped or value is None else optuna.trial.TrialState.COMPLETE
        try:
            self.study.tell(number, None if state is optuna.trial.TrialState.PRUNED else value, state=state)
        except (ValueError, RuntimeError):  # told already (a resumed runner), or not a number any more
            pass


# --- the rung decisions ----------------------------------------------------------------


@dataclass
class TrialView:
    """What `plan` needs of a trial: its bracket, the rung it trains to, where it is, its rung results."""

    id: int
    bracket: int
    target: int
    state: str  # "running", "queued" (to (re)start its leg), "waiting" (leg done), "done", "failed"
    results: dict[int, float | None] = field(default_factory=dict)  # rung length -> searcher metric there


@dataclass
class Plan:
    promote: list[tuple[int, int]] = field(default_factory=list)  # (trial id, next target)
    stop: list[int] = field(default_factory=list)  # stopped early
    complete: list[int] = field(default_factory=list)  # reached the top rung (or the length)


def _score(value: float | None, smaller: bool) -> float:
    """Lower is better; a missing metric is the worst."""
    if value is None or not math.isfinite(value):
        return math.inf
    return value if smaller else -value


def plan(searcher: dict[str, Any], trials: list[TrialView], can_create: bool, length: int) -> Plan:
    """What to do with the waiting trials now. Pure: the same records give the same plan."""
    out = Plan()
    name = searcher.get("name", "single")
    smaller = bool(searcher.get("smaller_is_better", True))
    waiting = [t for t in trials if t.state == "waiting"]
    if name not in ASHA:
        out.complete = [t.id for t in waiting]
        return out
    divisor = float(searcher.get("divisor", 4))
    promoted: set[int] = set()
    for t in waiting:
        ladder = rungs(searcher, t.bracket)
        if t.target >= ladder[-1]:
            out.complete.append(t.id)
    for bracket in {t.bracket for t in trials}:
        ladder = rungs(searcher, bracket)
        members = [t for t in trials if t.bracket == bracket]
        for k, rung in enumerate(ladder[:-1]):
            # every trial that finished this rung: promoted past it, or waiting at it
            reached = [t for t in members if t.target > rung or (t.target == rung and t.state in ("waiting", "done"))]
            count = int(len(reached) // divisor)
            ranked = sorted(reached, key=lambda t: (_score(t.results.get(rung), smaller), t.id))
            for t in ranked[:count]:
                if t.state == "waiting" and t.target == rung:
                    out.promote.append((t.id, ladder[k + 1]))
                    promoted.add(t.id)
    busy = any(t.state in ("running", "queued") for t in trials)
    if not busy and not can_create and not out.promote:
        done = set(out.complete)
        out.stop = [t.id for t in waiting if t.id not in done]
    return out
