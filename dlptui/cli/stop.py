"""`dlptui stop [--all] [--yes]`: stop the local home's background processes (see `dlptui status`).

The pipeline runner and its datums stop (the pipelines resume at the next command that looks at them: their
runner starts again), running experiments are paused at a checkpoint (`dlptui experiment resume ID`). Deployments
keep serving unless --all: then their model servers and Envoys stop too, and since local serving does not
restart them, a deployment stays failed until it is deployed again (`dlptui undeploy NAME`, `dlptui deploy ...`).
Asks on a terminal; --yes answers for scripts; --read-only refuses.
"""

from __future__ import annotations

import sys

from dlptui import text
from dlptui.cli.output import confirm, emit_json, say
from dlptui.errors import NotAvailable, ReadOnlyError

EPILOG = ("Pipelines resume at the next command that looks at them (their runner starts again); paused experiments "
          "continue with `dlptui experiment resume ID`. Without --all, deployments keep serving.")


def register(sub) -> None:
    p = sub.add_parser("stop", help="stop the home's background processes: the pipeline runner and its datums, "
                                    "trainings (paused); with --all the model servers and Envoys too",
                       description=__doc__.split("\n\n")[1].replace("\n", " "), epilog=EPILOG)
    p.add_argument("--all", action="store_true",
                   help="also stop the deployments' model servers and Envoys; local serving does not restart them, so "
                        "each deployment stays failed until it is deployed again")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--json", action="store_true", help="print JSON: what was stopped, and what still runs")
    p.set_defaults(func=stop)


def stop(args, platform) -> int:
    from dlptui.actions import background

    if platform.config.read_only:
        raise ReadOnlyError("dlptui runs read-only (--read-only or DLPTUI_READ_ONLY), and `stop` changes the platform; "
                            "run it without --read-only.")
    if platform.config.kind != "local":  # its one process on this machine: the gate runner
        from dlptui.platform import gate_runner

        done = gate_runner.stop(platform.config)
        if not done:
            raise NotAvailable("Only the local profile has background processes to stop; a cluster's are its pods "
                               "(and no gate runner of this home runs).")
        emit_json({"stopped": done, "running": []}) if args.json else say(*done)
        return 0
    rows = background.listing(platform)
    targets = [r for r in rows if args.all or r.part != "serving"]
    kept = [r for r in rows if r not in targets]
    home = platform.config.home
    if not targets:
        message = f"Nothing of {home} runs in the background" + (
            f" but {text.plural(len(kept), 'serving process')} (`dlptui stop --all` stops them too)." if kept else ".")
        emit_json({"stopped": [], "running": kept}) if args.json else say(message)
        return 0
    parts = ", ".join(sorted({r.part for r in targets}))
    question = f"Stop {text.plural(len(targets), 'background process')} of {home} ({parts})?"
    if not confirm(question, args.yes, "Not stopping anything"):
        say("Nothing stopped.", file=sys.stderr)
        return 1
    done = background.stop(platform, serving=args.all)
    running = background.listing(platform)
    if args.json:
        emit_json({"stopped": done, "running": running})
        return 0
    for line in done or ["Nothing was left to stop."]:
        say(line)
    serving = [r for r in running if r.part == "serving"]
    if serving and not args.all:
        say(f"Deployments keep serving ({text.plural(len(serving), 'process')}); `dlptui stop --all` stops them too.")
    return 0
