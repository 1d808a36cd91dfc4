"""Pick a local file or folder: type a path or walk the tree; Enter (or Choose) answers.

    FilePicker("Upload a file or folder into pets", want="any" | "file" | "dir", start=Path.cwd())

Dismisses with the resolved Path, or None on Esc. Choosing a node of the tree puts its path
in the line; a path that does not exist, or is of the wrong kind, is said in one sentence in
the dialog, which stays open.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.widgets import DirectoryTree, Input

from dlptui.errors import InvalidInput
from dlptui.tui.dialogs.base import Dialog
from dlptui.tui.widgets.trees import PathTree


def check_path(text: str, want: str) -> Path:
    """The path `text` names when it exists and is of the wanted kind; InvalidInput in one sentence otherwise."""
    if not text.strip():
        raise InvalidInput("Type a path, or pick one in the tree.")
    path = Path(text.strip()).expanduser()
    if not path.exists():
        raise InvalidInput(f"There is no file or folder {path}.")
    if want == "file" and not path.is_file():
        raise InvalidInput(f"{path} is a folder; pick a file.")
    if want == "dir" and not path.is_dir():
        raise InvalidInput(f"{path} is a file; pick a folder.")
    return path.resolve()


class FilePicker(Dialog["Path | None"]):
    OK = ("ok", "Choose")
    FOCUS = "#path"

    def __init__(self, title: str, want: str = "any", start: Path | None = None) -> None:
        super().__init__(title)
        self.want = want
        self.start = start or Path.cwd()
        self.add_class("-wide")

    def compose_body(self) -> ComposeResult:
        yield Input(value=str(self.start), id="path")
        yield PathTree(self.start, id="tree")

    def _put(self, path: Path) -> None:
        self.query_one("#path", Input).value = str(path)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self._put(event.path)

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self._put(event.path)

    def result(self) -> Path:
        return check_path(self.query_one("#path", Input).value, self.want)
