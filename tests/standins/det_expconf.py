"""How a Determined 0.38.1 master checks a submitted experiment config, for the master stand-in (tests only).

The schemas are Determined's own, read where the shared reference keeps them
(`../shared/reference/determined-0.38.1-expconf-v0/`, 66 files of JSON Schema draft 7, `experiment.json` the
root, `$ref`s naming the others by `$id`); they are never copied into this repository. The steps are those of
the master's CreateExperiment (master/internal/core_experiment.go `parseCreateExperiment`, tag v0.38.1):

1. *sanity*: the config as written against `experiment.json` without `eventuallyRequired` and `eventually`
   (master/pkg/schemas/schema.go `GetSanityValidator`; `additionalProperties: false` everywhere);
2. `resources.slots` refused; a managed experiment needs an `entrypoint`;
3. the master's `checkpoint_storage` merged under the config's (`schemas.Merge`: the config's fields win; a
   different storage type keeps the config's), then the schemas' `default`s and the runtime defaults
   (a name, an experiment seed, the default images);
4. *completeness*: the same schemas with `eventuallyRequired` and `eventually` (`GetCompletenessValidator`);
5. `AssertCurrent` (master/pkg/schemas/expconf/searcher_config.go): `adaptive_asha` and `async_halving`
   need `max_time` and `time_metric`; the EOL searchers are refused.

Determined's keywords beyond draft 7 (master/pkg/schemas/extensions/*.go) are given the same meaning:
`optionalRef` is a `$ref` that lets null through; `union` validates against each item and needs exactly one
to match, and on failure reports the errors of the first item whose `unionKey` (`always`, `never`, `not:`,
`const:K=V`, `singleproperty:K`, `type:T`, `hasattr:K`) holds, else its `defaultMessage`; `checks` maps a
message to a subschema that must match; `compareProperties` (`a<b`, `a<=b`, `a_is_subdir_of_b`) compares two
fields and is silent when they are missing or of the wrong type; `disallowProperties` names refused keys;
`eventuallyRequired` requires keys that are present and not null; `eventually` holds a subschema checked
only for completeness. Errors are rendered as the master does: the leaf errors, sorted, each as
`<config>.path: message`, joined by newlines and wrapped in the master's prefixes. The wording of the standard
keywords' messages is Python jsonschema's, not Go's (docs/contract.md lists that difference).
"""

from __future__ import annotations

import copy
import json
import os
import random
from functools import lru_cache
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "determined-0.38.1-expconf-v0"
BASE = "http://determined.ai/schemas/expconf/v0/"
ROOT = BASE + "experiment.json"
EOL_SEARCHERS = ("sync_halving", "adaptive", "adaptive_simple", "custom")
CPU_IMAGE = CUDA_IMAGE = "determinedai/pytorch-ngc:0.38.1"  # the default images a 0.38.1 master fills in (expconf/const.go)
ROCM_IMAGE = "determinedai/environments:rocm-5.6-pytorch-1.3-tf-2.10-rocm-mpich-0736b6d"


class ConfigError(Exception):
    """What the master answers for an invalid config (its CreateExperiment error, HTTP 500 Internal)."""


@lru_cache(maxsize=1)
def schemas() -> dict[str, dict]:
    """Every schema by its `$id`."""
    folder = SCHEMAS.resolve()
    if not (folder / "experiment.json").is_file():
        raise RuntimeError(f"Determined's expconf schemas are not at {folder}: the master stand-in validates configs against them.")
    found = {}
    for path in sorted(folder.glob("*.json")):
        schema = json.loads(path.read_text())
        found[schema["$id"]] = schema
    return found


# --- Determined's keywords -------------------------------------------------------------------------


def _leaves(errors):
    for error in errors:
        if error.context:
            yield from _leaves(error.context)
        else:
            yield error


def _union_key(key: str, instance) -> bool:
    if key == "always":
        return True
    if key == "never":
        return False
    if key.startswith("not:"):
        return not _union_key(key[4:], instance)
    if key.startswith("const:"):
        name, _, value = key[6:].partition("=")
        return isinstance(instance, dict) and isinstance(instance.get(name), str) and instance[name] == value
    if key.startswith("singleproperty:"):
        return isinstance(instance, dict) and len(instance) == 1 and key[15:] in instance
    if key.startswith("type:"):
        return isinstance(instance, {"array": list, "object": dict}.get(key[5:], ()))
    if key.startswith("hasattr:"):
        return isinstance(instance, dict) and key[8:] in instance
    return False


def _union(validator, union, instance, schema):
    from jsonschema import ValidationError

    selected, valid = None, 0
    for item in union["items"]:
        errors = list(validator.descend(instance, item))
        if not errors:
            valid += 1
        elif selected is None and _union_key(item["unionKey"], instance):
            selected = errors
    if valid == 1:
        return
    if valid > 1:
        yield ValidationError("bug in validation! Multiple schemas matched")
    elif selected:
        yield from _leaves(selected)
    else:
        yield ValidationError(union.get("defaultMessage", "union failed to validate"))


def _optional_ref(validator, ref, instance, schema):
    if instance is not None:
        yield from validator.descend(instance, {"$ref": ref})


def _checks(validator, checks, instance, schema):
    from jsonschema import ValidationError

    for message, subschema in checks.items():
        if any(True for _ in validator.descend(instance, subschema)):
            yield ValidationError(message)


def _compare_properties(validator, compare, instance, schema):
    from jsonschema import ValidationError

    def path(name):
        value = instance
        for key in name.split("."):
            value = value[key]
        return value

    try:
        a, b = path(compare["a"]), path(compare["b"])
        kind = compare["type"]
        if kind in ("a<b", "a<=b"):
            if isinstance(a, bool) or isinstance(b, bool) or not all(isinstance(v, (int, float)) for v in (a, b)):
                return
            if a >= b if kind == "a<b" else a > b:
                yield ValidationError(f"{compare['a']} must be less than {compare['b']}")
        elif kind == "a_is_subdir_of_b":
            a, b = os.path.normpath(a), os.path.normpath(b)
            if (os.path.isabs(a) and not a.startswith(b)) or (not os.path.isabs(a) and a.startswith("..")):
                yield ValidationError(f"{compare['a']} must be a subdirectory of {compare['b']}")
    except (KeyError, TypeError, AttributeError):
        return  # the master's extension recovers from a missing or mistyped field: other keywords report it


def _disallow_properties(validator, disallowed, instance, schema):
    from jsonschema import ValidationError

    if isinstance(instance, dict):
        for name, message in disallowed.items():
            if name in instance:
                yield ValidationError(message)


def _eventually_required(validator, required, instance, schema):
    from jsonschema import ValidationError

    if isinstance(instance, dict):
        for name in required:
            if instance.get(name) is None:
                yield ValidationError(f"{name} is a required property")


def _eventually(validator, subschema, instance, schema):
    yield from validator.descend(instance, subschema)


@lru_cache(maxsize=2)
def _validator_class(complete: bool):
    from jsonschema import Draft7Validator, validators

    keywords = {"union": _union, "optionalRef": _optional_ref, "checks": _checks,
                "compareProperties": _compare_properties, "disallowProperties": _disallow_properties}
    if complete:
        keywords.update(eventuallyRequired=_eventually_required, eventually=_eventually)
    return validators.extend(Draft7Validator, keywords)


def validator(complete: bool, schema_id: str = ROOT):
    from jsonschema import RefResolver

    store = schemas()
    return _validator_class(complete)(store[schema_id], resolver=RefResolver(schema_id, store[schema_id], store=store))


def _render(errors, prefix: str) -> None:
    lines = sorted(
        "<config>" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path) + f": {e.message}"
        for e in _leaves(errors)
    )
    if lines:
        raise ConfigError(prefix + "\n".join(lines))


# --- the master's defaults -------------------------------------------------------------------------


def _resolve(schema, resolver):
    for key in ("$ref", "optionalRef"):
        if isinstance(schema, dict) and key in schema:
            with resolver.resolving(schema[key]) as found:
                return found
    return None


def with_defaults(value, schema, check):
    """`value` with every absent or null field that the schemas give a default filled in (schemas.WithDefaults),
    following `$ref`, `optionalRef`, the `union` item that matches, `if`/`then` and `allOf`."""
    resolver = check.resolver
    if not isinstance(schema, dict) or value is None:
        return value
    target = _resolve(schema, resolver)
    if target is not None:
        value = with_defaults(value, target, check)
        if "$ref" in schema:
            return value
    if "union" in schema:
        for item in schema["union"]["items"]:
            if not any(True for _ in check.descend(value, item)):
                value = with_defaults(value, item, check)
                break
    if "if" in schema and "then" in schema and not any(True for _ in check.descend(value, schema["if"])):
        value = with_defaults(value, schema["then"], check)
    for part in schema.get("allOf", []):
        value = with_defaults(value, part, check)
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if isinstance(sub, dict) and value.get(name) is None and sub.get("default") is not None:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = with_defaults(value[name], sub, check)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in properties:
                    value[name] = with_defaults(value[name], extra, check)
    return value


def merge_storage(mine: dict | None, master: dict) -> dict:
    """schemas.UnionMerge of the config's checkpoint storage over the master's: the config's fields win; a
    storage of another type keeps only the config's, with the master's save_* policy under it."""
    mine = {k: v for k, v in (mine or {}).items() if v is not None}
    common = {k: v for k, v in master.items() if k.startswith("save_")}
    if mine.get("type") not in (None, master.get("type")):
        return {**common, **mine}
    return {**master, **mine}


def runtime_defaults(config: dict) -> dict:
    """What the master's Go types fill in at run time (expconf Name, ReproducibilityConfigV0, EnvironmentImageMapV0)."""
    if config.get("name") is None:
        config["name"] = f"Experiment ({''.join(random.choices('abcdefghijklmnopqrstuvwxyz', k=8))})"
    seed = config.setdefault("reproducibility", {}) or {}
    if seed.get("experiment_seed") is None:
        seed["experiment_seed"] = random.randrange(1 << 31)
    config["reproducibility"] = seed
    environment = config.get("environment") or {}
    image = environment.get("image")
    if isinstance(image, str):
        image = {"cpu": image, "cuda": image, "rocm": image}
    image = image or {}
    environment["image"] = {"cpu": image.get("cpu") or CPU_IMAGE, "cuda": image.get("cuda") or CUDA_IMAGE,
                            "rocm": image.get("rocm") or ROCM_IMAGE}
    config["environment"] = environment
    return config


# --- the whole check -------------------------------------------------------------------------------


def check_config(config, master_storage: dict) -> dict:
    """The config as the master would run it (defaults filled in), or ConfigError with the master's message."""
    if not isinstance(config, dict):
        raise ConfigError("invalid experiment configuration: unable to unmarshal json-formatted experiment config")
    if config.get("version", 0) not in (0, None):
        raise ConfigError(f"invalid experiment configuration: invalid version: {config['version']}")
    sane = validator(complete=False)
    _render(sane.iter_errors(config), "invalid experiment configuration: version 0 experiment config is invalid: config is invalid: ")
    if isinstance(config.get("resources"), dict) and config["resources"].get("slots") is not None:
        raise ConfigError('<config>.resources: additionalProperties "slots" not allowed')
    if config.get("entrypoint") is None:
        raise ConfigError("managed experiments require entrypoint")
    full = copy.deepcopy(config)
    full["checkpoint_storage"] = merge_storage(full.get("checkpoint_storage"), master_storage)
    full = runtime_defaults(with_defaults(full, schemas()[ROOT], sane))
    complete = validator(complete=True)
    _render(complete.iter_errors(full), "invalid experiment configuration: config is invalid or incomplete: ")
    searcher = full["searcher"]
    name = searcher.get("name")
    if name in ("adaptive_asha", "async_halving") and (searcher.get("max_time") is None or searcher.get("time_metric") is None):
        raise ConfigError(f"invalid experiment configuration: the `{name}` searcher requires `max_time` and `time_metric` to be set")
    if name in EOL_SEARCHERS:
        raise ConfigError(f"invalid experiment configuration: the '{name}' searcher has been removed and is not valid for new experiments")
    return full
