"""Start an experiment or a search: a config file (trial/*.yaml), the data commit to train on, an
optional name, and optionally a version or checkpoint to start warm from.

`StartDialog(configs, commits, default_config)` (what `actions.training.start_choices` gives)
dismisses with `(config path, DataRef or None, name or None, source or None)`, or None on Esc.
`None` as the data means the commit the config itself names; the source is MODEL@VERSION,
MODEL@ALIAS or a checkpoint uuid (`actions.training.start(..., source=)`).
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.widgets import Input, Select

from dlptui.errors import InvalidInput
from dlptui.platform.model import DataRef
from dlptui.tui.dialogs.base import Dialog, field

CONFIG_DATA = "the data the config names"


class StartDialog(Dialog["tuple[Path, DataRef | None, str | None, str | None] | None"]):
    OK = ("ok", "Start")
    FOCUS = "#ok"

    def __init__(self, configs: list[Path], commits: list[tuple[str, DataRef]], default_config: Path | None = None) -> None:
        super().__init__("Start an experiment")
        self.configs = configs
        self.commits = commits
        self.default_config = default_config if default_config in configs else (configs[0] if configs else None)

    def compose_body(self) -> ComposeResult:
        yield from field("config file", Select(
            [(p.name, i) for i, p in enumerate(self.configs)],
            value=self.configs.index(self.default_config) if self.default_config else Select.NULL,
            allow_blank=not self.configs,
            id="config",
        ))
        yield from field("data commit", Select(
            [(CONFIG_DATA, -1), *((label, i) for i, (label, _) in enumerate(self.commits))],
            value=-1,
            allow_blank=False,
            id="data",
        ))
        yield from field("name (optional)", Input(placeholder="the config's name", id="name"))
        yield from field("start from (optional)", Input(placeholder="MODEL@VERSION or a checkpoint uuid: warm start", id="source"))

    def result(self) -> tuple[Path, DataRef | None, str | None, str | None]:
        config = self.query_one("#config", Select).value
        if not isinstance(config, int):
            raise InvalidInput("Pick a config file first.")
        data = self.query_one("#data", Select).value
        ref = self.commits[data][1] if isinstance(data, int) and data >= 0 else None
        source = self.query_one("#source", Input).value.strip() or None
        return self.configs[config], ref, self.query_one("#name", Input).value.strip() or None, source
