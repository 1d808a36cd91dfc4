"""The first run on an empty local platform, as the README's first run does it: the SYNTHETIC sample into
`dogs-and-cats-raw`, the shipped split pipeline making `dogs-and-cats` from it (80/20), then the demo
experiment on the split's commit (`dlptui data sample`, then `dlptui train`)."""

from __future__ import annotations

from dlptui.actions import training
from dlptui.actions.datasets import RAW_SUFFIX, import_sample
from dlptui.actions.defaults import DATA_REPO
from dlptui.errors import NotAvailable, PlatformError


def is_empty(platform) -> bool:
    """No repo and no experiment: the platform has never been used."""
    repos = platform.data.list_repos()
    try:
        experiments = platform.training.list_experiments()
    except PlatformError:  # training not there yet: judge by the data alone
        experiments = []
    return not repos and not experiments


def load_sample(platform) -> str:
    """The sample through the split pipeline into dogs-and-cats, then the demo experiment on it; what happened, in
    two or three sentences."""
    try:
        pipelines = platform.pipelines
    except NotAvailable:  # an install without the pipeline runner: the split committed directly
        pipelines = None
    result = import_sample(platform.data, repo=DATA_REPO, pipelines=pipelines)
    how = (f"The sample is in {DATA_REPO}{RAW_SUFFIX}, and the split pipeline made {result.ref} from it "
           "(press 7 to see it)." if pipelines is not None else f"The sample is in {result.ref}.")
    try:
        experiment = training.start(platform, data=result.ref)
    except PlatformError as e:
        return f"{how} The demo experiment did not start: {e}"
    return f"{how} Demo experiment {experiment.id} started: press 3 to watch it train."
