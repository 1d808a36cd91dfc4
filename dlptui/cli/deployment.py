"""`dlptui deploy`, `undeploy`, `predict` and `dlptui deployment ...`: model versions behind an endpoint.

    dlptui deploy MODEL[@VERSION|@ALIAS] [--name NAME] [--canary VERSION --traffic PERCENT] [--wait]
    dlptui undeploy NAME [--yes]            asks on a terminal
    dlptui predict IMAGE... [--deployment NAME]
    dlptui deployment list
    dlptui deployment describe NAME [--lines N]   (also `deployment NAME`) with the last lines of its log
    dlptui deployment logs NAME [--lines N]
"""

from __future__ import annotations

import sys

from dlptui import text
from dlptui.actions import predict as predicting
from dlptui.actions import refs, serving
from dlptui.actions.defaults import CANARY_TRAFFIC, DEPLOYMENT
from dlptui.cli.completers import deployment_names, model_names
from dlptui.cli.output import confirm, emit_json, emit_object, emit_table
from dlptui.platform.model import DeploymentState, to_dict


def register(sub) -> None:
    d = sub.add_parser("deploy", help="serve a model version (or move a deployment to it, without downtime)")
    d.add_argument("target", metavar="MODEL[@VERSION|@ALIAS]", help="e.g. dogcat-model@production (no @: the latest version)").completer = model_names
    d.add_argument("--name", default=DEPLOYMENT, help=f"the deployment (default {DEPLOYMENT})")
    d.add_argument("--canary", metavar="VERSION", help="a second version of the same model taking --traffic percent")
    d.add_argument("--traffic", type=int, default=CANARY_TRAFFIC, metavar="PERCENT",
                   help=f"the canary's share (default {CANARY_TRAFFIC}; 0 removes it)")
    d.add_argument("--wait", action="store_true", help="return once the deployment is available (or failed)")
    d.add_argument("--timeout", type=float, default=300.0, help="how long --wait waits, in seconds (default 300)")
    d.add_argument("--json", action="store_true", help="print a JSON object")
    d.set_defaults(func=deploy)

    u = sub.add_parser("undeploy", help="stop a deployment and every process it runs (asks first)")
    u.add_argument("name").completer = deployment_names
    u.add_argument("--yes", action="store_true", help="do not ask")
    u.add_argument("--json", action="store_true", help="print a JSON object")
    u.set_defaults(func=undeploy)

    p = sub.add_parser("predict", help="classify images with a deployment")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG files")
    p.add_argument("--deployment", default=DEPLOYMENT, help=f"default {DEPLOYMENT}").completer = deployment_names
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per image")
    p.set_defaults(func=predict)

    dp = sub.add_parser("deployment", aliases=["dp"], help="deployments: list, describe, logs")
    verbs = dp.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser("list", help="the deployments, their versions, endpoints and states")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.set_defaults(func=list_deployments)
    for name, func, help in (("describe", describe, "one deployment with the last lines of its log"),
                             ("logs", logs, "the last lines of a deployment's model server log")):
        v = verbs.add_parser(name, help=help)
        v.add_argument("name", metavar="NAME").completer = deployment_names
        v.add_argument("--lines", type=int, default=20, help="log lines to show (default 20)")
        v.add_argument("--json", action="store_true", help="print JSON")
        v.set_defaults(func=func)


def deploy(args, platform) -> int:
    model, ref = refs.model_ref(args.target)
    outcome = serving.deploy(platform, args.name, model, ref, canary=args.canary, traffic=args.traffic)
    deployment = outcome.deployment
    if args.wait:
        deployment = serving.wait_until_settled(platform, args.name, args.timeout, progress=_progress(args.json))
    if args.json:
        emit_object(deployment, True)
    else:
        print(outcome.sentence(deployment))
        if deployment.canary_version is not None:
            print(f"Canary: version {deployment.canary_version} takes {deployment.canary_traffic}% of the requests.")
        if deployment.detail:
            print(deployment.detail)
    return 1 if deployment.state is DeploymentState.FAILED else 0


def _progress(quiet: bool):
    """While --wait waits on a terminal: the state and the last word of the model server, in place."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(d) -> None:
        if d.state is DeploymentState.STARTING:
            print(f"\r{d.name}: starting... {d.detail or ''}"[:200].ljust(80), end="", file=sys.stderr, flush=True)
        else:
            print("\r".ljust(81), end="\r", file=sys.stderr, flush=True)

    return show


COLUMNS = [
    ("NAME", lambda d: d.name),
    ("MODEL", lambda d: d.model),
    ("VERSION", lambda d: d.version),
    ("CANARY", lambda d: text.canary(d.canary_version, d.canary_traffic) if d.canary_version is not None else None),
    ("REPLICAS", lambda d: d.replicas),
    ("STATE", lambda d: d.state.value),
    ("ENDPOINT", lambda d: d.endpoint),
    ("DETAIL", lambda d: d.detail or None),  # the reason when not available; logs: `deployment logs NAME`
]


def list_deployments(args, platform) -> int:
    emit_table(platform.serving.list_deployments(), COLUMNS, args.json)
    return 0


def describe(args, platform) -> int:
    deployment = platform.serving.get_deployment(args.name)
    lines = platform.serving.logs(args.name, args.lines)
    if args.json:
        emit_json({**to_dict(deployment), "log": lines})
    else:
        emit_object(deployment, False)
        print("\n".join(lines))
    return 0


def logs(args, platform) -> int:
    platform.serving.get_deployment(args.name)
    lines = platform.serving.logs(args.name, args.lines)
    if args.json:
        emit_json(lines)
    else:
        print("\n".join(lines))
    return 0


def undeploy(args, platform) -> int:
    found = platform.serving.get_deployment(args.name)
    if not confirm(f"Undeploy {found.name} ({text.model_ref(found.model, found.version)})? Its endpoint stops answering.",
                   args.yes, f"Not undeploying {found.name}"):
        print(f"{found.name} keeps serving.", file=sys.stderr)
        return 1
    platform.serving.undeploy(args.name)
    if args.json:
        emit_json({"undeployed": args.name})
    else:
        print(f"Undeployed {args.name}.")
    return 0


def predict(args, platform) -> int:
    results = predicting.predict_files(platform, args.deployment, args.images)
    if args.json:
        emit_json([predicting.prediction_json(p) for p in results])
    else:
        columns = [
            ("IMAGE", lambda p: p.image),
            ("LABEL", lambda p: p.label),
            ("P(CAT)", lambda p: f"{p.probabilities['cat']:.3f}" if "cat" in p.probabilities else None),
            ("P(DOG)", lambda p: f"{p.probabilities['dog']:.3f}" if "dog" in p.probabilities else None),
            ("VERSION", lambda p: p.version),
            ("LATENCY", lambda p: f"{p.latency_ms:.0f} ms" if p.latency_ms is not None else None),
            ("ERROR", lambda p: p.error),
        ]
        emit_table(results, columns, False)
    failed = [p for p in results if p.error]
    if failed and not args.json:
        print(f"dlptui: {len(failed)} of {len(results)} images failed.", file=sys.stderr)
    return 1 if failed else 0
