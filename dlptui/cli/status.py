"""`dlptui status`: the five parts of the active profile and whether each answers (exit 5 if one does not)."""

from __future__ import annotations

from dlptui.cli.output import emit_table
from dlptui.errors import Unreachable


def register(sub) -> None:
    p = sub.add_parser("status", help="the parts of the active profile and whether each is reachable")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=status)


def status(args, platform) -> int:
    services = platform.status()
    columns = [
        ("PART", lambda s: s.part),
        ("BACKEND", lambda s: s.backend),
        ("REACHABLE", lambda s: "yes" if s.reachable else "no"),
        ("VERSION", lambda s: s.version),
        ("DETAIL", lambda s: s.detail),
    ]
    emit_table(services, columns, args.json, title=f"profile {platform.config.profile}")
    return 0 if all(s.reachable for s in services) else Unreachable.exit_code
