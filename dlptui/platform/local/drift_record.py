"""A local deployment's drift record: `serving/<name>/drift.json`, beside its state and removed with it.

What is in it is actions/drift.py's (the evaluations of each version's sliding window and the changes of
its verdict); this side keeps it whole or not at all, and never brings back a deployment that is gone.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlptui.errors import NotFound, PlatformError
from dlptui.platform.local import processes

FILE = "drift.json"


def read(folder: Path) -> dict:
    """The record, or {} before the first (or where an older one cannot be read: the evaluations start again)."""
    try:
        found = json.loads((folder / FILE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write(folder: Path, name: str, record: dict) -> None:
    if not (folder / "state.json").is_file():
        raise NotFound(f"There is no deployment named {name!r}; its drift is not recorded.")
    try:
        processes.write_json(folder / FILE, record)
    except FileNotFoundError:  # undeployed meanwhile
        raise NotFound(f"There is no deployment named {name!r}; its drift is not recorded.") from None
    except OSError as e:
        raise PlatformError(f"The drift record of deployment {name!r} cannot be written ({e.strerror or e}).") from None
