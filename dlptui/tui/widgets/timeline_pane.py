"""The Deployments screen's timeline: what the selected deployment served when, as `render.timeline` draws it (the
CLI's `deployment history NAME --timeline` prints the same lines), coloured by glyph.

    pane = TimelinePane(id="timeline")
    pane.show_history("dogcat-deploy", history, drift_marks)   # entries and drift changes as DeploymentChange

Drawn again at the pane's width whenever it changes, so it stays within an 80-column terminal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from dlptui.platform.model import DeploymentChange
from dlptui.render import timeline as render
from dlptui.text import plain
from dlptui.tui.shown import show_in

STYLE = {render.PRIMARY: "green", render.CANARY: "yellow", render.SHADOW: "cyan",
         render.AUTOMATIC: "bold magenta", render.DRIFT: "bold red"}
EVENTS_SHOWN = 2  # the last marked events in words, under the drawing (the CLI's --timeline shows 3)


def coloured(line: str) -> Text:
    out = Text(plain(line))
    for i, ch in enumerate(out.plain):
        if ch in STYLE:
            out.stylize(STYLE[ch], i, i + 1)
    return out


class TimelinePane(Static):
    """Hidden until a deployment is selected."""

    DEFAULT_CSS = """
    TimelinePane { display: none; height: auto; border: round $panel-lighten-2; border-title-color: $text-muted;
                   padding: 0 1; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[str, tuple[DeploymentChange, ...], tuple[DeploymentChange, ...]] | None = None
        self._width = 0

    def show_history(self, name: str | None, history: Sequence[DeploymentChange],
                     drift: Sequence[DeploymentChange] = ()) -> None:
        if self.display != (name is not None):
            self.display = name is not None
        self._shown = None if name is None else (name, tuple(history), tuple(drift))
        self._draw()

    def _draw(self) -> None:
        if self._shown is None:
            show_in(self, "")
            return
        name, history, drift = self._shown
        title = f"What {name} served when"
        if str(self.border_title or "") != title:
            self.border_title = Text(plain(title))
        width = self._width = self.content_size.width or max(self.app.size.width - 4, 20)
        lines = render.timeline(history, time.time(), width, drift=drift, marks=EVENTS_SHOWN)
        show_in(self, Text("\n").join(coloured(line) for line in lines))  # the same drawing: no new layout

    def on_resize(self) -> None:
        if self.content_size.width != self._width:
            self._draw()
