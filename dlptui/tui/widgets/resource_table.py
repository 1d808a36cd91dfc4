"""A DataTable of platform resources: rows keyed by id, updated in place, filtered, windowed, in a titled pane.

    table = ResourceTable(columns=[("name", "NAME"), ("size", "SIZE")], title="Repos")
    table.update_rows([("dogs-and-cats", ("dogs-and-cats", "1.2 MiB")), ...])

    table = ResourceTable.of(render.data.REPO_COLUMNS, title="Repos", id="repos")  # a noun's columns, from the render layer
    table.update_rows(rendered(render.data.REPO_COLUMNS, repos, key=lambda r: r.name))

- `update_rows` keeps the row under the cursor where it is: a row whose cells are the same as
  before is not touched, a changed one is updated cell by cell, rows gone are removed, new
  ones added, all inside one batch update. A poll that brings the same rows costs one
  comparison of tuples per row.
- `j` / `k` move the cursor down / up, as the arrow keys do (`keys.MOVE_KEYS`).
- `set_filter("cat")` shows only the rows where some cell matches the regex (case
  insensitive); a leading `!` inverts it. An invalid regex is matched as plain text and
  `set_filter` returns a sentence saying so.
- A window: the DataTable holds at most `WINDOW` rows of the list at once (drawing costs per
  row held, so a list of 5,000 experiments draws as fast as one of 200); the cursor moving
  near an edge of the window slides it, `Home` / `End` go to the first / last row of the whole
  list, `select_key(key)` brings any row into it.
- The pane: a border with the table's title (`title=`); the focused table's border is in the
  accent colour and its title starts with "▶". When the list holds more rows than the pane
  shows (cut by the screen, a window, or a filter), the bottom border says which rows are
  shown of how many ("rows 1-20 of 5,000"; "3 of 40 match the filter").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import events
from rich.cells import cell_len
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from dlptui import render
from dlptui.text import plain
from dlptui.tui.keys import MOVE_KEYS
from dlptui.tui.widgets.pane import PANE_CSS, PaneTitle

Row = tuple[str, Sequence[Any]]
WINDOW = 200  # rows held by the DataTable at most
EDGE = 10  # the window slides when the cursor comes this close to one of its ends


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


def count(n: int) -> str:
    return f"{n:,}"


class ResourceTable(PaneTitle, DataTable):
    """A keyed, filterable, windowed DataTable in a titled pane (see the module docstring)."""

    DEFAULT_CSS = "ResourceTable { height: 1fr;" + PANE_CSS + "}"
    BINDINGS = MOVE_KEYS

    def __init__(self, columns: Sequence[tuple[str, str]], title: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        self._held: dict[str, tuple[Any, ...]] = {}  # the cells the DataTable holds, by key (what the last sync drew)
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._raw: dict[str, tuple[Any, ...]] = {}  # every row as given, in order
        self._rows: dict[str, tuple[Any, ...]] = {}  # every row as drawn (user text escaped), filtered or not
        self._wanted: list[str] = []  # the keys that pass the filter, in order
        self._offset = 0  # where the window starts in _wanted
        self._shown: list[str] = []  # the keys the DataTable holds: _wanted[_offset:_offset + WINDOW]
        self._ready = False  # columns added (on_mount): rows given before that are drawn then
        self._sliding = False
        self._last_note = ""
        self.filter_text = ""
        self._pattern: re.Pattern | None = None
        self._inverted = False
        self.pane_title = title

    @classmethod
    def of(cls, columns: Sequence[render.Column], **kwargs: Any) -> ResourceTable:
        """A table with a noun's columns (the render layer's)."""
        return cls([(c.key, c.header) for c in columns], **kwargs)

    def on_mount(self) -> None:
        for key, label in self._column_spec:
            self.add_column(Text(label), key=key)  # a label is words, never markup ("ID (for [keymap])")
        self._ready = True
        self._paint_title()
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
        """Every key that passes the filter, in order (the window holds a part of them when there are many)."""
        return list(self._wanted)

    def cells(self, key: str) -> tuple[Any, ...]:
        return self._rows[key]

    def update_rows(self, rows: Iterable[Row]) -> None:
        # a str cell is user text, shown as it is: its markup escaped (a commit message "[/bold]" would
        # crash the table, "[link=...]" would fake a link) and its escape sequences stripped
        before, drawn = self._raw, self._rows
        raw: dict[str, tuple[Any, ...]] = {}
        cooked: dict[str, tuple[Any, ...]] = {}
        for key, cells in rows:
            cells = tuple(cells)
            raw[key] = cells
            old = before.get(key)
            cooked[key] = drawn[key] if old is not None and old == cells else tuple(
                escape(plain(c)) if isinstance(c, str) else c for c in cells)
        if raw == before and list(raw) == list(before):
            return  # the same rows in the same order: nothing to draw
        self._raw, self._rows = raw, cooked
        self._refilter()

    def set_filter(self, text: str) -> str | None:
        self.filter_text = text
        self._pattern, self._inverted, error = compile_filter(text)
        self._refilter()
        return error

    def select_key(self, key: str) -> bool:
        """Put the cursor on the row `key` (sliding the window to it); False when no shown row has that key."""
        if key not in self._rows or not self._ready:
            return False
        try:
            index = self._wanted.index(key)
        except ValueError:
            return False
        if not self._offset <= index < self._offset + len(self._shown):
            self._offset = max(0, min(index - WINDOW // 2, len(self._wanted) - WINDOW))
            self._sync(keep=key)
        if key in self._shown:
            self.move_cursor(row=self._shown.index(key), animate=False)
        return True

    def _matches(self, cells: tuple[Any, ...]) -> bool:
        if self._pattern is None:
            return True
        hit = any(self._pattern.search(_plain(c)) for c in cells)
        return hit != self._inverted

    def _refilter(self) -> None:
        selected = self.selected_key
        self._wanted = [k for k, cells in self._rows.items() if self._matches(cells)]
        if selected in self._rows and selected in set(self._wanted):  # keep the window around the cursor's row
            index = self._wanted.index(selected)
            if not self._offset <= index < self._offset + WINDOW:
                self._offset = max(0, index - WINDOW // 2)
        self._offset = max(0, min(self._offset, len(self._wanted) - WINDOW))
        self._sync(keep=selected)

    def _sync(self, keep: str | None = None) -> None:
        if not self._ready:
            return
        wanted = self._wanted[self._offset : self._offset + WINDOW]
        selected = keep if keep is not None else self.selected_key
        column_keys = [key for key, _ in self._column_spec]
        with self.app.batch_update():
            keep_keys = set(wanted)
            for key in [k for k in self._shown if k not in keep_keys]:
                self.remove_row(key)
            self._shown = [k for k in self._shown if k in keep_keys]
            if wanted[: len(self._shown)] != self._shown:  # the order changed: rebuild
                self.clear()
                self._shown = []
            for key in self._shown:  # rows that stay: only those whose cells changed, only the cells that did
                old_row, new_row = self._held[key], self._rows[key]
                if old_row == new_row:
                    continue
                for col, old, new in zip(column_keys, old_row, new_row):
                    if _plain(old) != _plain(new) or type(old) is not type(new) or old != new:
                        # a column is made wider for a wider cell only: a cell that fits needs no new layout
                        wider = cell_len(_plain(new)) > self.columns[ColumnKey(col)].content_width
                        self.update_cell(key, col, new, update_width=wider)
                self._held[key] = new_row
            added = len(wanted) > len(self._shown)
            for key in wanted[len(self._shown) :]:
                self.add_row(*self._rows[key], key=key)
                self._held[key] = self._rows[key]
                self._shown.append(key)
            for key in [k for k in self._held if k not in keep_keys]:
                del self._held[key]
            if selected in keep_keys:
                index = self._shown.index(selected)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False)
            if added:
                # every line drawn again once the new rows have set the column widths (DataTable measures them when
                # idle, and keeps a line drawn in between, the cursor's, with the narrower widths)
                self.set_timer(0.05, self.notify_style_update)
        self._note()

    def clear(self, columns: bool = False):
        self._held.clear()
        return super().clear(columns)

    # -- the window ---------------------------------------------------------------

    def watch_cursor_coordinate(self, old, new) -> None:
        super().watch_cursor_coordinate(old, new)
        if self._sliding or not self._ready:
            return
        row = new.row
        near_end = row >= len(self._shown) - EDGE and self._offset + len(self._shown) < len(self._wanted)
        near_start = row < EDGE and self._offset > 0
        if near_end or near_start:
            self._sliding = True
            self.call_after_refresh(self._slide)
        self._note()

    def _slide(self) -> None:
        """Move the window so the cursor's row sits in its middle."""
        try:
            key = self.selected_key
            if key is None:
                return
            index = self._wanted.index(key)
            self._offset = max(0, min(index - WINDOW // 2, len(self._wanted) - WINDOW))
            self._sync(keep=key)
            self._scroll_cursor_into_view()
        finally:
            self._sliding = False

    def action_scroll_top(self) -> None:
        if self._offset:
            self._offset = 0
            self._sync(keep=self._wanted[0] if self._wanted else None)
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        end = max(0, len(self._wanted) - WINDOW)
        if self._offset != end:
            self._offset = end
            self._sync(keep=self._wanted[-1] if self._wanted else None)
        super().action_scroll_bottom()

    def action_scroll_home(self) -> None:  # Home / End: the first / last row of the list (rows are what moves here)
        self.action_scroll_top()

    def action_scroll_end(self) -> None:
        self.action_scroll_bottom()

    # -- the pane's note ------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._note()

    def on_resize(self, event: events.Resize) -> None:
        self._note()

    def visible_rows(self) -> int:
        return max(0, self.scrollable_content_region.height - (self.header_height if self.show_header else 0))

    def note(self) -> str:
        """What the bottom border says: which rows of how many are in sight, when not all are."""
        total = len(self._wanted)
        matched = f" ({count(total)} of {count(len(self._rows))} match the filter)" if self._pattern is not None else ""
        in_sight = self.visible_rows()
        if total and (total > in_sight or self._offset):
            first = self._offset + min(int(self.scroll_y), max(0, len(self._shown) - 1))
            last = min(total, first + in_sight, self._offset + len(self._shown))
            return f"rows {count(first + 1)}-{count(last)} of {count(total)}{matched}"
        return matched.strip(" ()") if matched else ""

    def _note(self) -> None:
        if not self._ready:
            return
        words = self.note()
        if words != self._last_note:
            self._last_note = words
            self.border_subtitle = Text(words) if words else None
