"""`dlptui completion [bash|zsh|fish]`: the shell code that completes dlptui's commands (argcomplete).

    eval "$(dlptui completion bash)"      # in ~/.bashrc
"""

from __future__ import annotations

from dlptui.errors import NotAvailable
from dlptui.cli.output import say


def register(sub) -> None:
    p = sub.add_parser("completion", help="print the shell code that completes dlptui's commands")
    p.add_argument("shell", nargs="?", default="bash", choices=("bash", "zsh", "fish", "tcsh"))
    p.set_defaults(func=completion)


def completion(args, platform) -> int:
    try:
        import argcomplete
    except ImportError:
        raise NotAvailable("Shell completion needs the Python package argcomplete; install dlptui's dependencies.") from None
    say(argcomplete.shellcode(["dlptui"], shell=args.shell))
    return 0
