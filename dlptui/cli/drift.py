"""`dlptui drift DEPLOYMENT [--since AGE|TIME] [--json]`: has the world its versions see moved from their training data?

    dlptui drift dogcat-deploy                  each version: stable or drifting, the p-value, the window, outliers;
                                                the evaluations recorded since --since, and the changes of verdict
    dlptui drift dogcat-deploy --reference      compute the reference of each version it serves (again)
    dlptui drift dogcat-model@3 --reference     one version's reference, deployed or not
"""

from __future__ import annotations

from dlptui import text
from dlptui.cli.completers import deployment_names
from dlptui.cli.output import emit_json, emit_table, say
from dlptui.errors import InvalidInput, NotAvailable


def register(sub) -> None:
    p = sub.add_parser("drift", help="drift and outliers of a deployment's versions against their training data")
    p.add_argument("target", metavar="DEPLOYMENT|MODEL@VERSION",
                   help="a deployment; with --reference also a model version, e.g. dogcat-model@production").completer = deployment_names
    p.add_argument("--reference", action="store_true",
                   help="compute the reference (a sample of the version's training images, through its model) again")
    p.add_argument("--since", help="the evaluations after this: an age (10m, 2h, 1d), an ISO time or epoch seconds")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=drift)


def drift(args, platform) -> int:
    from dlptui.actions import drift as drifting
    from dlptui.actions import drift_reference
    from dlptui.actions.predict import parse_since

    if args.reference:
        made = drift_reference.compute(platform, args.target)
        if args.json:
            emit_json([m.to_json() for m in made])
        for m in [] if args.json else made:
            held = int(m.held_out.sum())
            say(f"Drift reference of {text.model_ref(m.model, m.version)}: {m.images} images of {drifting.short(m.data)}"
                + (f" ({held} of them held out from training)" if held else "")
                + (f" ({m.skipped} skipped: not images the model server reads)" if m.skipped else "") + f", kept in {m.path}.")
        return 0
    if "@" in args.target:
        raise InvalidInput(f"Drift is judged on a deployment's predictions: give a deployment, not {args.target!r} "
                           "(a model version takes --reference).")
    since = parse_since(args.since) if args.since else None
    report = drifting.judge(platform, args.target)
    if args.json and not report.note:
        found = report.to_json()
        if since is not None:
            found["evaluations"] = {v: [p for p in s if p["time"] > since] for v, s in report.series.items()}
        emit_json(found)
        return 0
    if report.note:  # the profile keeps no prediction log (a cluster)
        raise NotAvailable(report.note)
    show(report, since)
    return 0


def show(report, since: float | None = None) -> None:
    """The report for people: a sentence per version, the suggestion, then the evaluations and changes."""
    for version in report.versions:
        say(version.sentence)
        if version.suggestion:
            say(version.suggestion)
    if since is not None:
        rows = [(v, p) for v, series in sorted(report.series.items()) for p in series if p["time"] > since]
        columns = [("TIME", lambda r: text.timestamp(r[1]["time"])), ("VERSION", lambda r: r[0]),
                   ("VERDICT", lambda r: r[1]["verdict"]), ("P", lambda r: f"{r[1]['p_value']:.2g}"),
                   ("SCORE", lambda r: f"{r[1]['score']:.2f}"), ("WINDOW", lambda r: r[1]["window"]),
                   ("LAST ID", lambda r: r[1]["last_id"])]
        emit_table(sorted(rows, key=lambda r: r[1]["time"]), columns, False, title=f"drift of {report.deployment} since "
                   f"{text.timestamp(since)}")
    if report.changes:
        say("Changes: " + "; ".join(f"{text.timestamp(c['time'])} version {c['version']} {c['from'] or 'new'} -> {c['to']} "
                                    f"(p {c['p_value']:.2g}, window {c['window']})" for c in report.changes[-5:]) + ".")
    if not report.recorded:
        say("Not recorded: dlptui runs read-only.")
