"""One line to type: a name (`InputDialog`), or the screen to jump to (`JumpPrompt`, `:` like k9s)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from dlptui.errors import InvalidInput
from dlptui.tui.dialogs.base import Dialog


class InputDialog(Dialog[str | None]):
    """A question and one line; dismisses with the stripped text (never empty), or None on Esc."""

    def __init__(self, question: str, placeholder: str = "", value: str = "", ok: str = "OK") -> None:
        super().__init__(question, ok=ok)
        self.placeholder = placeholder
        self.value = value

    def compose_body(self) -> ComposeResult:
        yield Input(value=self.value, placeholder=self.placeholder, id="answer")

    def result(self) -> str:
        text = self.query_one("#answer", Input).value.strip()
        if not text:
            raise InvalidInput("Type something, or press Esc to cancel.")
        return text


class JumpPrompt(Dialog[str | None]):
    """`:` then a screen's name or alias (`exp`, `dp`), or `q` / `quit`; dismisses with the text typed."""

    OK = ("ok", "Go")

    def __init__(self, names: list[str]) -> None:
        super().__init__("Jump to a screen")
        self.names = names

    def compose_body(self) -> ComposeResult:
        yield Static("A screen's name, an alias or a prefix; q quits.", classes="dialog-label", markup=False)
        yield Input(
            placeholder=": " + " ".join(self.names),
            suggester=SuggestFromList(self.names, case_sensitive=False),
            id="jump",
        )

    def result(self) -> str:
        return self.query_one("#jump", Input).value.strip().lstrip(":").strip()
