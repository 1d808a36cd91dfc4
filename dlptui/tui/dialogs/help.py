"""`?`: the keys of the current screen, from its active bindings (so a remapped key shows remapped)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from dlptui.tui.dialogs.base import Dialog
from dlptui.tui.widgets.resource_table import ResourceTable


class HelpDialog(Dialog[None]):
    """A table of (key, action, binding id); Esc, `?`, `q` or Enter closes it."""

    DEFAULT_CSS = """
    HelpDialog #help-keys { height: auto; max-height: 36; }
    """
    OK = None
    CANCEL = ("close", "Close")
    FOCUS = "#help-keys"
    BINDINGS = [Binding("question_mark,q", "cancel", "Close", id="help.close")]

    def __init__(self, title: str, actions: list) -> None:
        super().__init__(f"Keys of {title}")
        self.actions = actions

    def compose_body(self) -> ComposeResult:
        table = ResourceTable([("key", "KEY"), ("action", "ACTION"), ("id", "ID (for [keymap])")], id="help-keys",
                              zebra_stripes=False)
        table.update_rows((binding_id, (key, description, binding_id)) for key, description, binding_id, *_ in self.actions)
        yield table

    def result(self) -> None:
        return None

    def action_confirm(self) -> None:
        self.cancel()  # Enter closes it wherever the focus is (on the table, on Close)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.cancel()
