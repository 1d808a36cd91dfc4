"""Pick a local file or folder: a path to type (with a tree to browse), checked before it is returned.

`FilePicker(title, want="any"|"file"|"dir", start=Path.cwd())` dismisses with an existing
Path, or None on Esc. Selecting a node in the tree puts its path in the input; Enter in
the input (or the Choose button) answers. A path that does not exist, or is of the wrong
kind, is said in one sentence in the dialog, which stays open.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Static


def check_path(text: str, want: str) -> tuple[Path | None, str | None]:
    """(path, None) when `text` names an existing path of the wanted kind, else (None, sentence)."""
    if not text.strip():
        return None, "Type a path, or pick one in the tree."
    path = Path(text.strip()).expanduser()
    if not path.exists():
        return None, f"There is no file or folder {path}."
    if want == "file" and not path.is_file():
        return None, f"{path} is a folder; pick a file."
    if want == "dir" and not path.is_dir():
        return None, f"{path} is a file; pick a folder."
    return path.resolve(), None


class FilePicker(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]
    DEFAULT_CSS = """
    FilePicker { align: center middle; }
    FilePicker > Vertical { width: 90%; height: 85%; border: thick $accent; background: $surface; padding: 0 1; }
    FilePicker DirectoryTree { height: 1fr; }
    FilePicker #error { color: $error; height: auto; }
    FilePicker Horizontal { height: auto; align-horizontal: right; }
    """

    def __init__(self, title: str, want: str = "any", start: Path | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.want = want
        self.start = start or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]{self.title_text}[/b]  (Enter chooses, Esc cancels)")
            yield Input(value=str(self.start), id="path")
            yield DirectoryTree(self.start, id="tree")
            yield Static("", id="error", markup=False)
            with Horizontal():
                yield Button("Choose", id="choose", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def _put(self, path: Path) -> None:
        self.query_one("#path", Input).value = str(path)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self._put(event.path)

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self._put(event.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._answer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._answer()

    def _answer(self) -> None:
        path, error = check_path(self.query_one("#path", Input).value, self.want)
        if error:
            self.query_one("#error", Static).update(error)
        else:
            self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
