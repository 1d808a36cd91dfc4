"""Shell completion of names that live in the platform (argcomplete completers).

Each completer opens the active profile read-only, lists what it names and never raises: a
platform that does not answer completes nothing rather than printing an error into the shell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _names(list_names: Callable[[Any], list[str]]) -> Callable[..., list[str]]:
    def complete(prefix: str, parsed_args: Any = None, **_: Any) -> list[str]:
        try:
            from dlptui.config import load_config
            from dlptui.platform import Platform

            config = load_config(profile=getattr(parsed_args, "profile", None), read_only=True)
            platform = Platform(config)
            try:
                return [n for n in list_names(platform) if n.startswith(prefix)]
            finally:
                platform.close()
        except Exception:  # completion must never break the shell
            return []

    return complete


experiment_ids = _names(lambda p: [e.id for e in p.training.list_experiments()])
repo_names = _names(lambda p: [r.name for r in p.data.list_repos()])
model_names = _names(lambda p: [m.name for m in p.registry.list_models()])
deployment_names = _names(lambda p: [d.name for d in p.serving.list_deployments()])
