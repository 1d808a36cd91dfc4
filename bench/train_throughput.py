"""Training throughput of the local Training part against a plain PyTorch loop, in one run.

    .venv/bin/python bench/train_throughput.py [--backbone tiny] [--image-size 160] [--batch-size 32] [--batches 60]

Both train the same model (trial/model_def.py's build_model) on the same images (the
SYNTHETIC sample, committed to a throw-away local store) with the same DataLoader settings
and batch size. The local Training part runs Determined's Trainer in its child process and
records every batch's loss in SQLite; its images/s come from the times of its metric
reports. The plain loop is timed the same way: from the end of the first report period
(warm-up: worker start, first batches) to the last batch. The runs alternate (plain, local,
plain, ...) and each side's best run counts: on a shared machine a run is only ever slowed
down by others, so the best one is the closest to what the code itself can do. The median
ratio of each local run to the mean of its two neighbouring plain runs is printed too.
Note the plain loop restarts its loader at each epoch (the sample has 240 training images),
while Determined's repeating sampler streams across epochs.

The last line is one JSON object: {"throughput_ratio": local / plain, ...}; the target is >= 0.9.
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


def hyperparameters(args) -> dict:
    return {
        "backbone": args.backbone,
        "pretrained": args.backbone != "tiny",
        "freeze_backbone": args.backbone != "tiny",
        "learning_rate": 0.01,
        "global_batch_size": args.batch_size,
        "image_size": args.image_size,
        "workers": args.workers,
    }


def plain_loop(data_dir: Path, hp: dict, batches: int) -> float:
    """Images per second of a hand-written loop over the trial's model, data and optimizer settings."""
    import torch
    from torch.nn import functional as F
    from torch.utils.data import DataLoader

    from data import DogCatImages
    from model_def import build_model, train_transform

    torch.manual_seed(7)
    model = build_model(hp).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=hp["learning_rate"],
                                momentum=0.9, weight_decay=1e-4, nesterov=True)
    loader = DataLoader(DogCatImages(data_dir, "train", train_transform(hp)), batch_size=hp["global_batch_size"],
                        shuffle=True, num_workers=hp["workers"], persistent_workers=hp["workers"] > 0, drop_last=False)
    done, start = 0, None
    while done < batches:
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the Trainer reads each loss too
            done += 1
            if done == WARMUP:
                start = time.perf_counter()
            if done == batches:
                break
    return (batches - WARMUP) * hp["global_batch_size"] / (time.perf_counter() - start)


def local_training(platform, config: Path, hp: dict, batches: int) -> float:
    """Images per second of the local Training part, from the times of its training-metric reports."""
    experiment = platform.training.create_experiment(config)
    while not (experiment := platform.training.get_experiment(experiment.id)).state.terminal:
        time.sleep(0.5)
    if experiment.state.value != "completed":
        raise SystemExit(f"the local run ended {experiment.state.value}: {experiment.error}")
    points, _ = platform.training.metrics(experiment.id)
    reported = {p.batch: p.time for p in points if p.group == "training" and p.name == "loss"}
    return (batches - WARMUP) * hp["global_batch_size"] / (reported[batches] - reported[WARMUP])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="tiny", choices=("tiny", "efficientnet_lite0"))
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="local runs; the plain loop runs one more time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both (OMP_NUM_THREADS); 1 keeps a shared machine's noise down")
    args = parser.parse_args()
    if args.batches % WARMUP or args.batches <= WARMUP:
        parser.error(f"--batches must be a multiple of {WARMUP} above {WARMUP}")

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch loads, here and in the child
    import yaml

    with tempfile.TemporaryDirectory(prefix="dlptui-bench-") as tmp:
        os.environ["DLPTUI_HOME"] = str(Path(tmp) / "home")
        from dlptui.config import load_config
        from dlptui.platform import Platform
        from dlptui.actions.datasets import import_sample, materialize

        platform = Platform(load_config(profile="local"))
        ref = import_sample(platform.data).ref
        data_dir = materialize(platform.data, ref, Path(tmp) / "data")
        hp = hyperparameters(args)
        conf = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
        conf["hyperparameters"] = hp
        conf["hyperparameters"]["max_batches"] = args.batches
        conf["min_validation_period"] = conf["min_checkpoint_period"] = {"batches": args.batches}
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(conf))

        plains, locals_ = [plain_loop(data_dir, hp, args.batches)], []
        print(f"plain loop:      {plains[-1]:8.1f} images/s", flush=True)
        for _ in range(args.rounds):
            locals_.append(local_training(platform, config, hp, args.batches))
            print(f"local Training:  {locals_[-1]:8.1f} images/s", flush=True)
            plains.append(plain_loop(data_dir, hp, args.batches))
            print(f"plain loop:      {plains[-1]:8.1f} images/s", flush=True)
        platform.close()

    local, plain = max(locals_), max(plains)
    # each local run against the plain runs just before and after it: less sensitive to a slow spell
    pairs = sorted(l / ((plains[i] + plains[i + 1]) / 2) for i, l in enumerate(locals_))
    print(json.dumps({
        "throughput_ratio": round(local / plain, 3),
        "median_neighbour_ratio": round(pairs[len(pairs) // 2], 3),
        "local_images_per_s": round(local, 1),
        "plain_images_per_s": round(plain, 1),
        "backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
        "batches": args.batches, "rounds": args.rounds, "threads": args.threads, "load_average": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
