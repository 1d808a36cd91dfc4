"""The home's background processes, for both faces: what `dlptui status` lists and `dlptui stop` stops.

`stop(platform, serving)`: the gate runner (no canary moves meanwhile), the pipeline runner and its datums first (no retrain starts a training meanwhile),
then every queued or running experiment is paused through the training part (it checkpoints; `dlptui experiment
resume ID` continues it), and with `serving` the model servers and Envoys. Pipelines resume by themselves: the
next command that looks at them starts their runner again.
"""

from __future__ import annotations

from dlptui.errors import Conflict, NotAvailable, PlatformError, ReadOnlyError
from dlptui.platform.model import BackgroundProcess, ExperimentState


def listing(platform) -> list[BackgroundProcess]:
    return platform.background()


def stop(platform, serving: bool = False) -> list[str]:
    """What was stopped or paused, one sentence each."""
    if platform.config.read_only:
        raise ReadOnlyError("dlptui runs read-only (--read-only or DLPTUI_READ_ONLY), and `stop` changes the platform; "
                            "run it without --read-only.")
    from dlptui.platform import gate_runner

    done = gate_runner.stop(platform.config)  # first: no gate moves a canary while the rest stops
    done += platform.stop_background(serving=serving)
    try:
        experiments = platform.training.list_experiments()
    except (NotAvailable, PlatformError):
        experiments = []
    for experiment in experiments:
        if experiment.state not in (ExperimentState.QUEUED, ExperimentState.RUNNING):
            continue
        try:
            platform.training.pause(experiment.id)
        except Conflict:  # it ended or was paused meanwhile
            continue
        done.append(f"Paused experiment {experiment.id} at a checkpoint; `dlptui experiment resume {experiment.id}` continues it.")
    return done
