"""The Data screen over a real local data store: create, upload, drill down, import a split, delete."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from textual.widgets import Tree

from dlptui.tui.dialogs.confirm import ConfirmDialog
from dlptui.tui.dialogs.files import FilePicker
from dlptui.tui.dialogs.prompt import InputDialog
from dlptui.tui.screens.data import CommitsScreen, DataScreen, FilesScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.tui import SIZE, answer, drawn, make_app, wait_for


def repos_table(app) -> ResourceTable:
    return app.screen.query_one("#repos", ResourceTable)


async def create_repo(pilot, app, name: str) -> None:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, InputDialog), what="the name dialog")
    await pilot.press(*name, "enter")
    await wait_for(pilot, lambda: name in repos_table(app).all_keys, what=f"repo {name} in the table")


async def pick(pilot, app, path: Path) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), what="the file picker")
    await pilot.press("ctrl+u", *str(path), "enter")


async def test_create_upload_and_drill_down_to_the_files(config, platform, tmp_path):
    folder = tmp_path / "pets"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"a" * 1000)
    (folder / "sub" / "b.txt").write_bytes(b"b" * 3000)
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen) and "No repos yet" in str(app.screen.query_one("#state").render()), what="the empty state")
        await create_repo(pilot, app, "pets")
        assert [r.name for r in platform.data.list_repos()] == ["pets"]

        await pilot.press("u")
        await pick(pilot, app, folder)
        await wait_for(pilot, lambda: platform.data.inspect_repo("pets").commits == 1, what="the upload commit")
        files = {f.path: f.size_bytes for f in platform.data.list_files("pets", "master", recursive=True)}
        assert files == {"/pets/a.txt": 1000, "/pets/sub/b.txt": 3000}
        bar = app.screen.query_one("#progress")
        assert (bar.total, bar.progress) == (4000, 4000)  # fed by the put's progress callback
        await wait_for(pilot, lambda: repos_table(app).get_row("pets")[2] == "1", what="the commit count in the table")

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CommitsScreen), what="the commits screen")
        commits = app.screen.query_one("#commits", ResourceTable)
        await wait_for(pilot, lambda: commits.row_count == 1, what="the commit row")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen), what="the files screen")
        await wait_for(pilot, lambda: "pets/  3.9 KiB" in drawn(app)[0], what="the folder with the size below it")
        assert "b.txt" not in drawn(app)[0]  # a folder's entries are read when it opens
        await pilot.press("j", "enter")  # pets/
        await wait_for(pilot, lambda: "sub/  2.9 KiB" in drawn(app)[0], what="pets/ open")
        assert "a.txt  1000 B" in drawn(app)[0]
        await pilot.press("j", "j", "enter")  # sub/
        await wait_for(pilot, lambda: "b.txt  2.9 KiB" in drawn(app)[0], what="sub/ open")

        # `/` filters the tree (it has the focus): files anywhere below, their folders open; a digit typed
        # into the filter is a character of it, never a screen switch
        await pilot.press("escape")  # back to the commits, and in again: a fresh tree, folders closed
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen) and "pets/" in drawn(app)[0], what="the tree")
        assert "b.txt" not in drawn(app)[0]
        await pilot.press("slash", "b", "3")
        await wait_for(pilot, lambda: "0 of 2 files match 'b3'" in str(app.screen.query_one("#state").render()),
                       what="the filter's count")
        assert isinstance(app.screen, FilesScreen) and app.current_mode == "data"
        await pilot.press("backspace", "enter")
        await wait_for(pilot, lambda: "b.txt  2.9 KiB" in drawn(app)[0], what="the match in its open folder")
        assert "a.txt" not in drawn(app)[0]
        assert "1 of 2 files match 'b'" in str(app.screen.query_one("#state").render())
        await pilot.press("escape")  # clears the filter: the tree as first shown
        await wait_for(pilot, lambda: "b.txt" not in drawn(app)[0] and "pets/" in drawn(app)[0], what="the filter cleared")
        assert isinstance(app.screen, FilesScreen)

        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DataScreen)


async def test_delete_asks_and_no_keeps_the_repo(config, platform):
    platform.data.create_repo("keepme")
    deletes = []  # what the screen asked the data store to delete
    delete = platform.data.delete_repo
    platform.data.delete_repo = lambda name: deletes.append(name) or delete(name)
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "keepme" in repos_table(app).all_keys, what="the repo row")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        assert app.focused.id == "no"
        await answer(pilot, "enter", lambda: not isinstance(app.screen, ConfirmDialog))
        assert deletes == [] and [r.name for r in platform.data.list_repos()] == ["keepme"]
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: not platform.data.list_repos(), what="the deletion")
        await wait_for(pilot, lambda: repos_table(app).row_count == 0, what="the row to go")
    assert deletes == ["keepme"]  # the "y" alone


@pytest.mark.parametrize("form", ["folder", "zip"])
async def test_import_split_from_kaggle_images_or_their_zip(config, platform, sample_dir, tmp_path, form):
    source = sample_dir
    if form == "zip":  # Kaggle's train.zip holds train/cat.0.jpg ...
        source = tmp_path / "train.zip"
        with zipfile.ZipFile(source, "w") as z:
            for image in sorted(sample_dir.glob("*.jpg")):
                z.write(image, f"train/{image.name}")
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("i")
        await pick(pilot, app, source)
        await wait_for(pilot, lambda: "dogs-and-cats" in repos_table(app).all_keys, timeout=120, what="the imported repo")
        tops = {f.path for f in platform.data.list_files("dogs-and-cats", "master")}
        assert tops == {"/train", "/eval"}
        await wait_for(pilot, lambda: any("Imported into dogs-and-cats@" in n.message for n in app._notifications), what="the summary")


async def test_user_mistakes_end_in_one_sentence(config, platform, tmp_path):
    platform.data.create_repo("taken")
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "taken" in repos_table(app).all_keys, what="the repo row")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, InputDialog), what="the name dialog")
        await pilot.press(*"taken", "enter")
        await wait_for(pilot, lambda: any("exists already" in n.message for n in app._notifications), what="the conflict sentence")
        await pilot.press("u")
        await pick(pilot, app, tmp_path / "nowhere")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker)  # stays open, says why
        assert "There is no file or folder" in str(app.screen.query_one("#dialog-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DataScreen) and app.is_running


async def test_read_only_hides_the_changing_actions(config, platform):
    from dataclasses import replace

    platform.data.create_repo("ro")
    app = make_app(replace(config, read_only=True), platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "ro" in repos_table(app).all_keys, what="the repo row")
        keys = app.screen.active_bindings
        assert "n" not in keys and "ctrl+d" not in keys and "u" not in keys and "i" not in keys
        await pilot.press("ctrl+d")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        assert [r.name for r in platform.data.list_repos()] == ["ro"]


def _jpeg(side: int, colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, "JPEG")
    return out.getvalue()


async def open_files(pilot, app, repo: str) -> Tree:
    await wait_for(pilot, lambda: repo in repos_table(app).all_keys, what=f"repo {repo}")
    repos_table(app).focus()
    repos_table(app).move_cursor(row=repos_table(app).shown_keys.index(repo))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, CommitsScreen) and app.screen.query_one("#commits").row_count, what="commits")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen), what="the files screen")
    tree = app.screen.query_one("#files", Tree)
    await wait_for(pilot, lambda: tree.root.children, what="the file tree")
    return tree


async def choose(pilot, tree: Tree, name: str) -> None:
    """Move the tree's cursor onto the file called `name` (its folder open) and press Enter."""
    def find(node):
        for child in node.children:
            if child.data is not None and getattr(child.data, "path", "").rstrip("/").endswith("/" + name):
                return child
            if child.children:
                child.expand()
                if found := find(child):
                    return found
        return None

    node = find(tree.root)
    assert node is not None, name
    tree.focus()
    await pilot.pause()
    tree.move_cursor(node)
    await pilot.pause()
    await pilot.press("enter")


async def test_the_file_tree_sorts_naturally_previews_and_saves(config, platform, tmp_path):
    from tests.fixtures.tui import drawn

    notes = "".join(f"line {n} of the notes\n" for n in range(1, 61)).encode()
    platform.data.create_repo("pets")
    platform.data.put_files("pets", "master", {
        "/train/cat.10.jpg": _jpeg(40, (200, 120, 40)), "/train/cat.2.jpg": _jpeg(24, (40, 40, 200)),
        "/train/cat.1.jpg": _jpeg(32, (10, 200, 10)), "/notes [v2].txt": notes, "/blob.bin": b"\x00\x01binary" * 10,
    })
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        tree = await open_files(pilot, app, "pets")
        await choose(pilot, tree, "train")  # a folder's entries are read when it opens
        await wait_for(pilot, lambda: "cat.10.jpg" in drawn(app)[0], what="train/ open")
        screen = drawn(app)[0]
        order = [screen.index(f"cat.{n}.jpg") for n in (1, 2, 10)]
        assert order == sorted(order), screen  # cat.2 before cat.10, as a person counts

        # Enter on a text file: its first lines, its size and hash (its name as written, brackets and all)
        await choose(pilot, tree, "notes [v2].txt")
        await wait_for(pilot, lambda: "line 1 of the notes" in drawn(app)[0], what="the text preview")
        screen = drawn(app)[0]
        assert "line 2 of the notes" in screen and "sha256 " in screen and "line 60 of" not in screen
        assert "/notes [v2].txt" in screen and "notes [v2].txt  1.2 KiB" in screen

        # an image: drawn as a picture, its size in pixels under it
        await choose(pilot, tree, "cat.10.jpg")
        await wait_for(pilot, lambda: "40x40" in drawn(app)[0], what="the image preview")
        assert "▀" in drawn(app)[0] and "line 1 of the notes" not in drawn(app)[0]

        # anything else: its size and hash
        await choose(pilot, tree, "blob.bin")
        await wait_for(pilot, lambda: "a binary file" in drawn(app)[0], what="the binary file's facts")
        assert "80 B" in drawn(app)[0]

        # ctrl+s: saved as `data get -o` saves it, the bytes checked
        await choose(pilot, tree, "notes [v2].txt")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, InputDialog), what="the save dialog")
        target = tmp_path / "saved-notes.txt"
        app.screen.query_one("#answer").value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, lambda: target.exists(), what="the saved file")
        assert target.read_bytes() == notes
        # a toast is not part of the compositor's frame in a headless run: the notification is read where Textual keeps it
        await wait_for(pilot, lambda: any(n.message == f"Saved /notes [v2].txt to {target}." for n in app._notifications),
                       what="the notification")


async def test_an_upload_into_a_pipelines_output_repo_is_one_sentence(config, platform, tmp_path):
    platform.data.create_repo("raw")
    platform.data.put_files("raw", "master", {"/a.txt": b"alpha"})
    platform.pipelines.create_pipeline({"pipeline": {"name": "copied"}, "input": {"pfs": {"repo": "raw", "glob": "/*"}},
                                        "transform": {"cmd": ["sh", "-c", "cp /pfs/raw/* /pfs/out/"]}})
    upload = tmp_path / "mine.txt"
    upload.write_text("mine")
    app = make_app(config, platform, start="data")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "copied" in repos_table(app).all_keys, what="the output repo")
            await wait_for(pilot, lambda: platform.data.inspect_repo("copied").commits == 1, what="the job's output commit")
            repos_table(app).focus()
            repos_table(app).move_cursor(row=repos_table(app).shown_keys.index("copied"))
            await pilot.press("u")
            await pick(pilot, app, upload)
            await wait_for(pilot, lambda: any("only its jobs write" in n.message for n in app._notifications),
                           what="the sentence")
            assert "Traceback" not in drawn_text(app) and isinstance(app.screen, DataScreen)
            assert platform.data.inspect_repo("copied").commits == 1
            assert [e.path for e in platform.data.list_files("copied", "master", "/")] == ["/a.txt"]
    finally:
        platform.pipelines.stop_pipeline("copied")


def drawn_text(app) -> str:
    from tests.fixtures.tui import drawn

    return drawn(app)[0]
