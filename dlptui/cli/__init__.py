# PYTHON_ARGCOMPLETE_OK
"""`dlptui`: with no command it opens the console; commands are the same use cases, headless.

The grammar is noun-verb, as Determined's `det` has it: `dlptui experiment pause 3`,
`dlptui model promote dogcat-model 2 --to production`, `dlptui deployment describe dogcat-deploy`.
Four short verbs stand for the workflow's main steps: `train`, `deploy`, `undeploy`, `predict`.
Every action has one spelling in the help; the spellings of earlier versions (`experiments`,
`metrics ID`, `models ...`, `deployments [NAME]`) still work through `LEGACY`, and a noun given
an id instead of a verb describes it (`experiment 3`, `deployment dogcat-deploy`).

One module per noun, each with `register(sub)` adding its parsers; a command is a function
`(args, platform) -> int`. A PlatformError ends in its one sentence on stderr and its exit code
(2 bad input, 3 not found, 4 conflict, 5 unreachable, 6 not available), never a traceback.
Completion: `eval "$(dlptui completion bash)"` (argcomplete).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dlptui import __version__
from dlptui.cli.output import say
from dlptui.errors import InvalidInput, PlatformError

MODULES = ("status", "stop", "data", "experiment", "model", "deployment", "feedback", "gate", "loop", "replay", "drift", "pipeline", "lineage",
           "infra", "contexts",
           "completion")

# earlier spellings -> today's words (users have scripts)
LEGACY: dict[str, tuple[str, ...]] = {
    "experiments": ("experiment", "list"),
    "metrics": ("experiment", "metrics"),
    "logs": ("experiment", "logs"),
    "models": ("model",),
    "deployments": ("deployment",),
}

# a noun followed by no verb lists; followed by a word that is not one of its verbs, it runs this verb on it
DEFAULT_VERBS: dict[str, str] = {"experiment": "describe", "model": "versions", "deployment": "describe"}
NOUN_ALIASES: dict[str, tuple[str, ...]] = {"experiment": ("e", "exp"), "model": ("m",), "deployment": ("dp",)}

GLOBAL_WITH_VALUE = ("--profile", "--context")


class Parser(argparse.ArgumentParser):
    """An argparse parser whose mistakes end in one sentence, like every other mistake (exit 2)."""

    def error(self, message: str) -> None:
        say(f"dlptui: {message[:1].upper()}{message[1:]}; see `{self.prog} --help`.", file=sys.stderr)
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dlptui",
        description="A terminal console for a deep-learning platform. With no command it opens the console.",
        epilog="Earlier spellings still work: experiments, metrics ID, logs ID, models ..., deployments [NAME].",
    )
    parser.add_argument("--version", action="version", version=f"dlptui {__version__}")
    parser.add_argument("--profile", help="the profile of the config file to use (default: local)")
    parser.add_argument("--read-only", action="store_true", default=None, help="refuse every action that changes something")
    parser.add_argument(
        "--context", metavar="NAME", help="the kubeconfig context of the cluster profile (see `dlptui contexts`)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in MODULES:
        importlib.import_module(f"dlptui.cli.{name}").register(sub)
    return parser


def verbs_of(parser: argparse.ArgumentParser, noun: str) -> set[str]:
    """The verbs (and their aliases) of a noun's sub-parser."""
    noun_parser = _subparsers(parser).choices[noun]
    try:
        return set(_subparsers(noun_parser).choices)
    except LookupError:
        return set()


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError(parser.prog)


def normalise(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Today's words for an earlier spelling, and the default verb of a noun given none."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # global options before the command
        i += 2 if argv[i] in GLOBAL_WITH_VALUE else 1
    if i >= len(argv):
        return argv
    head, rest = argv[:i], argv[i + 1 :]
    command = argv[i]
    words = list(LEGACY.get(command, (command,)))
    noun = next((n for n, aliases in NOUN_ALIASES.items() if words[0] == n or words[0] in aliases), None)
    if noun is not None and len(words) == 1:
        verbs = verbs_of(parser, noun)
        following = rest[0] if rest else None
        if following is None or following.startswith("-"):
            if following not in ("-h", "--help"):
                words.append("list")
        elif following not in verbs:
            words.append(DEFAULT_VERBS[noun])
    return head + words + rest


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        import argcomplete

        argcomplete.autocomplete(parser)
    except ImportError:  # completion is a convenience: the CLI works without it
        pass
    try:
        args = parser.parse_args(normalise(list(sys.argv[1:] if argv is None else argv), parser))
    except SystemExit as e:  # --help, --version, or a mistake already told in one sentence
        return e.code if isinstance(e.code, int) else 2
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
        say(f"dlptui: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        say("dlptui: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`dlptui data ls --json | head`): stop quietly, as cat does
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def check_context(config, context: str) -> None:
    """A sentence, before anything starts, for --context on a local profile or a name the kubeconfig lacks."""
    if config.kind != "cluster":
        raise InvalidInput(
            f"--context picks a context of a cluster profile, but profile {config.profile!r} is local; add --profile cluster."
        )
    from dlptui.platform.cluster.kube_connection import with_context

    with_context(config, context)


if __name__ == "__main__":
    sys.exit(main())
