"""Training throughput of the local Training part against a plain PyTorch loop, in one run, for two models.

    .venv/bin/python bench/train_throughput.py [--only tiny|demo] [--rounds 3] [--demo-rounds 2]

Two cases, each measured the same way in this one process:

- `tiny`: the tests' tiny CNN (trial/tiny.yaml) at --image-size 160, --batch-size 32, --workers 2,
  --batches 50;
- `demo`: the demo model exactly as `dlptui train` runs it (trial/local.yaml: efficientnet-lite0 from
  ImageNet, frozen backbone, 224 pixels, batch 16, 2 workers), --demo-batches 30.

Both sides train the same model (trial/model_def.py's build_model), with the trial's optimizer
settings, on the same images (the SYNTHETIC sample, committed to a throw-away local store), with the
same batch size and workers, and both stream: the plain loop builds the trial's own
`determined.pytorch.DataLoader` once and iterates `get_data_loader(repeat=True)` across epochs, which
is what Determined's Trainer does with the trial's training loader (a repeating batch sampler over one
DataLoader, its workers kept). The local Training part runs Determined's Trainer in its child process
and records every batch's loss in SQLite; its images/s come from the times of its metric reports. The
plain loop is timed the same way: from the end of the first report period (warm-up: worker start,
first batches) to the last batch. The runs alternate (plain, local, plain, ...) and each side's best run
counts: on a shared machine a run is only ever slowed down by others, so the best one is the closest to
what the code itself can do. The median ratio of each local run to the mean of its two neighbouring
plain runs is printed too.

The last line is one JSON object: {"throughput_ratio": local / plain for tiny, "demo_throughput_ratio":
the same for the demo model, ...}; the target is >= 0.9 for both.
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

TRIAL = resources.trial_dir()  # the trial dlptui ships (DLPTUI_TRIAL_DIR overrides it)
sys.path.insert(0, str(TRIAL))

WARMUP = 10  # batches: the first report period of the Trainer (train.REPORT_EVERY)


def case_config(name: str, args) -> dict:
    """The experiment config of a case: trial/tiny.yaml with the bench's sizes, or trial/local.yaml as shipped."""
    import yaml

    if name == "tiny":
        conf = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
        conf["hyperparameters"].update(image_size=args.image_size, global_batch_size=args.batch_size,
                                       workers=args.workers, max_batches=args.batches)
    else:
        conf = yaml.safe_load((TRIAL / "local.yaml").read_text())
        conf["hyperparameters"]["max_batches"] = args.demo_batches
    batches = conf["hyperparameters"]["max_batches"]
    conf["min_validation_period"] = conf["min_checkpoint_period"] = {"batches": batches}
    return conf


def plain_loop(data_dir: Path, hp: dict, batches: int) -> float:
    """Images per second of a hand-written loop over the trial's model, data loader and optimizer settings,
    streaming one loader across epochs as Determined's Trainer does."""
    import torch
    from determined.pytorch import DataLoader
    from torch.nn import functional as F

    from data import DogCatImages
    from model_def import build_model, train_transform

    torch.manual_seed(7)
    model = build_model(hp).train()
    momentum = float(hp["momentum"])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=float(hp["learning_rate"]),
                                momentum=momentum, weight_decay=float(hp["weight_decay"]),
                                nesterov=bool(hp["nesterov"]) and momentum > 0)
    workers = int(hp["workers"])
    # the trial's build_training_data_loader (model_def.DogCatTrial._loader), and what the Trainer makes of it
    loader = DataLoader(DogCatImages(data_dir, "train", train_transform(hp)), batch_size=int(hp["global_batch_size"]),
                        shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    stream = iter(loader.get_data_loader(repeat=True))
    start = None
    for done in range(1, batches + 1):
        images, labels = next(stream)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the Trainer reads each loss too
        if done == WARMUP:
            start = time.perf_counter()
    elapsed = time.perf_counter() - start
    del stream  # its workers end with it
    return (batches - WARMUP) * int(hp["global_batch_size"]) / elapsed


def local_training(platform, config: Path, hp: dict, batches: int) -> float:
    """Images per second of the local Training part, from the times of its training-metric reports."""
    experiment = platform.training.create_experiment(config)
    while not (experiment := platform.training.get_experiment(experiment.id)).state.terminal:
        time.sleep(0.5)
    if experiment.state.value != "completed":
        raise SystemExit(f"the local run ended {experiment.state.value}: {experiment.error}")
    points, _ = platform.training.metrics(experiment.id)
    reported = {p.batch: p.time for p in points if p.group == "training" and p.name == "loss"}
    return (batches - WARMUP) * int(hp["global_batch_size"]) / (reported[batches] - reported[WARMUP])


def measure(name: str, platform, data_dir: Path, tmp: Path, args, rounds: int) -> dict:
    import yaml

    conf = case_config(name, args)
    hp, batches = conf["hyperparameters"], conf["hyperparameters"]["max_batches"]
    if batches % WARMUP or batches <= WARMUP:
        raise SystemExit(f"{name}: the number of batches must be a multiple of {WARMUP} above {WARMUP}, not {batches}")
    config = tmp / f"bench-{name}.yaml"
    config.write_text(yaml.safe_dump(conf))
    plains, locals_ = [plain_loop(data_dir, hp, batches)], []
    print(f"{name:5} plain loop:      {plains[-1]:8.1f} images/s", flush=True)
    for _ in range(rounds):
        locals_.append(local_training(platform, config, hp, batches))
        print(f"{name:5} local Training:  {locals_[-1]:8.1f} images/s", flush=True)
        plains.append(plain_loop(data_dir, hp, batches))
        print(f"{name:5} plain loop:      {plains[-1]:8.1f} images/s", flush=True)
    local, plain = max(locals_), max(plains)
    # each local run against the plain runs just before and after it: less sensitive to a slow spell
    pairs = sorted(run / ((plains[i] + plains[i + 1]) / 2) for i, run in enumerate(locals_))
    return {
        "throughput_ratio": round(local / plain, 3),
        "median_neighbour_ratio": round(pairs[len(pairs) // 2], 3),
        "local_images_per_s": round(local, 1),
        "plain_images_per_s": round(plain, 1),
        "backbone": hp["backbone"], "image_size": hp["image_size"], "batch_size": hp["global_batch_size"],
        "workers": hp["workers"], "batches": batches, "rounds": rounds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("tiny", "demo"), help="measure one case only")
    parser.add_argument("--image-size", type=int, default=160, help="tiny: image size")
    parser.add_argument("--batch-size", type=int, default=32, help="tiny: batch size")
    parser.add_argument("--batches", type=int, default=50, help="tiny: batches per run")
    parser.add_argument("--workers", type=int, default=2, help="tiny: loader workers")
    parser.add_argument("--rounds", type=int, default=3, help="tiny: local runs; the plain loop runs one more time")
    parser.add_argument("--demo-batches", type=int, default=30, help="demo: batches per run (trial/local.yaml: 30)")
    parser.add_argument("--demo-rounds", type=int, default=2, help="demo: local runs; the plain loop runs one more time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both (OMP_NUM_THREADS); 1 keeps a shared machine's noise down")
    args = parser.parse_args()

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch loads, here and in the child
    load_before = round(os.getloadavg()[0], 2)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dlptui-bench-") as tmp:
        os.environ["DLPTUI_HOME"] = str(Path(tmp) / "home")
        from dlptui.actions.datasets import import_sample, materialize
        from dlptui.config import load_config
        from dlptui.platform import Platform

        platform = Platform(load_config(profile="local"))
        try:
            ref = import_sample(platform.data).ref
            data_dir = materialize(platform.data, ref, Path(tmp) / "data")
            for name, rounds in (("tiny", args.rounds), ("demo", args.demo_rounds)):
                if args.only in (None, name):
                    results[name] = measure(name, platform, data_dir, Path(tmp), args, rounds)
        finally:
            platform.close()

    summary: dict = {}
    if "tiny" in results:
        summary["throughput_ratio"] = results["tiny"]["throughput_ratio"]
    if "demo" in results:
        summary["demo_throughput_ratio"] = results["demo"]["throughput_ratio"]
    summary.update(results)
    summary.update(threads=args.threads, load_average_before=load_before, load_average_after=round(os.getloadavg()[0], 2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
