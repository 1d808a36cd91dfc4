"""`dlptui`: with no sub-command it opens the console; sub-commands are the same platform calls, headless.

One module per noun (`data`, `training`, `models`, `serving`, `status`, `infra`, `contexts`), each with
`register(subparsers)` adding its commands; a command is a function `(args, platform) -> int`.
A PlatformError ends in its one sentence on stderr and its exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from dlptui import __version__
from dlptui.errors import PlatformError

NOUNS = ("status", "data", "training", "models", "serving", "lineage", "infra", "contexts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlptui", description="A terminal console for a deep-learning platform.")
    parser.add_argument("--version", action="version", version=f"dlptui {__version__}")
    parser.add_argument("--profile", help="the profile of the config file to use (default: local)")
    parser.add_argument("--read-only", action="store_true", default=None, help="hide every action that changes something")
    parser.add_argument(
        "--context", metavar="NAME", help="the kubeconfig context of the cluster profile (see `dlptui contexts`)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for noun in NOUNS:
        name = f"dlptui.cli.{noun}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dlptui.config import load_config
    from dlptui.platform import Platform

    try:
        config = load_config(profile=args.profile, read_only=args.read_only, kube_context=args.context)
        if args.context and args.command != "contexts":
            check_context(config, args.context)
        if args.command is None:
            from dlptui.tui import run_console

            return run_console(config)
        platform = Platform(config)
        try:
            return int(args.func(args, platform) or 0)
        finally:
            platform.close()
    except PlatformError as e:
        print(f"dlptui: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("dlptui: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`dlptui data ls --json | head`): stop quietly, as cat does
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def check_context(config, context: str) -> None:
    """A sentence, before anything starts, for --context on a local profile or a name the kubeconfig lacks."""
    from dlptui.errors import InvalidInput

    if config.kind != "cluster":
        raise InvalidInput(
            f"--context picks a context of a cluster profile, but profile {config.profile!r} is local; add --profile cluster."
        )
    from dlptui.platform.cluster.kube_connection import with_context

    with_context(config, context)


if __name__ == "__main__":
    sys.exit(main())
