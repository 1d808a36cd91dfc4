"""The first run on an empty local platform: the sample data set, then the demo experiment on it."""

from __future__ import annotations

from dlptui.actions import training
from dlptui.actions.datasets import import_sample
from dlptui.actions.defaults import DATA_REPO
from dlptui.errors import PlatformError


def is_empty(platform) -> bool:
    """No repo and no experiment: the platform has never been used."""
    repos = platform.data.list_repos()
    try:
        experiments = platform.training.list_experiments()
    except PlatformError:  # training not there yet: judge by the data alone
        experiments = []
    return not repos and not experiments


def load_sample(platform) -> str:
    """The sample into dogs-and-cats, then the demo experiment on it; one or two sentences of what happened."""
    result = import_sample(platform.data, repo=DATA_REPO)
    done = f"The sample is in {result.ref}."
    try:
        experiment = training.start(platform, data=result.ref)
    except PlatformError as e:
        return f"{done} The demo experiment did not start: {e}"
    return f"{done} Demo experiment {experiment.id} started: press 3 to watch it train."
