"""Panes: a focusable widget (a table, a tree, a log) in a titled border, the focused one marked.

    class PaneLog(PaneTitle, Log): ...
    log = PaneLog(id="log"); log.set_title("Server log of dogcat-deploy")

The title is in the border, as words (never markup); while the widget has the focus it starts with
"▶ " and the border takes the accent colour (`PANE_CSS`), so a person sees which pane the keys go to,
in colour or not. Gaining the focus refreshes the screen's bindings: the footer's `tab` names the
pane the focus moves to next (`screens.base`).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.widgets import Log

from dlptui.text import plain

FOCUS_MARK = "▶ "
PANE_CSS = """
    border: round $panel-lighten-2;
    border-title-color: $text-muted;
    border-subtitle-color: $text-muted;
    &:focus { border: round $accent; border-title-color: $accent; border-title-style: bold; }
"""


class PaneTitle:
    """Mixed into a focusable Widget: `set_title(words)`; the border's title, marked while focused."""

    pane_title: str = ""

    def set_title(self, title: str) -> None:
        if title != self.pane_title:
            self.pane_title = title
            self._paint_title()

    def _paint_title(self, focused: bool | None = None) -> None:
        """`focused`: as a Focus or Blur event says (they reach this before the widget's own has_focus changes)."""
        words = plain(self.pane_title)
        marked = self.has_focus if focused is None else focused
        self.border_title = Text((FOCUS_MARK if marked else "") + words) if words else None

    def on_mount(self) -> None:
        self._paint_title()

    def on_focus(self, event: events.Focus) -> None:
        self._paint_title(True)

    def on_blur(self, event: events.Blur) -> None:
        self._paint_title(False)


class PaneLog(PaneTitle, Log):
    """A Log in a titled pane."""

    DEFAULT_CSS = "PaneLog {" + PANE_CSS + "}"

    def __init__(self, title: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.pane_title = title


class PaneScroll(PaneTitle, VerticalScroll):
    """Lines of words that may be longer than the room they get (a canary's verdicts, the gate, drift),
    in a titled pane of at most 35 % of the screen that scrolls when focused: what does not fit is one `tab`
    and a few arrows away, and the panes under it keep their room on a small terminal."""

    DEFAULT_CSS = "PaneScroll { height: auto; max-height: 35%; padding: 0 1;" + PANE_CSS + "}"

    def __init__(self, *children, title: str = "", **kwargs) -> None:
        super().__init__(*children, **kwargs)
        self.pane_title = title
