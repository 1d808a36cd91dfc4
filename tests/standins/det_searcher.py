"""How many trials a Determined 0.38.1 master's searcher creates, and when (for the master stand-in, tests only).

From master/pkg/searcher at tag v0.38.1:

- `single` is a random search of one trial (random.go `newSingleSearch`).
- `random` creates `min(max_trials, max_concurrent_trials)` trials first (all `max_trials` when
  `max_concurrent_trials` is 0) and one more each time a trial exits while fewer than `max_trials` were
  created (random.go `initialTrials`, `trialExited`).
- `grid` creates one trial per point of the grid, `max_concurrent_trials` at a time (grid.go).
- `async_halving` creates `min(max_concurrent_trials, max_trials)` trials first (with 0,
  `clamp(1, divisor^(num_rungs-1), max_trials)`) and one more each time it stops a trial (at a rung, or at
  the top rung) while fewer than `max_trials` were created (asha_stopping.go `initialTrials`,
  `validationCompleted`).
- `adaptive_asha` is a tournament of async_halving brackets (adaptive_asha.go `makeBrackets`): its number
  of rungs is `min(max_rungs, int(log(max_time)/log(divisor))+1, int(log(max_trials)/log(divisor))+1)`, the
  mode picks the brackets' rung counts (aggressive: that one; standard: the upper half; conservative: all),
  `max_trials` is split by `divisor^(rungs-1)/rungs` weights (the remainder to the first bracket) and
  `max_concurrent_trials` evenly (the remainder to the first brackets); each bracket starts as async_halving.

What the stand-in leaves out: which trial a rung stops (the real searcher ranks validations of the searcher
metric; here a test ends a trial with `MasterState.end_trial`, and the searcher then creates the next one
in that trial's bracket). Hyperparameters are drawn deterministically (`sample`), not at random.
"""

from __future__ import annotations

import math


def _brackets_of_asha(searcher: dict) -> list[tuple[int, int]]:
    """(max_trials, max_concurrent_trials) of each bracket of an adaptive_asha search."""
    divisor = float(searcher.get("divisor") or 4)
    trials = int(searcher.get("max_trials") or 1)
    length = searcher.get("max_length")
    units = int(searcher.get("max_time") or (next(iter(length.values()), 1) if isinstance(length, dict) else length) or 1)
    rungs = min(int(searcher.get("max_rungs") or 5), int(math.log(max(units, 1)) / math.log(divisor)) + 1,
                int(math.log(trials) / math.log(divisor)) + 1)
    mode = searcher.get("mode") or "standard"
    bracket_rungs = list(searcher.get("bracket_rungs") or []) or {
        "aggressive": [rungs],
        "standard": list(range((rungs - 1) // 2 + 1, rungs + 1)),
        "conservative": list(range(1, rungs + 1)),
    }[mode]
    bracket_rungs.sort(reverse=True)
    weights = [divisor ** (r - 1) / r for r in bracket_rungs]
    per_bracket = [max(int(w / sum(weights) * trials), 1) for w in weights]
    per_bracket[0] += max(trials - sum(per_bracket), 0)
    concurrent = searcher.get("max_concurrent_trials")
    concurrent = 16 if concurrent is None else int(concurrent)
    n = len(bracket_rungs)
    if concurrent == 0:
        shares = [max(per_bracket[-1], int(divisor))] * n
    else:
        concurrent = max(concurrent, n)
        shares = [concurrent // n + (1 if i < concurrent % n else 0) for i in range(n)]
    return list(zip(per_bracket, shares))


def brackets(config: dict) -> list[dict]:
    """The search's brackets, each {"max": trials it may create, "first": trials it creates at once}."""
    searcher = config.get("searcher") or {}
    name = searcher.get("name", "single")
    if name == "single":
        return [{"max": 1, "first": 1}]
    concurrent = searcher.get("max_concurrent_trials")
    concurrent = 16 if concurrent is None else int(concurrent)
    if name == "adaptive_asha":
        return [{"max": t, "first": min(c, t) if c > 0 else t} for t, c in _brackets_of_asha(searcher)]
    total = grid_size(config) if name == "grid" else int(searcher.get("max_trials") or 1)
    if name == "async_halving" and concurrent == 0:
        divisor = float(searcher.get("divisor") or 4)
        first = min(max(1, int(divisor ** (int(searcher.get("num_rungs") or 1) - 1))), total)
    else:
        first = min(total, concurrent) if concurrent > 0 else total
    return [{"max": total, "first": first}]


def grid_size(config: dict) -> int:
    count = 1
    for spec in (config.get("hyperparameters") or {}).values():
        if isinstance(spec, dict) and spec.get("type") == "categorical":
            count *= len(spec["vals"])
        elif isinstance(spec, dict) and spec.get("type") in ("int", "double", "log"):
            count *= int(spec.get("count", 1))
    return count


def sample(hyperparameters: dict, n: int) -> dict:
    """The n-th trial's hyperparameters (deterministic here): a constant as it is, a range stepped through
    from its lower end, a categorical value in turn."""
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
