"""Start an experiment: pick a config file (trial/*.yaml) and the data commit to train on.

`StartDialog(configs, commits)` dismisses with `(config path, DataRef or None, name or None)`
or None on Esc. `None` as the data means the commit the config itself names.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from dlptui.platform.model import DataRef

CONFIG_DATA = "the data the config names"


class StartDialog(ModalScreen[tuple[Path, DataRef | None, str | None] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]
    DEFAULT_CSS = """
    StartDialog { align: center middle; }
    StartDialog > Vertical { width: 100; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    StartDialog Label { margin-top: 1; }
    StartDialog Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    """

    def __init__(self, configs: list[Path], commits: list[tuple[str, DataRef]], default_config: Path | None = None) -> None:
        super().__init__()
        self.configs = configs
        self.commits = commits
        self.default_config = default_config if default_config in configs else (configs[0] if configs else None)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Start an experiment[/b]  (Esc cancels)")
            yield Label("Config file")
            yield Select(
                [(p.name, i) for i, p in enumerate(self.configs)],
                value=self.configs.index(self.default_config) if self.default_config else Select.NULL,
                allow_blank=not self.configs,
                id="config",
            )
            yield Label("Data commit")
            yield Select(
                [(CONFIG_DATA, -1), *((label, i) for i, (label, _) in enumerate(self.commits))],
                value=-1,
                allow_blank=False,
                id="data",
            )
            yield Label("Name (optional)")
            yield Input(placeholder="the config's name", id="name")
            with Horizontal():
                yield Button("Start", id="start", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#start", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._answer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._answer()

    def _answer(self) -> None:
        config = self.query_one("#config", Select).value
        if not isinstance(config, int):
            self.notify("Pick a config file first.", severity="warning")
            return
        data = self.query_one("#data", Select).value
        ref = self.commits[data][1] if isinstance(data, int) and data >= 0 else None
        name = self.query_one("#name", Input).value.strip() or None
        self.dismiss((self.configs[config], ref, name))

    def action_cancel(self) -> None:
        self.dismiss(None)
