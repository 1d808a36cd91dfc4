"""`dlptui canary` and `dlptui pipeline loop`: the loop from a data commit to a promoted version, with the gate in it.

    dlptui pipeline loop on|off|status      retrain on commit + the canary pipeline (off: the canary pipeline stopped)
    dlptui canary EXPERIMENT [--deployment NAME] [--model M] [--traffic P] [--gate auto|FILE] [--job J] [--json]
                                            wait for the experiment, register its best checkpoint, make it a gated
                                            canary of the deployment that serves the model (what the loop's datum runs)
"""

from __future__ import annotations

from dlptui.actions.defaults import MODEL
from dlptui.cli.completers import deployment_names, experiment_ids
from dlptui.cli.output import emit_json, say


def register(sub) -> None:
    c = sub.add_parser("canary", help="register an experiment's best checkpoint once it completes and make it a gated "
                       "canary of the deployment that serves the model (what the loop pipeline runs)")
    c.add_argument("experiment", metavar="EXPERIMENT").completer = experiment_ids
    c.add_argument("--deployment", help="the deployment (default: the one that serves the model)").completer = deployment_names
    c.add_argument("--model", default=MODEL, help=f"the model to register it as (default {MODEL})")
    c.add_argument("--traffic", type=int, default=10, metavar="PERCENT", help="the canary's first share (default 10)")
    c.add_argument("--gate", default="auto", metavar="auto|FILE",
                   help="the gate where the deployment has none: auto (default) or a .toml or .yaml policy file")
    c.add_argument("--job", default="", help="the pipeline job that runs it (recorded with the version and the canary)")
    c.add_argument("--json", action="store_true", help="print a JSON object")
    c.set_defaults(func=canary)


def register_verb(verbs) -> None:
    """`pipeline loop on|off|status`, under the pipeline noun."""
    v = verbs.add_parser("loop", help="the loop: each new split commit trains the demo model, and each trained model "
                         "becomes a gated canary of the deployment that serves it (on, off, status)")
    v.add_argument("switch", choices=("on", "off", "status"), metavar="on|off|status")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=loop)


def canary(args, platform) -> int:
    from dlptui.actions import loop as actions

    released = actions.release(platform, args.experiment, model=args.model, deployment=args.deployment,
                               traffic=args.traffic, gate=args.gate, job=args.job)
    if args.json:
        emit_json(released.to_json())
    else:
        say(released.sentence)
    return 0


def loop(args, platform) -> int:
    from dlptui.actions import loop as actions

    if args.switch == "on":
        sentence = actions.turn_on(platform.pipelines)
    elif args.switch == "off":
        sentence = actions.turn_off(platform.pipelines)
    else:
        sentence = (f"The loop is {'on' if actions.is_on(platform.pipelines) else 'off'} "
                    f"(pipeline {actions.CANARY_PIPELINE}; `dlptui pipeline loop on|off`).")
    if args.json:
        emit_json({"on": actions.is_on(platform.pipelines), "sentence": sentence})
    else:
        say(sentence)
    return 0
