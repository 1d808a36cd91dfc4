"""The one base of every modal of the console: one look, Esc cancels, Enter confirms, one way to answer.

    class NameDialog(Dialog[str]):
        OK = ("ok", "Create")

        def compose_body(self):
            yield from field("name", Input(id="name"))

        def result(self) -> str:
            text = self.query_one("#name", Input).value.strip()
            if not text:
                raise InvalidInput("Type a name, or press Esc to cancel.")
            return text

    self.app.push_screen(NameDialog("Name of the new repo"), then)   # then(value), or then(None)

- Look: a box in the middle of the screen (thick border, `Dialog.WIDTH` cells wide, or
  most of the screen with the class `-wide`), the heading in bold, the body, one line for a
  refusal, and the buttons in a row on the right: OK first, then Cancel.
- Keys: Esc cancels. Enter confirms, wherever the focus is: in an input, on a closed Select (it
  does not open the Select: Space, or the arrows, do), on the body. On a button it presses that
  button (so Enter on a focused "No" answers no); in an open Select it picks the option; in a list
  or tree of the dialog it does what that list does with Enter (close the help, follow a link,
  pick a file), which answers the dialog where the dialog says so.
- Answer: `result()` builds the value the dialog is dismissed with; raising InvalidInput
  keeps the dialog open with that sentence under the body. Cancelling dismisses with
  `CANCELLED` (None unless a dialog says otherwise). `confirm()` / `cancel()` do either.
- Focus: `FOCUS` (a selector, e.g. "#no") has the focus when the dialog opens; by default
  the first field that can take it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.scroll_view import ScrollView
from textual.widgets import Button, Input, Label, OptionList, Static

from dlptui.errors import InvalidInput
from dlptui.tui.shown import shown

T = TypeVar("T")


def field(label: str, widget: Widget) -> ComposeResult:
    """A label over its field."""
    yield Label(shown(label), classes="dialog-label", markup=False)
    yield widget


class Dialog(ModalScreen[T], Generic[T]):
    """A modal on the console's one dialog look (see the module docstring)."""

    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog > #dialog {
        width: 76; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    Dialog.-wide > #dialog { width: 90%; height: 85%; max-height: 85%; }
    Dialog #dialog-title { text-style: bold; margin-bottom: 1; }
    Dialog .dialog-label { color: $text-muted; margin-top: 1; }
    Dialog #dialog-body { height: auto; }
    Dialog.-wide #dialog-body { height: 1fr; }
    Dialog #dialog-error { color: $error; height: auto; margin-top: 1; display: none; }
    Dialog #dialog-error.-shown { display: block; }
    Dialog #dialog-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    Dialog #dialog-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
        Binding("enter", "confirm", "OK", id="dialog.confirm", show=False, priority=True),
    ]

    OK: ClassVar[tuple[str, str] | None] = ("ok", "OK")  # (button id, label); None: no OK button
    CANCEL: ClassVar[tuple[str, str] | None] = ("cancel", "Cancel")
    OK_VARIANT: ClassVar[str] = "primary"
    CANCELLED: ClassVar[Any] = None
    FOCUS: ClassVar[str | None] = None

    def __init__(self, heading: str = "", ok: str | None = None) -> None:
        """`heading`: the bold line at the top; `ok`: another label for the OK button ("Deploy")."""
        super().__init__()
        self.heading = heading
        if ok is not None and self.OK is not None:
            self.OK = (self.OK[0], ok)

    # -- composition -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            if self.heading:
                yield Static(shown(self.heading), id="dialog-title", markup=False)
            with Vertical(id="dialog-body"):
                yield from self.compose_body()
            yield Static("", id="dialog-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                if self.OK is not None:
                    yield Button(self.OK[1], id=self.OK[0], variant=self.OK_VARIANT)
                if self.CANCEL is not None:
                    yield Button(self.CANCEL[1], id=self.CANCEL[0])

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        if self.FOCUS:
            self.query_one(self.FOCUS).focus()

    # -- answering -----------------------------------------------------------------------

    def result(self) -> T:
        """The value to answer with; raise InvalidInput with one sentence to keep the dialog open."""
        return True  # type: ignore[return-value]

    def refuse(self, sentence: str) -> None:
        """Say in the dialog why it cannot answer yet; it stays open."""
        error = self.query_one("#dialog-error", Static)
        error.update(shown(sentence))
        error.set_class(bool(sentence), "-shown")

    def confirm(self) -> None:
        try:
            value = self.result()
        except InvalidInput as e:
            self.refuse(str(e))
            return
        self.dismiss(value)

    def cancel(self) -> None:
        self.dismiss(self.CANCELLED)

    def action_confirm(self) -> None:
        focused = self.focused
        if isinstance(focused, Button):
            focused.press()
        elif isinstance(focused, (ScrollView, OptionList)) and not isinstance(focused, Input):
            raise SkipAction()  # an open Select's options, a table, a tree or a list of links: Enter is theirs
        else:
            self.confirm()

    def action_cancel(self) -> None:
        self.cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if self.OK is not None and event.button.id == self.OK[0]:
            self.confirm()
        elif self.CANCEL is not None and event.button.id == self.CANCEL[0]:
            self.cancel()
