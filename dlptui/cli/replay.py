"""`dlptui replay` and `dlptui deployment keep-inputs`: a deployment's inputs, kept when asked, replayed offline.

    dlptui deployment keep-inputs NAME N|off [--cap 256MiB]   keep the images of the last N predictions (off: delete them)
    dlptui deploy MODEL@VERSION --keep-inputs N               the same, from the start (cli/deployment.py)
    dlptui replay DEPLOYMENT --to MODEL@VERSION [--since 1h] [--json]
                                                 the kept inputs sent to another version here, offline: how many,
                                                 agreement with what was logged, accuracy of both where feedback exists
"""

from __future__ import annotations

from dlptui.cli.completers import deployment_names, model_names
from dlptui.cli.output import emit_json, say


def register(sub) -> None:
    r = sub.add_parser("replay", help="send a deployment's kept inputs to another version, offline, and compare")
    r.add_argument("name", metavar="DEPLOYMENT").completer = deployment_names
    r.add_argument("--to", required=True, metavar="MODEL@VERSION", help="the version to replay on, e.g. dogcat-model@3").completer = model_names
    r.add_argument("--since", help="only inputs of predictions after this: an age (10m, 2h, 1d), an ISO time or epoch seconds")
    r.add_argument("--json", action="store_true", help="print a JSON object")
    r.set_defaults(func=replay)

    from dlptui.cli import _subparsers

    verbs = _subparsers(sub.choices["deployment"])
    k = verbs.add_parser("keep-inputs", help="keep the images of a deployment's last N predictions ('off' deletes them)")
    k.add_argument("name", metavar="NAME").completer = deployment_names
    k.add_argument("keep", metavar="N|off", help="how many predictions' images to keep; off (the default) keeps none")
    k.add_argument("--cap", metavar="SIZE", help="the most they take in all, e.g. 64MiB or 1GB (default 256MiB)")
    k.add_argument("--json", action="store_true", help="print a JSON object")
    k.set_defaults(func=keep_inputs)


def keep_inputs(args, platform) -> int:
    from dlptui.actions import kept_inputs

    keep, cap = kept_inputs.parse_keep(args.keep), kept_inputs.parse_cap(args.cap)
    kept = platform.serving.set_keep_inputs(args.name, keep, cap)
    if args.json:
        emit_json({"deployment": kept.deployment, **kept_inputs.to_json(kept)})
    else:
        say(kept_inputs.sentence(kept))
    return 0


def replay(args, platform) -> int:
    from dlptui.actions import predict
    from dlptui.actions import replay as replaying

    since = predict.parse_since(args.since) if args.since else None
    report = replaying.replay(platform, args.name, args.to, since)
    if args.json:
        emit_json(report.to_json())
    else:
        for line in report.lines():
            say(line)
    return 0
