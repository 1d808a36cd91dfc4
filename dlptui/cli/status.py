"""`dlptui status`: the five parts of the active profile and whether each answers (exit 5 if one does not), then
the home's background processes on the local profile (pipeline runner, trainings, model servers, Envoys: pid,
part, what it serves, age). `--processes` prints only those (`--json`: a JSON array); `dlptui stop` stops them."""

from __future__ import annotations

from dlptui import text
from dlptui.cli.output import emit_table, say
from dlptui.errors import Unreachable

PROCESS_COLUMNS = [
    ("PID", lambda p: p.pid),
    ("PART", lambda p: p.part),
    ("SERVES", lambda p: p.serves),
    ("AGE", lambda p: text.since(p.started)),
    ("PROCESSES", lambda p: p.processes),
    ("MEMORY", lambda p: text.size(p.memory_bytes)),
]


def register(sub) -> None:
    p = sub.add_parser("status", help="the parts of the active profile and whether each is reachable; the home's "
                                      "background processes")
    p.add_argument("--json", action="store_true", help="print a JSON array (of the parts, or with --processes of the processes)")
    p.add_argument("--processes", action="store_true",
                   help="only the home's background processes: pid, part, what it serves, age (`dlptui stop` stops them)")
    p.set_defaults(func=status)


def status(args, platform) -> int:
    from dlptui.actions.background import listing

    if args.processes:
        emit_table(listing(platform), PROCESS_COLUMNS, args.json, title=f"background processes of {platform.config.home}")
        return 0
    services = platform.status()
    columns = [
        ("PART", lambda s: s.part),
        ("BACKEND", lambda s: s.backend),
        ("REACHABLE", lambda s: "yes" if s.reachable else "no"),
        ("VERSION", lambda s: s.version),
        ("DETAIL", lambda s: s.detail),
    ]
    emit_table(services, columns, args.json, title=f"profile {platform.config.profile}")
    if not args.json and platform.config.kind == "local":
        rows = listing(platform)
        if rows:
            say()
            emit_table(rows, PROCESS_COLUMNS, False, title=f"background processes of {platform.config.home} (`dlptui stop` stops them)")
        else:
            say(f"Nothing of {platform.config.home} runs in the background.")
    return 0 if all(s.reachable for s in services) else Unreachable.exit_code
