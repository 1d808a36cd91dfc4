"""`dlptui lineage DEPLOYMENT|MODEL@VERSION`: deployment -> version -> checkpoint -> experiment -> data commit."""

from __future__ import annotations

from dlptui.cli.output import emit_json, emit_table, say


def register(sub) -> None:
    p = sub.add_parser("lineage", help="where a deployment or a model version came from, down to its data commit")
    p.add_argument("target", metavar="DEPLOYMENT|MODEL@VERSION|DEPLOYMENT#ID",
                   help="e.g. dogcat-deploy, dogcat-model@production, or dogcat-deploy#42 (a logged prediction)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=lineage)


def lineage(args, platform) -> int:
    from dlptui.actions.lineage import trace

    chain = trace(platform, args.target)
    if args.json:
        emit_json(chain)
        return 0
    columns = [("STEP", lambda s: s.kind), ("ID", lambda s: s.id), ("DETAIL", lambda s: s.detail)]
    emit_table(chain.steps, columns, False, title=f"lineage of {chain.target}")
    if chain.missing:
        say(chain.missing)
    return 0
