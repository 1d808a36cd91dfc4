"""Where the files dlptui ships live: the trial, the model server, the infra templates.

They are package data: `pyproject.toml` maps the checkout's top-level `trial/`, `serving/`
and `infra/` folders to the packages `dlptui.trial`, `dlptui.serving` and `dlptui.infra`, so
a wheel carries them inside `dlptui/` and an editable install points at the checkout. This
module asks the import system where those packages are (never a walk up from a file), and
one environment variable each overrides the answer:

    DLPTUI_TRIAL_DIR     the Determined trial (train.py, model_def.py, the *.yaml configs)
    DLPTUI_SERVING_DIR   the Seldon model class (dogcat_model.py) and its image files
    DLPTUI_INFRA_DIR     infra/: Helm values, the SeldonDeployment template, scripts
    DLPTUI_PIPELINES_DIR pipelines/: pipeline specs in Pachyderm's format (the Dogs-vs-Cats split)
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from dlptui.errors import NotAvailable

ENV = {"trial": "DLPTUI_TRIAL_DIR", "serving": "DLPTUI_SERVING_DIR", "infra": "DLPTUI_INFRA_DIR",
       "pipelines": "DLPTUI_PIPELINES_DIR"}
DEMO_CONFIG = "local.yaml"  # the demo experiment of the first run and of `dlptui train`
SELDON_TEMPLATE = ("seldon", "deployment.yaml.tmpl")


def folder(name: str, env: Mapping[str, str] = os.environ) -> Path:
    """The shipped folder `name` ("trial", "serving" or "infra"); its env variable wins."""
    override = env.get(ENV[name])
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise NotAvailable(f"{ENV[name]} is {override}, which is not a folder; point it at dlptui's {name}/ folder.")
        return path
    spec = importlib.util.find_spec(f"dlptui.{name}")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise NotAvailable(f"dlptui's {name}/ folder is not installed with it; reinstall dlptui or set {ENV[name]}.")
    return Path(locations[0])


def trial_dir() -> Path:
    return folder("trial")


def serving_dir() -> Path:
    return folder("serving")


def infra_dir() -> Path:
    return folder("infra")


def pipelines_dir() -> Path:
    """The shipped pipeline specs (Pachyderm's format), e.g. the Dogs-vs-Cats split."""
    return folder("pipelines")


def demo_config() -> Path:
    return trial_dir() / DEMO_CONFIG


def trial_configs() -> list[Path]:
    """The experiment configs shipped with the trial, by name."""
    return sorted(trial_dir().glob("*.yaml"))


def seldon_template() -> Path:
    return infra_dir().joinpath(*SELDON_TEMPLATE)
