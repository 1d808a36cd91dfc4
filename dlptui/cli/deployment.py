"""`dlptui deploy`, `undeploy`, `predict` and `dlptui deployment ...`: model versions behind an endpoint.

    dlptui deploy MODEL[@VERSION|@ALIAS] [--name NAME] [--canary VERSION --traffic PERCENT] [--gate auto|FILE]
                  [--shadow VERSION] [--wait]
    dlptui undeploy NAME [--yes]            asks on a terminal
    dlptui rollback NAME                    back to the version served before, recorded in the history
    dlptui predict IMAGE... [--deployment NAME] [--explain OUT.png]   --explain: where the model looked (one image)
    dlptui predictions NAME [--since AGE|TIME] [--limit N] [--json]   the prediction log (JSON Lines with --json)
    dlptui deployment list
    dlptui deployment describe NAME [--lines N]   (also `deployment NAME`) with its versions' figures, the canary's
                                                  verdicts and the shadow's agreement, and log lines
    dlptui deployment logs NAME [--lines N]
    dlptui deployment promote NAME | abort NAME   the canary takes all traffic / is removed
    dlptui deployment shadow NAME VERSION|none    mirror every request to VERSION
    dlptui deployment history NAME [--at TIME | --timeline]   every change (WHY: an automatic change's reason);
                                                  --at: what served at that moment; --timeline: versions as bands
    dlptui deployment gate NAME [auto|off|FILE]   the gate that aborts, steps or promotes its canaries (cli/gate.py)
    dlptui deployment keep-inputs NAME N|off      keep the images of the last N predictions (cli/replay.py)
"""

from __future__ import annotations

import sys

from dlptui import text
from dlptui.actions import predict as predicting
from dlptui.actions import refs, serving
from dlptui.actions.defaults import CANARY_TRAFFIC, DEPLOYMENT
from dlptui.cli import explain as explaining
from dlptui.cli import gate as gating
from dlptui.cli.completers import deployment_names, model_names
from dlptui.cli.output import choose, confirm, emit_done, emit_json, emit_object, emit_table, say
from dlptui.platform.model import DeploymentState, to_dict
from dlptui.render import serving as render


def register(sub) -> None:
    d = sub.add_parser("deploy", help="serve a model version (or move a deployment to it, without downtime)")
    d.add_argument("target", metavar="MODEL[@VERSION|@ALIAS]", help="e.g. dogcat-model@production (no @: the latest version)").completer = model_names
    d.add_argument("--name", default=DEPLOYMENT, help=f"the deployment (default {DEPLOYMENT})")
    d.add_argument("--canary", metavar="VERSION", help="a second version of the same model taking --traffic percent")
    d.add_argument("--traffic", type=int, default=CANARY_TRAFFIC, metavar="PERCENT",
                   help=f"the canary's share (default {CANARY_TRAFFIC}; 0 removes it)")
    d.add_argument("--shadow", metavar="VERSION", help="a version of the same model that gets a copy of every request "
                   "(its answers are never returned; its predictions are logged); 'none' removes it")
    d.add_argument("--gate", metavar="auto|off|FILE",
                   help="judge the canary and abort, step or promote it by itself: auto (error rate, p50 and p95 "
                   "latency guarded; steps 10, 25, 50 %%, then promotion) or a .toml or .yaml policy file; off removes it")
    d.add_argument("--keep-inputs", metavar="N|off", help="keep the images of its last N predictions, to look at and "
                   "`dlptui replay` (default off; see `dlptui deployment keep-inputs`)")
    d.add_argument("--wait", action="store_true", help="return once the deployment is available (or failed)")
    d.add_argument("--timeout", type=float, default=300.0, help="how long --wait waits, in seconds (default 300)")
    d.add_argument("--json", action="store_true", help="print a JSON object")
    d.set_defaults(func=deploy)

    u = sub.add_parser("undeploy", help="stop a deployment and every process it runs (asks first)")
    u.add_argument("name").completer = deployment_names
    u.add_argument("--yes", action="store_true", help="do not ask")
    u.add_argument("--json", action="store_true", help="print a JSON object")
    u.set_defaults(func=undeploy)

    r = sub.add_parser("rollback", help="move a deployment back to the version it served before (without downtime)")
    r.add_argument("name").completer = deployment_names
    r.add_argument("--json", action="store_true", help="print a JSON object")
    r.set_defaults(func=rollback)

    pl = sub.add_parser("predictions", help="a deployment's prediction log, oldest first")
    pl.add_argument("name", metavar="NAME").completer = deployment_names
    pl.add_argument("--since", help="only predictions after this: an age (10m, 2h, 1d), an ISO time or epoch seconds")
    pl.add_argument("--limit", type=int, default=1000, help="at most this many, the latest (default 1000)")
    pl.add_argument("--outliers", action="store_true",
                    help="only the outliers: predictions far from every image of their version's drift reference")
    pl.add_argument("--json", action="store_true", help="print JSON Lines, one prediction per line")
    pl.set_defaults(func=predictions)

    p = sub.add_parser("predict", help="classify images with a deployment")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG files")
    p.add_argument("--deployment", help="the deployment to ask (default: the only one; with several, asked on a "
                   "terminal)").completer = deployment_names
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per image")
    explaining.add_argument(p)
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
    for name, func, help in (("promote", promote, "the canary's version takes all traffic; the old primary stops"),
                             ("abort", abort, "remove the canary: all traffic to the primary"),
                             ("history", history, "every change of the deployment: who made it and the routing it left")):
        v = verbs.add_parser(name, help=help)
        v.add_argument("name", metavar="NAME").completer = deployment_names
        v.add_argument("--json", action="store_true", help="print JSON")
        if name == "history":
            at = v.add_mutually_exclusive_group()
            at.add_argument("--at", metavar="TIME", help="what served at that moment: the versions, their shares and "
                            "the change that set them (an age such as 2h or 1d, an ISO time or epoch seconds; before "
                            "the deployment's first change it says so and exits 0, as a query with no match does)")
            at.add_argument("--timeline", action="store_true", help="draw the versions as bands over time, with their "
                            "shares, the automatic changes and the drift verdicts marked (--json: the entries)")
        if name == "promote":
            v.add_argument("--move-alias", action="store_true",
                           help="move the alias the deployment was made by (e.g. production) to the promoted version too")
        v.set_defaults(func=func)
    gating.register_verb(verbs)
    v = verbs.add_parser("shadow", help="mirror every request to another version ('none' removes the shadow)")
    v.add_argument("name", metavar="NAME").completer = deployment_names
    v.add_argument("version", metavar="VERSION|none")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=shadow)


def deploy(args, platform) -> int:
    model, ref = refs.model_ref(args.target)
    outcome = serving.deploy(platform, args.name, model, ref, canary=args.canary, traffic=args.traffic, gate=args.gate)
    deployment = outcome.deployment
    if args.shadow is not None:
        deployment = serving.set_shadow(platform, args.name, model, None if args.shadow.lower() == "none" else args.shadow)
    kept = None
    if args.keep_inputs is not None:
        from dlptui.actions import kept_inputs

        kept = platform.serving.set_keep_inputs(args.name, kept_inputs.parse_keep(args.keep_inputs))
    if args.wait:
        deployment = serving.wait_until_settled(platform, args.name, args.timeout, progress=_progress(args.json))
    if args.json:
        emit_object(deployment, True)
    else:
        say(outcome.sentence(deployment))
        if deployment.canary_version is not None:
            say(f"Canary: version {deployment.canary_version} takes {deployment.canary_traffic}% of the requests.")
        if deployment.shadow_version is not None:
            say(f"Shadow: version {deployment.shadow_version} gets a copy of every request.")
        if args.gate is not None:
            from dlptui.actions import gate

            say(*(gate.lines(platform, args.name)[:1] or [f"{args.name} has no gate."]))
        if kept is not None:
            from dlptui.actions import kept_inputs

            say(kept_inputs.sentence(kept))
        if deployment.detail:
            say(deployment.detail)
    return 1 if deployment.state is DeploymentState.FAILED else 0


def _progress(quiet: bool):
    """While --wait waits on a terminal: the state and the last word of the model server, in place."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(d) -> None:
        if d.state is DeploymentState.STARTING:
            say(f"{d.name}: starting... {d.detail or ''}"[:199].ljust(79), start="\r", end="", file=sys.stderr, flush=True)
        else:
            say(start="\r" + " " * 80, end="\r", file=sys.stderr, flush=True)

    return show


def list_deployments(args, platform) -> int:
    emit_table(platform.serving.list_deployments(), render.DEPLOYMENT_COLUMNS, args.json)
    return 0


def describe(args, platform) -> int:
    deployment = platform.serving.get_deployment(args.name)
    figures = platform.serving.versions(args.name)
    lines = platform.serving.logs(args.name, args.lines)
    note = serving.alias_note(platform, deployment)
    report = _drift(platform, args.name)
    from dlptui.actions import verdicts

    judged = verdicts.judge(platform, args.name)
    kept = _kept(platform, args.name)
    if args.json:
        from dlptui.actions import gate

        taken = gate.look(platform, args.name, act=False) if deployment.gate else None
        emit_json({**to_dict(deployment), "alias_note": note or None, "versions": serving.figures_json(figures),
                   "gate_next": taken.action.to_dict() if taken else None,
                   "verdicts": judged.to_json(), "drift": report.to_json(), "log": lines, "kept_inputs": kept[0]})
        return 0
    emit_object(deployment, False)
    if note:
        say(note)
    say()
    emit_table(figures, render.FIGURE_COLUMNS, False, title="versions")
    if sentence := serving.verdict(figures):
        say(sentence)
    for line, _ in judged.lines():
        say(line)
    from dlptui.actions import gate

    for line in gate.lines(platform, args.name):
        say(line)
    if report.note:
        say(report.note)
    for version in report.versions:
        say(f"Drift: {version.sentence}")
        if version.suggestion:
            say(version.suggestion)
    say(f"Inputs: {kept[1]}")
    shown = render.server_log(lines)
    say()
    say(f"the last {text.plural(len(shown), 'line')} of the model server's log (`dlptui deployment logs {deployment.name}`):")
    for line in shown:
        say(line)
    return 0


def _drift(platform, name: str):
    """The drift of the deployment's versions; a sentence in its note where it cannot be judged (never fails describe)."""
    from dlptui.actions import drift
    from dlptui.errors import PlatformError

    try:
        return drift.judge(platform, name)
    except PlatformError as e:
        return drift.DriftReport(name, note=f"Drift: {e}")


def _kept(platform, name: str) -> tuple[dict | None, str]:
    """Whether the deployment keeps its inputs (JSON, sentence); the profile's sentence where it keeps none."""
    from dlptui.actions import kept_inputs
    from dlptui.errors import NotAvailable

    try:
        kept = platform.serving.kept_inputs(name)
    except NotAvailable as e:
        return None, str(e)
    return kept_inputs.to_json(kept), kept_inputs.sentence(kept)


def promote(args, platform) -> int:
    d = serving.promote_canary(platform, args.name, move_alias=args.move_alias)
    moved = f"; {d.alias} names version {d.version} now" if args.move_alias and d.alias else ""
    sentence = f"{d.name} serves version {d.version} on all its traffic; the old primary has stopped{moved}."
    note = "" if args.json else serving.alias_note(platform, d)
    return emit_done(d, sentence + (f"\n{note}" if note else ""), args.json)


def abort(args, platform) -> int:
    d = serving.abort_canary(platform, args.name)
    return emit_done(d, f"Canary removed: {d.name} serves version {d.version} on all its traffic.", args.json)


def shadow(args, platform) -> int:
    current = platform.serving.get_deployment(args.name)
    ref = None if args.version.lower() == "none" else args.version
    d = serving.set_shadow(platform, args.name, current.model, ref)
    if d.shadow_version is None:
        return emit_done(d, f"{d.name} has no shadow.", args.json)
    return emit_done(d, f"Version {d.shadow_version} gets a copy of every request to {d.name}; its answers are only logged.", args.json)


def rollback(args, platform) -> int:
    d, left = serving.rollback(platform, args.name)
    return emit_done(d, f"Rolled {d.name} back from version {left} to version {d.version}.", args.json)


def history(args, platform) -> int:
    from dlptui.actions import drift

    if args.at is not None:
        return _served_at(args, platform)
    entries = platform.serving.history(args.name)
    changes = _drift(platform, args.name).changes  # a version's drift verdict changing is an entry too
    marks = [drift.history_entry(c, entries[-1].model if entries else "") for c in changes]
    if args.timeline and not args.json:
        import shutil
        import time

        from dlptui.render import timeline

        say(f"What {args.name} served when:")
        for line in timeline.timeline(entries, time.time(), shutil.get_terminal_size().columns, drift=marks):
            say(line)
        return 0
    emit_table(sorted([*entries, *marks], key=lambda h: h.time), render.CHANGE_COLUMNS, args.json)
    return 0


def _served_at(args, platform) -> int:
    from dlptui.actions import history as what_served
    from dlptui.render import timeline

    served = what_served.served_at(platform, args.name, args.at)
    if args.json:
        emit_json(served.to_json())
    else:
        say(timeline.served(args.name, served.at, served.history))
    return 0


def predictions(args, platform) -> int:
    import json

    from dlptui.actions import drift

    since = predicting.parse_since(args.since) if args.since else None
    rows = predicting.logged(platform, args.name, since=since, limit=args.limit)
    scored = drift.score(platform, args.name, rows)
    if args.outliers:
        scored = [s for s in scored if s.outlier]
    if args.json:
        for s in scored:
            say(json.dumps({**to_dict(s.prediction), "outlier": s.outlier, "outlier_score": s.score,
                            "outlier_threshold": s.threshold}))
        return 0
    rows = [s.prediction for s in scored]
    flags = {s.prediction.id: s for s in scored}
    outlier = render.Column("outlier", "OUTLIER", lambda p: None if flags[p.id].score is None else
                            f"{'yes' if flags[p.id].outlier else 'no'} ({flags[p.id].score:.1f} / {flags[p.id].threshold:.1f})")
    title = f"outliers of {args.name}" if args.outliers else f"predictions of {args.name}"
    emit_table(rows, [*render.LOGGED_COLUMNS, outlier], False, title=title)
    if args.outliers and not rows:
        say(f"No outlier among the last {args.limit} predictions of {args.name} that have a drift reference.")
    return 0


def logs(args, platform) -> int:
    platform.serving.get_deployment(args.name)
    lines = platform.serving.logs(args.name, args.lines)
    if args.json:
        emit_json(lines)
    else:
        for line in render.server_log(lines):
            say(line)
    return 0


def undeploy(args, platform) -> int:
    found = platform.serving.get_deployment(args.name)
    if not confirm(f"Undeploy {found.name} ({text.model_ref(found.model, found.version)})? Its endpoint stops answering.",
                   args.yes, f"Not undeploying {found.name}"):
        say(f"{found.name} keeps serving.", file=sys.stderr)
        return 1
    platform.serving.undeploy(args.name)
    if args.json:
        emit_json({"undeployed": args.name})
    else:
        say(f"Undeployed {args.name}.")
    return 0


PREDICT_WAIT_S = 120.0


def predict(args, platform) -> int:
    """One image: its row, or its one sentence (exit 2; 3 for a missing file). Several: a row each (a sentence in
    ERROR for one that failed), then what they came to; exit 2 if any failed. `--explain` (one image) also writes
    where the model looked."""
    overlay = explaining.target(args)  # a bad --explain is told before any image is sent
    name = args.deployment or _which_deployment(platform)
    if platform.serving.get_deployment(name).state is DeploymentState.STARTING:
        # right after `deploy`: wait (bounded) for the model to load, showing how it goes on a terminal
        serving.wait_until_settled(platform, name, PREDICT_WAIT_S, progress=_progress(args.json))
    if len(args.images) == 1:
        results = [predicting.predict_one(platform, name, args.images[0])]  # a bad image raises its sentence
    else:
        results = predicting.predict_files(platform, name, args.images)
    explained = None
    if overlay is not None and not results[0].error:
        explained = explaining.explain(platform, name, results[0], args.images[0], overlay)
    if args.json:
        rows = [predicting.prediction_json(p) for p in results]
        if explained is not None:
            rows[0]["explanation"] = explaining.as_json(*explained)
        emit_json(rows)
    else:
        emit_table(results, render.PREDICTION_COLUMNS, False)
        if len(results) > 1:
            say(render.prediction_counts(results))
        if explained is not None:
            say(explaining.line(*explained))
    return 2 if any(p.error for p in results) else 0


def _which_deployment(platform) -> str:
    """No --deployment: the only one; of several, the one a person at the terminal picks, else one sentence."""
    deployments = predicting.candidates(platform)
    if len(deployments) == 1:
        return deployments[0].name
    options = [f"{d.name}  ({text.model_ref(d.model, d.version)}, {d.state.value})" for d in deployments]
    picked = choose("Which deployment should answer?", options, refused=predicting.several(deployments))
    return deployments[picked].name
