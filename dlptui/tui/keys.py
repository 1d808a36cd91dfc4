"""Keys shared by every list, and what the help and the palette list: the actions a screen offers now.

- `MOVE_KEYS`: `j` / `k` move the cursor down / up, in every list and tree of the console
  (tables, file trees, the lineage links, the help), next to the arrow keys. They have ids
  ("list.down", "list.up") like every other binding, so a `[keymap]` can move them.
- `screen_actions(screen)`: (key shown, description, binding id, action, namespace) of every
  action the screen offers now, from its active bindings: so a remapped key shows as
  remapped, and an action that `check_action` hides (read-only mode) is left out. The `?`
  dialog and the command palette (`commands.py`) both read it, so they always agree with
  the footer.

The console's whole key scheme is written down in the docstring of `app.py`.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.screen import Screen

MOVE_KEYS = [
    Binding("j", "cursor_down", "Down", id="list.down", show=False),
    Binding("k", "cursor_up", "Up", id="list.up", show=False),
]


def screen_actions(screen: Screen) -> list[tuple[str, str, str, str, Any]]:
    """(key shown, description, binding id, action, namespace) of every action the screen offers now.

    Bindings without an id (a widget's own cursor keys) are left out; so are actions that
    `check_action` hides (read-only mode). App-wide actions come last.
    """
    app = screen.app
    seen: set[str] = set()
    rows = []
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.id or binding.id in seen or not active.enabled:
            continue
        seen.add(binding.id)
        description = binding.description or binding.action.replace("_", " ")
        rows.append((app.get_key_display(binding), description, binding.id, binding.action, active.node))
    rows.sort(key=lambda r: (r[2].split(".")[0] == "app", r[2]))
    return rows
