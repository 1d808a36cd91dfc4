"""`:`: a prompt that jumps to a screen by name or alias, like k9s (`:exp`, `:dp`, `:data`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input


class JumpPrompt(ModalScreen[str | None]):
    """Dismisses with the text typed (the app resolves it), or None on Esc."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="jump.cancel")]
    DEFAULT_CSS = """
    JumpPrompt { align: center top; background: $background 30%; }
    JumpPrompt Input { width: 60; margin-top: 3; border: tall $accent; }
    """

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder=": " + " ".join(self.names),
            suggester=SuggestFromList(self.names, case_sensitive=False),
            id="jump",
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip().lstrip(":"))

    def action_cancel(self) -> None:
        self.dismiss(None)
