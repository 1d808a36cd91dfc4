"""`dlptui feedback`: ground truth for logged predictions, recorded against them in the prediction log.

    dlptui feedback DEPLOYMENT#ID --label LABEL [--reward R]   one prediction (its id from `predict --json`)
    dlptui feedback DEPLOYMENT --file labels.csv                  many: prediction id (or image sha256), label
"""

from __future__ import annotations

from dlptui.cli.completers import deployment_names
from dlptui.cli.output import emit_json, say
from dlptui.errors import InvalidInput


def register(sub) -> None:
    f = sub.add_parser("feedback", help="tell a deployment the right label of logged predictions (ground truth)")
    f.add_argument("target", metavar="DEPLOYMENT#ID|DEPLOYMENT",
                   help="a logged prediction (dogcat-deploy#42), or the deployment with --file").completer = deployment_names
    f.add_argument("--label", help="the right label of the prediction")
    f.add_argument("--reward", type=float, help="a reward for the prediction (Seldon's feedback reward)")
    f.add_argument("--file", metavar="CSV", help="a CSV of prediction id (or image sha256) and label, one per row")
    f.add_argument("--json", action="store_true", help="print JSON Lines, one recorded prediction per line")
    f.set_defaults(func=feedback)


def feedback(args, platform) -> int:
    from dlptui.actions import feedback as actions
    from dlptui.platform.model import Feedback

    deployment, ident = actions.parse_target(args.target)
    if ident is not None:
        if args.file:
            raise InvalidInput(f"Give either a prediction ({args.target}) with --label, or the deployment with --file, not both.")
        if args.label is None and args.reward is None:
            raise InvalidInput(f"Say what {args.target} should have answered: --label LABEL (or --reward R).")
        label = args.label.strip() if args.label is not None else None
        recorded = actions.record(platform, deployment, [Feedback(ident, label=label, reward=args.reward)])
    else:
        if not args.file:
            raise InvalidInput(f"Name a prediction ({deployment}#ID --label LABEL) or give a labels file ({deployment} --file labels.csv).")
        if args.label is not None or args.reward is not None:
            raise InvalidInput("--label and --reward are for one prediction (DEPLOYMENT#ID); a labels file gives its own.")
        items = actions.read_labels(args.file)
        platform.serving.get_deployment(deployment)  # an unknown deployment is told as such, not as a row of the file
        recorded = actions.record(platform, deployment, items, source=args.file)
    if args.json:
        emit_json([actions.as_json(deployment, p) for p in recorded])
    else:
        say(actions.sentence(deployment, recorded))
    return 0
