"""Train the Dogs-vs-Cats trial with Determined's PyTorch Trainer.

    python train.py local.yaml        # on this machine, no master (Determined's local mode)
    entrypoint: python3 train.py      # on a Determined cluster (const.yaml)

On a cluster the hyperparameters, the config and the checkpoint to continue from come from
the cluster (`det.get_cluster_info()`); off a cluster they come from the YAML file.
dlptui's local Training calls `run` in a child process, with a callback that records the
metrics and a checkpoint to resume from.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable

from settings import SettingsError, load_config, periods

REPORT_EVERY = 10  # batches between training-metric reports (and chances to stop)


def allow_checkpoint_globals() -> None:
    """The types a checkpoint's state_dict.pth holds beyond tensors (`model_def.checkpoint_globals`: numpy's RNG
    state), allowed for torch's weights-only loading in this process, as Determined's resume loads it: nothing else
    in a checkpoint may run code on load (instead of TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD for the whole process)."""
    import torch

    from model_def import checkpoint_globals

    torch.serialization.add_safe_globals(checkpoint_globals())


def relative(every: int, total: int, start: int, last: bool = False):
    """Determined's local Trainer counts periods from the batch it resumed at, not from zero
    (off a cluster it starts with steps_completed 0). So after a resume at `start` the same
    absolute boundaries are handed over as a list of batches counted from there. With `last`,
    `total` itself is a boundary too (the end of a search rung)."""
    from determined.pytorch import Batch

    if start == 0 and (not last or total % every == 0):
        return Batch(every)
    points = {b - start for b in range(every, total + 1, every) if b > start}
    if last:
        points.add(total - start)
    return Batch(sorted(points))


def seed_everything(seed: int | None) -> None:
    """Off a cluster Determined seeds nothing; the config's reproducibility.experiment_seed does it here."""
    if seed is None:
        return
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run(
    conf: dict[str, Any],
    latest_checkpoint: str | None = None,
    start_batch: int = 0,
    callbacks: dict | None = None,
    on_context: Callable[[Any], None] | None = None,
    stop_at: int | None = None,
) -> None:
    """Train until the config's length (or `stop_at`, the end of a search rung, with a validation and a
    checkpoint there), or until the context is asked to stop."""
    import determined as det
    from determined.pytorch import Batch

    from model_def import DogCatTrial

    info = det.get_cluster_info()
    on_cluster = info is not None and info.task_type == "TRIAL"
    if on_cluster:
        conf, hparams, latest_checkpoint, start_batch = info.trial._config, info.trial.hparams, info.latest_checkpoint, 0
    else:
        hparams = conf["hyperparameters"]
        seed_everything((conf.get("reproducibility") or {}).get("experiment_seed"))
        if latest_checkpoint:
            allow_checkpoint_globals()  # torch loads Determined's state with weights_only, these types allowed
    total, validation, checkpoint = periods(conf)
    rung = stop_at is not None and stop_at < total
    if stop_at is not None:
        total = min(total, stop_at)
    report = min(validation, REPORT_EVERY)
    with det.pytorch.init(hparams=hparams, exp_conf=conf, enable_tensorboard_logging=on_cluster) as context:
        if on_context:
            on_context(context)
        trial = DogCatTrial(context, callbacks)
        warm = conf.get("warm_start") if not on_cluster else None
        if warm and not latest_checkpoint:
            warm_start(trial, warm)
        trainer = det.pytorch.Trainer(trial, context)
        if on_cluster:
            trainer.fit(
                max_length=Batch(total),
                validation_period=Batch(validation),
                checkpoint_period=Batch(checkpoint),
                reporting_period=Batch(report),
                latest_checkpoint=latest_checkpoint,
            )
        else:
            trainer.fit(
                max_length=Batch(total),
                validation_period=relative(validation, total, start_batch, last=rung),
                checkpoint_period=relative(checkpoint, total, start_batch, last=rung),
                reporting_period=relative(report, total, start_batch, last=True),
                checkpoint_policy="all",
                latest_checkpoint=latest_checkpoint,
            )


def warm_start(trial, folder: str) -> None:
    """Start from the weights of another checkpoint (a registered version, a checkpoint of another
    experiment): its model only; the batches count from 0 and the optimizer starts fresh, as
    Determined's warm start does with searcher.source_checkpoint_uuid. Loaded weights-only: a
    checkpoint holding anything but tensors and Determined's RNG state is refused, nothing in it runs."""
    import pickle

    from model_def import load_state

    path = os.path.join(folder, "state_dict.pth")
    try:
        state = load_state(path)
        trial.model.load_state_dict(state["models_state_dict"][0])
    except FileNotFoundError:
        raise SettingsError(f"The checkpoint to start from has no state_dict.pth in {folder}; give another checkpoint.") from None
    except pickle.UnpicklingError:
        raise SettingsError(
            f"The checkpoint to start from in {folder} holds more than weights (an object whose loading would run "
            "code), so it is not loaded; start from a checkpoint that training wrote."
        ) from None
    except (RuntimeError, KeyError, IndexError, TypeError) as e:
        raise SettingsError(f"The checkpoint to start from does not fit this model ({type(e).__name__}); use the same backbone.") from None
    logging.getLogger("dlptui.trial").info("Warm start from the weights of %s.", folder)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    try:
        conf = load_config(args[0] if args else "const.yaml")
    except SettingsError as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 2
    run(conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
