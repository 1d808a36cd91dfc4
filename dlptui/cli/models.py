"""`dlptui models`: the registry. List models and versions, register, promote, audit history."""

from __future__ import annotations

import argparse

from dlptui.cli.output import emit_object, emit_table, human_time
from dlptui.errors import NotAvailable
from dlptui.platform.model import ALIASES

DEFAULT_MODEL = "dogcat-model"


def require_writable(platform, action: str) -> None:
    """Refuse a command that changes the platform when dlptui runs read-only."""
    if platform.config.read_only:
        raise NotAvailable(f"dlptui runs read-only, and {action} changes the platform; run it without --read-only.")


def register(sub) -> None:
    p = sub.add_parser("models", help="registered models, their versions, aliases and promotions")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=list_models)
    verbs = p.add_subparsers(dest="models_command", metavar="VERB")
    # a verb's --json leaves `models --json VERB` alone when it is not given (SUPPRESS)

    v = verbs.add_parser("versions", help="the versions of a model")
    v.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    v.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print a JSON array")
    v.set_defaults(func=list_versions)

    r = verbs.add_parser("register", help="a new version from an experiment's best (or chosen) checkpoint")
    r.add_argument("--experiment", required=True, help="the experiment id")
    r.add_argument("--checkpoint", help="a checkpoint uuid of that experiment (default: its best by validation accuracy)")
    r.add_argument("--model", default=DEFAULT_MODEL, help=f"the model name (created on first register; default {DEFAULT_MODEL})")
    r.add_argument("--notes", default="", help="a note kept with the version")
    r.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print a JSON object")
    r.set_defaults(func=register_version)

    pr = verbs.add_parser("promote", help="point an alias (staging, production) at a version")
    pr.add_argument("model")
    pr.add_argument("version", type=int)
    pr.add_argument("--to", required=True, choices=ALIASES, dest="alias")
    pr.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print a JSON object")
    pr.set_defaults(func=promote)

    h = verbs.add_parser("history", help="every promotion of a model: who moved which alias from which version to which")
    h.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    h.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print a JSON array")
    h.set_defaults(func=history)


def list_models(args, platform) -> int:
    columns = [
        ("MODEL", lambda m: m.name),
        ("VERSIONS", lambda m: m.versions),
        ("STAGING", lambda m: m.aliases.get("staging")),
        ("PRODUCTION", lambda m: m.aliases.get("production")),
        ("CREATED", lambda m: human_time(m.created)),
    ]
    emit_table(platform.registry.list_models(), columns, args.json)
    return 0


def _metric(v, *names: str):
    for name in names:
        if name in v.metrics:
            return f"{v.metrics[name]:.4f}"
    return None


def list_versions(args, platform) -> int:
    columns = [
        ("VERSION", lambda v: v.version),
        ("ALIASES", lambda v: ", ".join(v.aliases) or None),
        ("ACCURACY", lambda v: _metric(v, "validation_accuracy", "accuracy")),
        ("VAL LOSS", lambda v: _metric(v, "validation_loss")),
        ("EXPERIMENT", lambda v: v.experiment_id),
        ("DATA", lambda v: f"{v.data_repo}@{v.data_commit[:12]}" if v.data_repo and v.data_commit else None),
        ("CHECKPOINT", lambda v: v.checkpoint_uuid),
        ("CREATED", lambda v: human_time(v.created)),
    ]
    emit_table(platform.registry.list_versions(args.model), columns, args.json, title=args.model)
    return 0


def register_version(args, platform) -> int:
    require_writable(platform, "registering a version")
    version = platform.registry.register(args.model, args.experiment, args.checkpoint, notes=args.notes)
    if args.json:
        emit_object(version, True)
    else:
        print(f"Registered {version} from checkpoint {version.checkpoint_uuid} of experiment {version.experiment_id}.")
    return 0


def promote(args, platform) -> int:
    require_writable(platform, "promoting a version")
    promotion = platform.registry.promote(args.model, args.version, args.alias)
    if args.json:
        emit_object(promotion, True)
    else:
        before = f"version {promotion.from_version}" if promotion.from_version is not None else "no version"
        print(f"{args.model}: {args.alias} moved from {before} to version {promotion.to_version}.")
    return 0


def history(args, platform) -> int:
    columns = [
        ("TIME", lambda p: human_time(p.time)),
        ("ALIAS", lambda p: p.alias),
        ("FROM", lambda p: p.from_version),
        ("TO", lambda p: p.to_version),
        ("WHO", lambda p: p.who),
    ]
    emit_table(platform.registry.history(args.model), columns, args.json, title=f"promotions of {args.model}")
    return 0
