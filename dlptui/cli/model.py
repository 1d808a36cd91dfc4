"""`dlptui model ...`: the registry. List models and versions, register, promote, audit history.

    dlptui model list
    dlptui model versions [MODEL]          (also `model MODEL`)
    dlptui model register --experiment ID [--trial ID | --checkpoint UUID] [--model NAME] [--notes TEXT]
    dlptui model promote MODEL VERSION --to staging|production
    dlptui model history [MODEL]
"""

from __future__ import annotations

from dlptui.actions import registry
from dlptui.actions.defaults import MODEL
from dlptui.cli.completers import experiment_ids, model_names
from dlptui.cli.output import emit_done, emit_table
from dlptui.platform.model import ALIASES
from dlptui.render import registry as render


def register(sub) -> None:
    p = sub.add_parser("model", aliases=["m"], help="registered models: list, versions, register, promote, history")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, func, help: str):
        v = verbs.add_parser(name, help=help)
        v.add_argument("--json", action="store_true", help="print JSON")
        v.set_defaults(func=func)
        return v

    verb("list", list_models, "the models, their version counts and aliases")
    v = verb("versions", list_versions, "the versions of a model")
    v.add_argument("model", nargs="?", default=MODEL, help=f"default {MODEL}").completer = model_names
    r = verb("register", register_version, "a new version from an experiment's best (or chosen) checkpoint")
    r.add_argument("--experiment", required=True, help="the experiment id").completer = experiment_ids
    which = r.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", help="a checkpoint uuid of that experiment (default: the best checkpoint of its best trial)")
    which.add_argument("--trial", help="a trial of that experiment: its best checkpoint by the searcher metric (see `dlptui trials ID`)")
    r.add_argument("--model", default=MODEL, help=f"the model name (created on first register; default {MODEL})")
    r.add_argument("--notes", default="", help="a note kept with the version")
    pr = verb("promote", promote, "point an alias (staging, production) at a version")
    pr.add_argument("model").completer = model_names
    pr.add_argument("version", type=int)
    pr.add_argument("--to", required=True, choices=ALIASES, dest="alias")
    h = verb("history", history, "every promotion of a model: who moved which alias from which version to which")
    h.add_argument("model", nargs="?", default=MODEL, help=f"default {MODEL}").completer = model_names


def list_models(args, platform) -> int:
    emit_table(platform.registry.list_models(), render.MODEL_COLUMNS, args.json)
    return 0


def list_versions(args, platform) -> int:
    emit_table(platform.registry.list_versions(args.model), render.VERSION_COLUMNS, args.json, title=args.model)
    return 0


def register_version(args, platform) -> int:
    version = registry.register(platform, args.model, args.experiment, args.checkpoint, notes=args.notes, trial_id=args.trial)
    return emit_done(version, registry.registered(version), args.json)


def promote(args, platform) -> int:
    promotion = registry.promote(platform, args.model, args.version, args.alias)
    return emit_done(promotion, registry.promoted(promotion), args.json)


def history(args, platform) -> int:
    emit_table(platform.registry.history(args.model), render.PROMOTION_COLUMNS, args.json, title=f"promotions of {args.model}")
    return 0
