"""The names the reference workflow uses when the user gives none, in one place for both faces."""

from __future__ import annotations

from pathlib import Path

from dlptui import resources
from dlptui.platform import rules

DATA_REPO = "dogs-and-cats"  # the split data set (train/, eval/)
DATA_BRANCH = rules.DEFAULT_BRANCH
MODEL = "dogcat-model"
DEPLOYMENT = "dogcat-deploy"
CANARY_TRAFFIC = rules.DEFAULT_CANARY_SHARE  # percent of the requests a new canary takes unless told otherwise


def demo_config() -> Path:
    """The demo experiment's config: the first run and `dlptui train` without --config."""
    return resources.demo_config()
