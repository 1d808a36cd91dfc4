"""The local search: adaptive ASHA against random search, and two trials at once against one at a time.

    .venv/bin/python bench/search.py [--trials 16] [--max-time 40] [--divisor 3] [--rungs 3] [--images 600]

Both searches run the tiny backbone on the SYNTHETIC sample (a throw-away local store) with the
same `max_trials`, the same length (`max_time` batches; random trains every trial that long) and
the same seed, so Optuna's RandomSampler draws the same learning rates for both: ASHA's only
difference is what it stops early. Then one random search of two trials runs with
max_concurrent_trials 2 and again with 1 (OMP_NUM_THREADS=1 in every trial, so each trial is one
core's work).

The defaults are the search a person would run: 16 trials, divisor 3 (Determined's default is 4),
3 rungs of 4, 13 and 40 batches, on 600 images (120 evaluated, so a best metric moves by 1/120,
not by one image in 60). At 8 trials a rung's top third is two or three trials, too few for the
best to be among them every time.

The last line is one JSON object:
- asha_batches_ratio: ASHA's total batches / random's (target <= 0.5);
- asha_best_gap: (random's best accuracy - ASHA's) / random's (target <= 0.02; negative: ASHA found better);
- concurrency_speedup: wall time one at a time / two at once (target >= 1.6 on 2 free cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from dlptui import resources

TRIAL = resources.trial_dir()


def config(tmp: Path, name: str, searcher: dict, max_batches: int | None = None) -> Path:
    import yaml

    conf = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
    conf["name"] = name
    conf["hyperparameters"].pop("max_batches")
    if max_batches:
        conf["hyperparameters"]["max_batches"] = max_batches
    conf["hyperparameters"].update({"global_batch_size": 16, "image_size": 64, "workers": 0,
                                    "learning_rate": {"type": "log", "minval": -3, "maxval": -0.7, "base": 10}})
    conf["searcher"] = {"metric": "accuracy", "smaller_is_better": False, **searcher}
    conf["min_validation_period"] = conf["min_checkpoint_period"] = {"batches": 10}
    conf["reproducibility"] = {"experiment_seed": 11}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def run(platform, path: Path) -> tuple[float, list]:
    """(wall seconds, trials) of one experiment run to its end."""
    start = time.monotonic()
    experiment = platform.training.create_experiment(path)
    while not (e := platform.training.get_experiment(experiment.id)).state.terminal:
        time.sleep(0.5)
    if e.state.value != "completed":
        raise SystemExit(f"{path.name} ended {e.state.value}: {e.error}")
    return time.monotonic() - start, platform.training.list_trials(experiment.id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-time", type=int, default=40)
    parser.add_argument("--divisor", type=float, default=3)
    parser.add_argument("--rungs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--images", type=int, default=600, help="images in the sample (120 to evaluate: a best metric finer than 1/60)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"

    with tempfile.TemporaryDirectory(prefix="dlptui-bench-search-") as tmp:
        os.environ["DLPTUI_HOME"] = str(Path(tmp) / "home")
        from dlptui.actions.datasets import import_sample
        from dlptui.config import load_config
        from dlptui.platform import Platform

        platform = Platform(load_config(profile="local"))
        import_sample(platform.data, count=args.images)
        base = {"max_trials": args.trials, "max_concurrent_trials": args.concurrent}
        random_s, random_trials = run(platform, config(Path(tmp), "random", {"name": "random", **base}, args.max_time))
        print(f"random: {len(random_trials)} trials, {sum(t.batches_done for t in random_trials)} batches, {random_s:.1f} s", flush=True)
        asha = {"name": "adaptive_asha", **base, "time_metric": "batches", "max_time": args.max_time,
                "divisor": args.divisor, "max_rungs": args.rungs, "mode": "aggressive"}
        asha_s, asha_trials = run(platform, config(Path(tmp), "asha", asha))
        print(f"asha:   {len(asha_trials)} trials, {sum(t.batches_done for t in asha_trials)} batches, {asha_s:.1f} s, "
              f"{sum(t.stopped_early for t in asha_trials)} stopped early", flush=True)
        two = {"name": "random", "max_trials": 2}
        together_s, _ = run(platform, config(Path(tmp), "together", {**two, "max_concurrent_trials": 2}, args.max_time * 2))
        alone_s, _ = run(platform, config(Path(tmp), "alone", {**two, "max_concurrent_trials": 1}, args.max_time * 2))
        print(f"two trials at once: {together_s:.1f} s, one at a time: {alone_s:.1f} s", flush=True)
        platform.close()

    best_random = max(t.best_metric for t in random_trials if t.best_metric is not None)
    best_asha = max(t.best_metric for t in asha_trials if t.best_metric is not None)
    print(json.dumps({
        "asha_batches_ratio": round(sum(t.batches_done for t in asha_trials) / sum(t.batches_done for t in random_trials), 3),
        "asha_best_gap": round((best_random - best_asha) / best_random, 4),
        "concurrency_speedup": round(alone_s / together_s, 3),
        "random_best": round(best_random, 4), "asha_best": round(best_asha, 4),
        "random_s": round(random_s, 1), "asha_s": round(asha_s, 1),
        "trials": args.trials, "max_time": args.max_time, "divisor": args.divisor, "rungs": args.rungs,
        "load_average": round(os.getloadavg()[0], 2), "cores": len(os.sched_getaffinity(0)),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
