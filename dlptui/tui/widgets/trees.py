"""Trees of files, in titled panes (`pane.PaneTitle`): `j` / `k` move like in every list of the console
(`keys.MOVE_KEYS`), and `/` filters them as it filters a table (a regex over the names, `!` inverts).

- `FileTree`: a Tree the screen fills itself (the files of a commit). `set_filter` keeps the pattern and
  posts `FileTree.Filtered`: the screen refills the tree with what matches (it knows every path).
- `PathTree`: a DirectoryTree of a local folder (the file picker).
- `ImageTree`: a PathTree of folders and image files only, hidden entries left out (the Predict screen);
  its filter keeps the folders and the images whose name matches.

A label given as a `str` (a file or folder name) is shown as written (`tui.shown`): Textual's Tree
would read it as markup, and a name may hold brackets or escape sequences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual.message import Message
from textual.widgets import DirectoryTree, Tree

from dlptui.tui.keys import MOVE_KEYS
from dlptui.tui.shown import shown
from dlptui.tui.widgets.pane import PANE_CSS, PaneTitle
from dlptui.tui.widgets.resource_table import compile_filter

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


class NameFilter:
    """The filter a tree keeps: the text typed, and whether a name passes it; `_refilter()` shows what passes once
    the text changed. Its names (labels given as `str`) are shown as written."""

    filter_text: str = ""
    _pattern: re.Pattern | None = None
    _inverted: bool = False

    def set_filter(self, text: str) -> str | None:
        """Keep `text` and show what passes; None, or the sentence for a pattern that is no regex."""
        if text == self.filter_text:
            return None
        self.filter_text = text
        self._pattern, self._inverted, error = compile_filter(text)
        self._refilter()
        return error

    def _refilter(self) -> None:
        raise NotImplementedError

    def process_label(self, label) -> Text:
        return super().process_label(shown(label) if isinstance(label, str) else label)

    @property
    def filtering(self) -> bool:
        return self._pattern is not None

    def passes(self, name: str) -> bool:
        if self._pattern is None:
            return True
        return bool(self._pattern.search(name)) != self._inverted


class LinesInSight:
    """Mixed into a Tree: when its lines do not all fit, the bottom border says which are in sight ("lines 1-38 of
    1,001"), as a table's says which rows are."""

    _said = ""

    def _say_lines(self) -> None:
        total = self.virtual_size.height
        in_sight = self.scrollable_content_region.height
        first = int(self.scroll_y)
        words = f"lines {first + 1:,}-{min(total, first + in_sight):,} of {total:,}" if total > in_sight > 0 else ""
        if words != self._said:
            self._said = words
            self.border_subtitle = Text(words) if words else None

    def watch_virtual_size(self, old, new) -> None:
        self._say_lines()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._say_lines()

    def on_resize(self, event) -> None:
        self._say_lines()


class FileTree(LinesInSight, NameFilter, PaneTitle, Tree):
    BINDINGS = MOVE_KEYS
    DEFAULT_CSS = "FileTree {" + PANE_CSS + "}"

    class Filtered(Message):
        """The filter changed: the screen shows the files that pass `tree.passes(path)`."""

        def __init__(self, tree: FileTree) -> None:
            super().__init__()
            self.tree = tree

        @property
        def control(self) -> FileTree:
            return self.tree

    def __init__(self, label, title: str = "", **kwargs) -> None:
        super().__init__(label, **kwargs)
        self.pane_title = title

    def _refilter(self) -> None:
        self.post_message(self.Filtered(self))


class PathTree(LinesInSight, NameFilter, PaneTitle, DirectoryTree):
    BINDINGS = MOVE_KEYS
    DEFAULT_CSS = "PathTree {" + PANE_CSS + "}"

    def _refilter(self) -> None:
        self.reload()

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if self._safe_is_dir(p) or self.passes(p.name)]


class ImageTree(PathTree):
    """Folders and image files only (jpg, jpeg, png, bmp, gif, webp); hidden entries are left out."""

    DEFAULT_CSS = "ImageTree {" + PANE_CSS + "}"

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")
                and (self._safe_is_dir(p) or (is_image_name(p) and self.passes(p.name)))]
