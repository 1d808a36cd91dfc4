"""`?`: the keys of the current screen, built from its active bindings (so a remapped key shows)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static


def screen_actions(screen: Screen) -> list[tuple[str, str, str, str]]:
    """(key shown, description, binding id, action) of every action the screen offers now.

    Bindings without an id (a widget's own cursor keys) are left out; so are actions
    that `check_action` hides (read-only mode). Used by the help and the command palette.
    """
    app = screen.app
    seen: set[str] = set()
    rows = []
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.id or binding.id in seen or not active.enabled:
            continue
        seen.add(binding.id)
        description = binding.description or binding.action.replace("_", " ")
        rows.append((app.get_key_display(binding), description, binding.id, binding.action, active.node))
    rows.sort(key=lambda r: (r[2].split(".")[0] == "app", r[2]))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 80; max-height: 90%; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    HelpScreen DataTable { height: auto; max-height: 40; }
    """

    def __init__(self, title: str, actions: list) -> None:
        super().__init__()
        self.title_text = title
        self.actions = actions

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]Keys of {self.title_text}[/b]  (Esc closes)")
            table = DataTable(cursor_type="row", id="help-keys")
            table.add_columns("KEY", "ACTION", "ID (for [keymap])")
            for key, description, binding_id, *_ in self.actions:
                table.add_row(key, description, binding_id, key=binding_id)
            yield table

    def action_dismiss(self) -> None:
        self.dismiss(None)
