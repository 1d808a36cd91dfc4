"""The console's one way to show user text: file names, commit messages, log lines, names typed in a
prompt, and the error sentences that carry them.

Textual reads a `str` given to a notification, a Static, a Label, a tree node or a table cell as
content markup: `[b]` styles, `[/x]` crashes the renderer ("closing tag has no opening tag"),
`[@click=app.quit]` makes the words a button that runs an action. So user text goes to a widget as
a rich `Text` made here (never parsed), or as a `str` with markup off, and in both forms without
the terminal escape sequences and control characters that `dlptui.text.plain` removes. Every
notification goes through `DlpApp.notify`, which does this for its words and title; every Static
and Label of the console is built with `markup=False` (tests/test_tui_structure.py holds to it).
"""

from __future__ import annotations

from rich.text import Text

from dlptui.text import plain

__all__ = ["plain", "show_in", "shown"]


def shown(value: object, style: str = "") -> Text:
    """`value` as words on screen: exactly as written (brackets and all), no escape sequence, no control character."""
    return Text(plain(value), style=style)


def show_in(widget, content, display: bool | None = None) -> bool:
    """Give a Static `content` (and `display`) only when it differs from what it shows: `Static.update` lays the
    whole screen out again, which a poll that found nothing new must not cost (the Deployments screen polls every
    2 s). Whether it changed."""
    if display is not None and widget.display != display:
        widget.display = display
    if getattr(widget, "_shown_content", None) == content:
        return False
    widget._shown_content = content
    widget.update(content)
    return True
