"""Data: repos -> Enter: commits of a repo -> Enter: files of a commit (a tree with sizes).

On the repo list: `n` creates a repo, `u` uploads a local file or folder into the
selected repo (one commit, with a progress bar fed by the put's progress callback), `i`
builds the train/eval split from a folder of Kaggle images or Kaggle's zip (through
`actions.datasets`), `ctrl+d` deletes the selected repo after a confirmation. A pipeline's
output repo is refused an upload, in one sentence (the platform's rule).

In the tree of a commit's files (in natural order: cat.2 before cat.10), Enter on a file
previews it beside the tree (an image as a picture, text as its first lines, anything else as
its size and hash: `actions.files.preview`) and `ctrl+s` saves it to this machine, as
`dlptui data get -o` does (`actions.files.save`). Cells and labels come from `dlptui.render`.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, ProgressBar, Static, Tree

from dlptui.actions.defaults import DATA_BRANCH, DATA_REPO
from dlptui.platform.model import FileEntry
from dlptui.platform.rules import collect
from dlptui.render import data as render
from dlptui.text import data_ref, plural, size
from dlptui.tui.dialogs.files import FilePicker
from dlptui.tui.dialogs.prompt import InputDialog
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.shown import plain, shown
from dlptui.tui.widgets.resource_table import ResourceTable, rendered
from dlptui.tui.widgets.trees import FileTree


class DataScreen(BaseScreen):
    TITLE = "Data"
    POLL_SECONDS = 5.0
    MUTATING = frozenset({"new", "upload", "import_split", "delete"})

    BINDINGS = [
        Binding("enter", "open", "Commits", id="data.open"),
        Binding("n", "new", "New repo", id="data.create"),
        Binding("u", "upload", "Upload", id="data.upload"),
        Binding("i", "import_split", "Import split", id="data.import"),
        Binding("ctrl+d", "delete", "Delete repo", id="data.delete"),
    ]

    def compose_body(self) -> ComposeResult:
        yield ResourceTable.of(render.REPO_COLUMNS, title="Repos", id="repos")
        with Horizontal(id="busy"):
            yield Static("", id="busy-label", markup=False)
            yield ProgressBar(total=1, id="progress", show_eta=False)  # not indeterminate: no animation while hidden

    # -- the list -------------------------------------------------------------------

    def fetch(self):
        return self.platform.data.list_repos()

    def show(self, repos) -> None:
        table = self.query_one("#repos", ResourceTable)
        table.update_rows(rendered(render.REPO_COLUMNS, repos, key=lambda r: r.name))
        if not repos:
            hint = "" if self.config.read_only else " Press n to create one, i to import a data set"
            sample = ", or F2 to load the sample." if self.app.empty_platform else "."
            self.state(f"No repos yet.{hint}{sample if hint else ''}")
        else:
            self.app.platform_used()
            self.state(f"{plural(len(repos), 'repo')}. Enter shows the commits of one.")

    @property
    def selected(self) -> str | None:
        return self.query_one("#repos", ResourceTable).selected_key

    def _need_selection(self) -> str | None:
        name = self.selected
        if name is None:
            self.notify("Select a repo first (or press n to create one).", severity="warning")
        return name

    # -- actions -------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        name = self._need_selection()
        if name:
            self.app.push_screen(CommitsScreen(name))

    def action_new(self) -> None:
        def named(name: str) -> None:
            self.call(self.platform.data.create_repo, name, then=lambda repo: self._done(f"Repo {repo.name} created."))

        self.ask(InputDialog("Name of the new repo", placeholder=DATA_REPO, ok="Create"), named)

    def action_delete(self) -> None:
        name = self._need_selection()
        if name:
            self.confirm(
                f"Delete repo {name} with all its commits and files? This cannot be undone.",
                lambda: self.call(self.platform.data.delete_repo, name, then=lambda _: self._done(f"Repo {name} deleted.")),
            )

    def action_upload(self) -> None:
        repo = self._need_selection()
        if not repo:
            return

        def picked(path: Path) -> None:
            self._busy(f"Uploading {path.name} to {repo}")
            self.call(
                self._upload,
                repo,
                path,
                then=lambda commit: self._done(f"{plural(commit.files, 'file')} in {data_ref(repo, commit.id)}."),
                on_error=self._failed,
            )

        self.ask(FilePicker(f"Upload a file or folder into {repo}"), picked)

    def _upload(self, repo: str, source: Path):
        """Runs in a thread: a file lands at /<name>, a folder's files at /<folder>/..., in one commit."""
        files = collect([source])
        return self.platform.data.put_files(
            repo, DATA_BRANCH, files, message=f"upload {source.name} ({plural(len(files), 'file')})",
            progress=self._progress_from_thread(),
        )

    def action_import_split(self) -> None:
        repo = self.selected or DATA_REPO

        def picked(path: Path) -> None:
            from dlptui.actions.datasets import import_kaggle

            self._busy(f"Splitting {path.name} into train/eval in {repo}")
            self.call(
                lambda: import_kaggle(self.platform.data, path, repo=repo, progress=self._progress_from_thread(),
                                      pipelines=self._pipelines()),
                then=self._imported,
                on_error=self._failed,
            )

        self.ask(FilePicker(f"A folder of Kaggle images or train.zip, split into {repo}"), picked)

    def _pipelines(self):
        """The pipelines part, through which the split runs where this install has one (else a direct commit)."""
        from dlptui.errors import NotAvailable

        try:
            return self.platform.pipelines
        except NotAvailable:
            return None

    def _imported(self, result) -> None:
        counts = ", ".join(f"{s}: {c['cat']} cats, {c['dog']} dogs" for s, c in result.counts.items())
        skipped = f" ({result.skipped} files skipped)" if result.skipped else ""
        self._done(f"Imported into {result.ref}: {counts}{skipped}.")

    # -- progress --------------------------------------------------------------------

    def _busy(self, label: str) -> None:
        self.query_one("#busy-label", Static).update(shown(label))
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#busy").add_class("-shown")

    def _progress_from_thread(self):
        """A progress(done, total) for a worker thread: repaints at most ~20 times a second."""
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last[0] > 0.05:
                last[0] = now
                self.app.call_from_thread(self.query_one("#progress", ProgressBar).update, total=total, progress=done)

        return progress

    def _done(self, message: str) -> None:
        self.query_one("#busy").remove_class("-shown")
        self.notify(message)
        self.reload()

    def _failed(self, sentence: str) -> None:
        self.query_one("#busy").remove_class("-shown")
        self.query_one("#progress", ProgressBar).update(total=1, progress=0)  # no hidden animation
        self.notify(sentence, severity="error", timeout=8)


class CommitsScreen(BaseScreen):
    """The commits of one repo, newest first; Enter shows the files of one."""

    POLL_SECONDS = 5.0
    BINDINGS = [Binding("enter", "open", "Files", id="data.files")]

    def __init__(self, repo: str) -> None:
        super().__init__()
        self.repo = repo
        self.TITLE = f"Commits of {repo}"

    def compose_body(self) -> ComposeResult:
        yield ResourceTable.of(render.COMMIT_COLUMNS, title=f"Commits of {self.repo}", id="commits")

    def fetch(self):
        return self.platform.data.list_commits(self.repo)

    def show(self, commits) -> None:
        self.query_one("#commits", ResourceTable).update_rows(rendered(render.COMMIT_COLUMNS, commits, key=lambda c: c.id))
        if commits:
            self.state(f"{plural(len(commits), 'commit')} in {self.repo}. Enter shows the files; Esc goes back.")
        else:
            self.state(f"{self.repo} has no commits yet.")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        commit = self.query_one("#commits", ResourceTable).selected_key
        if commit:
            self.app.push_screen(FilesScreen(self.repo, commit))


class FilesScreen(BaseScreen):
    """The files of one commit as a tree (natural order), folders with the total size of what they hold; Enter
    previews a file beside the tree, ctrl+s saves it.

    A folder's entries are read when it is opened (a repo of 100,000 files in 1,000 folders shows its
    folders at once); `/` finds files anywhere below the root (a regex over their paths): the folders
    that hold matches open, with at most `MATCHES` files shown and the count of all said."""

    MATCHES = 2000
    BINDINGS = [Binding("ctrl+s", "save", "Save file", id="data.save")]
    DEFAULT_CSS = """
    FilesScreen #files-body { height: 1fr; }
    FilesScreen #files { width: 1fr; }
    FilesScreen #file-view { width: 1fr; padding-left: 1; display: none; }
    FilesScreen #file-view.-shown { display: block; }
    FilesScreen #file-image { height: 1fr; display: none; }
    FilesScreen #file-image.-shown { display: block; }
    FilesScreen #file-text { height: auto; }
    """

    def __init__(self, repo: str, commit: str) -> None:
        super().__init__()
        self.repo = repo
        self.commit = commit
        self.TITLE = f"Files of {data_ref(repo, commit)}"
        self.previewed: FileEntry | None = None
        self._top: list | None = None  # the root's entries, as first read
        self._every: list | None = None  # every file of the commit, once a filter asked for them
        self._loaded: set[str] = set()  # folders whose entries are in the tree
        self._summary = ""

    def compose_body(self) -> ComposeResult:
        from dlptui.tui.widgets.image_preview import ImagePreview

        with Horizontal(id="files-body"):
            yield FileTree(data_ref(self.repo, self.commit), title="Files", id="files")
            with Vertical(id="file-view"):
                yield Static("", id="file-title", classes="section-title", markup=False)
                yield ImagePreview("", id="file-image")
                yield Static("", id="file-text", markup=False)

    @property
    def tree(self) -> FileTree:
        return self.query_one("#files", FileTree)

    def fetch(self):
        if self._top is not None:  # a commit never changes: read once
            return None
        data = self.platform.data
        return data.inspect_commit(self.repo, self.commit), data.list_files(self.repo, self.commit, "/")

    def show(self, found) -> None:
        if found is None:
            return
        commit, self._top = found
        self._summary = (f"{plural(commit.files, 'file')}, {size(commit.size_bytes)}." if commit.files
                         else "This commit holds no files.")
        self._fill()

    def _fill(self) -> None:
        """The tree as first shown: the root's entries, folders closed until opened."""
        tree = self.tree
        tree.clear()
        self._loaded = {"/"}
        self.add_entries(tree.root, self._top or [])
        tree.root.expand()
        self.state(f"{self._summary} Enter opens a folder or previews a file, ctrl+s saves it; / finds files below; "
                   "Esc goes back.")

    def add_entries(self, node, entries) -> None:
        """A folder's entries under its node, in natural order (folders open on demand)."""
        for entry in render.sort_files(entries):
            name, shown_size = render.file_label(entry.path.rstrip("/").rsplit("/", 1)[-1], entry.size_bytes)
            if entry.type == "dir":
                label = Text.assemble((plain(name) + "/", "bold"), (f"  {shown_size}", "dim"))
                node.add(label, data=entry, allow_expand=True)
            else:
                node.add_leaf(Text.assemble(plain(name), (f"  {shown_size}", "dim")), data=entry)

    @on(Tree.NodeExpanded, "#files")
    def _opened(self, event: Tree.NodeExpanded) -> None:
        entry = event.node.data
        if entry is None or entry.type != "dir" or entry.path in self._loaded or self.tree.filtering:
            return
        self._loaded.add(entry.path)
        node = event.node

        def arrived(entries) -> None:
            self.add_entries(node, entries)

        self.call(self.platform.data.list_files, self.repo, self.commit, entry.path, then=arrived)

    @on(FileTree.Filtered, "#files")
    def _filtered(self, event: FileTree.Filtered) -> None:
        if not self.tree.filtering:
            self._fill()
            return
        if self._every is None:
            self.state("Reading every path of the commit to filter them...")
            self.call(self.platform.data.list_files, self.repo, self.commit, "/", True, then=self._got_every,
                      group="every", exclusive=True)
            return
        self._show_matches()

    def _got_every(self, entries) -> None:
        self._every = entries
        if self.tree.filtering:
            self._show_matches()

    def _show_matches(self) -> None:
        tree = self.tree
        matches = render.sort_files(e for e in self._every or [] if tree.passes(e.path))
        tree.clear()
        folders: dict[str, object] = {"": tree.root}
        for entry in matches[: self.MATCHES]:
            parts = entry.path.strip("/").split("/")
            for depth in range(1, len(parts)):
                key = "/".join(parts[:depth])
                if key not in folders:
                    folders[key] = folders["/".join(parts[: depth - 1])].add(
                        Text(plain(parts[depth - 1]) + "/", style="bold"), expand=True)
            folders["/".join(parts[:-1])].add_leaf(Text.assemble(plain(parts[-1]), (f"  {size(entry.size_bytes)}", "dim")),
                                                   data=entry)
        tree.root.expand()
        shown_count = f"; the first {self.MATCHES:,} are shown" if len(matches) > self.MATCHES else ""
        self.state(f"{len(matches):,} of {plural(len(self._every or []), 'file')} match {tree.filter_text!r}{shown_count}. "
                   "Esc clears the filter.")

    # -- preview and save -------------------------------------------------------------

    def _file(self) -> FileEntry | None:
        node = self.tree.cursor_node
        entry = node.data if node is not None else None
        return entry if isinstance(entry, FileEntry) and entry.type != "dir" else None

    @on(Tree.NodeSelected, "#files")
    def _selected(self, event: Tree.NodeSelected) -> None:
        if isinstance(event.node.data, FileEntry) and event.node.data.type != "dir":
            event.stop()
            self.preview(event.node.data)

    def preview(self, entry: FileEntry) -> None:
        from dlptui.actions.files import preview

        self.previewed = entry
        self.query_one("#file-view").add_class("-shown")
        self.query_one("#file-title", Static).update(shown(entry.path))
        self._show_text(f"Reading {entry.path}...")
        self.call(preview, self.platform.data, self.repo, self.commit, entry, then=self._previewed,
                  on_error=self._show_text, group="preview", exclusive=True)

    def _previewed(self, found) -> None:
        if self.previewed is None or found.path != self.previewed.path:
            return  # another file was chosen meanwhile
        facts = f"{size(found.size_bytes)}, sha256 {found.sha256 or '-'}"
        if found.kind == "image":
            from dlptui.tui.widgets.image_preview import open_image

            name = found.path.rpartition("/")[2]
            self._show_text(facts)
            self.call(open_image, found.data, name, then=lambda image: self._show_image(found.path, image, facts),
                      on_error=lambda sentence: self._show_text(f"{sentence}\n{facts}"), group="preview-image", exclusive=True)
        elif found.kind == "text":
            body = "\n".join(found.lines) + ("\n..." if found.more else "")
            self._show_text(f"{facts}\n\n{body}" if body else f"{facts}\n\n(an empty text file)")
        else:
            self._show_text(f"{facts}\n{found.note}; ctrl+s saves it.")

    def _show_text(self, words: str) -> None:
        self.query_one("#file-image").remove_class("-shown")
        self.query_one("#file-text", Static).update(shown(words))

    def _show_image(self, path: str, image, facts: str) -> None:
        from dlptui.tui.widgets.image_preview import ImagePreview

        if self.previewed is None or self.previewed.path != path:
            return
        width, height = image.info["original_size"]
        preview = self.query_one("#file-image", ImagePreview)
        preview.add_class("-shown")
        preview.show_image(image, f"{width}x{height}")
        self.query_one("#file-text", Static).update(shown(facts))

    def action_save(self) -> None:
        entry = self._file() or self.previewed
        if entry is None:
            self.notify("Move onto a file first (Enter previews it).", severity="warning")
            return
        name = entry.path.rpartition("/")[2]

        def chosen(target: str) -> None:
            from dlptui.actions.files import save

            destination = Path(target).expanduser()
            final = destination / name if destination.is_dir() else destination

            def write() -> None:
                self.call(save, self.platform.data, self.repo, self.commit, entry.path, destination,
                          then=lambda written: self.notify(f"Saved {entry.path} to {written}."))

            if final.exists():
                self.confirm(f"Replace {final}?", write)
            else:
                write()

        self.ask(InputDialog(f"Save {entry.path} to (a file, or a folder to keep its name)", value=f"./{name}", ok="Save"), chosen)
