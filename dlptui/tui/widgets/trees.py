"""Trees of files: `j` / `k` move like in every list of the console (`keys.MOVE_KEYS`).

- `FileTree`: a Tree the screen fills itself (the files of a commit).
- `PathTree`: a DirectoryTree of a local folder (the file picker).
- `ImageTree`: a PathTree of folders and image files only, hidden entries left out (the Predict screen).

A label given as a `str` (a file or folder name) is shown as written (`tui.shown`): Textual's Tree
would read it as markup, and a name may hold brackets or escape sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual.widgets import DirectoryTree, Tree

from dlptui.tui.keys import MOVE_KEYS
from dlptui.tui.shown import shown

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


class FileTree(Tree):
    BINDINGS = MOVE_KEYS

    def process_label(self, label) -> Text:
        return super().process_label(shown(label) if isinstance(label, str) else label)


class PathTree(DirectoryTree):
    BINDINGS = MOVE_KEYS

    def process_label(self, label) -> Text:
        return super().process_label(shown(label) if isinstance(label, str) else label)


class ImageTree(PathTree):
    """Folders and image files only (jpg, jpeg, png, bmp, gif, webp); hidden entries are left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (self._safe_is_dir(p) or is_image_name(p))]
