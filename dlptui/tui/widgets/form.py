"""A small modal form: labelled fields, an OK button, Esc cancels, a wrong value is one sentence.

    class DeployDialog(FormDialog):
        def compose_fields(self):
            yield from field("name", Input("dogcat-deploy", id="name"))
        def result(self):
            return self.query_one("#name", Input).value   # raise InvalidInput to refuse

    self.app.push_screen(DeployDialog("Deploy a model version", ok="Deploy"), then)

`then(value)` gets what `result()` returned, or None when cancelled. Enter in an input
submits; the sentence of an InvalidInput raised by `result()` shows under the fields
and the form stays open.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from dlptui.errors import InvalidInput


def field(label: str, widget: Widget) -> ComposeResult:
    """A label over its field."""
    yield Label(label, classes="form-label")
    yield widget


class FormDialog(ModalScreen[Any]):
    DEFAULT_CSS = """
    FormDialog { align: center middle; }
    FormDialog > #form { width: 72; height: auto; max-height: 95%; border: thick $primary; background: $surface; padding: 1 2; }
    FormDialog #form-title { text-style: bold; margin-bottom: 1; }
    FormDialog .form-label { color: $text-muted; margin-top: 1; }
    FormDialog #form-error { color: $error; height: auto; margin-top: 1; }
    FormDialog #form-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    FormDialog #form-buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="form.cancel")]

    def __init__(self, heading: str, ok: str = "OK") -> None:
        super().__init__()
        self.heading = heading
        self.ok_label = ok

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(self.heading, id="form-title", markup=False)
            yield from self.compose_fields()
            yield Static("", id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button(self.ok_label, id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def compose_fields(self) -> ComposeResult:
        yield from ()

    def result(self) -> Any:
        """The form's value; raise InvalidInput with one sentence to keep the form open."""
        return True

    def submit(self) -> None:
        try:
            value = self.result()
        except InvalidInput as e:
            self.query_one("#form-error", Static).update(str(e))
            return
        self.dismiss(value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
