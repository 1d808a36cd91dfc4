"""A yes/no question before a destructive action; "No" has the focus, so Enter keeps things as they are."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from dlptui.tui.dialogs.base import Dialog
from dlptui.tui.shown import shown


class ConfirmDialog(Dialog[bool]):
    """Dismisses with True only on "Yes" (the button or `y`); Esc, `n` and Enter on "No" give False."""

    OK = ("yes", "Yes")
    CANCEL = ("no", "No")
    OK_VARIANT = "error"
    CANCELLED = False
    FOCUS = "#no"
    BINDINGS = [
        Binding("y", "yes", "Yes", id="confirm.yes"),
        Binding("n", "cancel", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, heading: str = "Are you sure?") -> None:
        super().__init__(heading)
        self.question = question

    def compose_body(self) -> ComposeResult:
        yield Static(shown(self.question), id="question", markup=False)

    def action_yes(self) -> None:
        self.confirm()

    def action_confirm(self) -> None:
        """Enter anywhere but on "Yes" keeps things as they are: only a deliberate yes destroys."""
        if self.focused is not None and self.focused.id == "yes":
            self.confirm()
        else:
            self.cancel()
