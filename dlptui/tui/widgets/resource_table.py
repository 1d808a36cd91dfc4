"""A DataTable of platform resources: rows keyed by id, updated in place, filtered.

    table = ResourceTable(columns=[("name", "NAME"), ("size", "SIZE")])
    table.update_rows([("dogs-and-cats", ("dogs-and-cats", "1.2 MiB")), ...])

    table = ResourceTable.of(render.data.REPO_COLUMNS, id="repos")      # a noun's columns, from the render layer
    table.update_rows(rendered(render.data.REPO_COLUMNS, repos, key=lambda r: r.name))

`update_rows` keeps the row under the cursor where it is: rows still there are updated
cell by cell, rows gone are removed, new ones added, all inside one batch update.
`j` / `k` move the cursor down / up, as the arrow keys do (`keys.MOVE_KEYS`).
`set_filter("cat")` shows only the rows where some cell matches the regex (case
insensitive); a leading `!` inverts it. An invalid regex is matched as plain text and
`set_filter` returns a sentence saying so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.widgets import DataTable

from dlptui import render
from dlptui.text import plain
from dlptui.tui.keys import MOVE_KEYS

Row = tuple[str, Sequence[Any]]


def rendered(columns: Sequence[render.Column], items: Iterable[Any], key: Callable[[Any], str],
             styled: dict[str, Callable[[Any, str], Any]] | None = None) -> Iterator[Row]:
    """`(key, cells)` rows of `items`, each cell the render layer's text; a column in `styled` is shown as what
    `styled[column](item, text)` makes of it (a rich Text in a colour, a progress bar)."""
    styled = styled or {}
    for item in items:
        cells = render.cells(columns, item)
        yield key(item), tuple(styled[c.key](item, v) if c.key in styled else v for c, v in zip(columns, cells))


def compile_filter(text: str) -> tuple[re.Pattern | None, bool, str | None]:
    """(pattern, inverted, error sentence or None) for a filter as the user typed it."""
    inverted = text.startswith("!")
    body = text[1:] if inverted else text
    if not body:
        return None, inverted, None
    try:
        return re.compile(body, re.IGNORECASE), inverted, None
    except re.error as e:
        return re.compile(re.escape(body), re.IGNORECASE), inverted, f"Not a valid regex ({e}); matching it as text."


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell).replace("\\[", "[")


class ResourceTable(DataTable):
    """A keyed, filterable DataTable (see the module docstring)."""

    DEFAULT_CSS = """
    ResourceTable { height: 1fr; }
    """
    BINDINGS = MOVE_KEYS

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._rows: dict[str, tuple[Any, ...]] = {}  # every row, filtered or not, in order
        self._shown: list[str] = []  # keys shown, in order
        self.filter_text = ""
        self._pattern: re.Pattern | None = None
        self._inverted = False

    @classmethod
    def of(cls, columns: Sequence[render.Column], **kwargs: Any) -> ResourceTable:
        """A table with a noun's columns (the render layer's)."""
        return cls([(c.key, c.header) for c in columns], **kwargs)

    def on_mount(self) -> None:
        for key, label in self._column_spec:
            self.add_column(label, key=key)
        self._sync()

    # -- data ---------------------------------------------------------------------

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= len(self._shown):
            return None
        return self._shown[self.cursor_row]

    @property
    def all_keys(self) -> list[str]:
        return list(self._rows)

    @property
    def shown_keys(self) -> list[str]:
        return list(self._shown)

    def update_rows(self, rows: Iterable[Row]) -> None:
        # a str cell is user text, shown as it is: its markup escaped (a commit message "[/bold]" would
        # crash the table, "[link=...]" would fake a link) and its escape sequences stripped
        self._rows = {key: tuple(escape(plain(c)) if isinstance(c, str) else c for c in cells) for key, cells in rows}
        self._sync()

    def set_filter(self, text: str) -> str | None:
        self.filter_text = text
        self._pattern, self._inverted, error = compile_filter(text)
        self._sync()
        return error

    def _matches(self, cells: tuple[Any, ...]) -> bool:
        if self._pattern is None:
            return True
        hit = any(self._pattern.search(_plain(c)) for c in cells)
        return hit != self._inverted

    def _sync(self) -> None:
        if not self.is_mounted:
            return
        wanted = [k for k, cells in self._rows.items() if self._matches(cells)]
        selected = self.selected_key
        column_keys = [key for key, _ in self._column_spec]
        with self.app.batch_update():
            keep = set(wanted)
            for key in [k for k in self._shown if k not in keep]:
                self.remove_row(key)
            self._shown = [k for k in self._shown if k in keep]
            if wanted[: len(self._shown)] != self._shown:  # the order changed: rebuild
                self.clear()
                self._shown = []
            for key in self._shown:  # rows that stay: only the cells that changed
                for col, old, new in zip(column_keys, self.get_row(key), self._rows[key]):
                    if _plain(old) != _plain(new) or type(old) is not type(new):
                        self.update_cell(key, col, new, update_width=True)
            for key in wanted[len(self._shown) :]:
                self.add_row(*self._rows[key], key=key)
                self._shown.append(key)
            if selected in keep:
                index = self._shown.index(selected)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False)
