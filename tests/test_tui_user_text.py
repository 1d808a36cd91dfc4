"""User text on screen: every notification, title, label, tree node, table cell and status line shows a
name, a message or an error sentence carrying one exactly as written. Textual markup in it (`[/x]`,
`[b]`, `[@click=app.quit]`) is shown as those characters, never read (a crash, a style, an action),
and terminal escape sequences never reach the terminal. Checked on what is drawn."""

from __future__ import annotations

import zipfile
from pathlib import Path

from dlptui.tui.dialogs.files import FilePicker
from dlptui.tui.dialogs.prompt import InputDialog, JumpPrompt
from dlptui.tui.screens.data import CommitsScreen, DataScreen, FilesScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for

OSC = "\x1b]0;owned\x07"  # retitles the terminal
CSI = "\x1b[2J"  # clears the screen


def words(app) -> str:
    return drawn(app)[0]


def assert_no_escape_of_ours(app) -> None:
    raw = drawn(app)[1]
    assert "\x1b]0;owned" not in raw and "\x07" not in raw and "\x1b[2J" not in raw


async def pick(pilot, app, path: Path) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, FilePicker), what="the file picker")
    await pilot.press("ctrl+u", *str(path), "enter")


async def test_a_zip_member_named_like_markup_past_the_size_cap_is_one_sentence_on_screen(config, platform, tmp_path, monkeypatch):
    """The crash of issue 19: the cap's own sentence names the member, and was read as markup."""
    from dlptui.actions import datasets

    monkeypatch.setattr(datasets, "MAX_MEMBER_BYTES", 1000)
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[/x]/cat.1.jpg", b"\0" * 50_000)  # inflates past the cap
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), what="the data screen")
        await pilot.press("i")
        await pick(pilot, app, archive)
        await wait_for(pilot, lambda: any("too big for an image" in n.message for n in app._notifications),
                       what="the cap's sentence")
        await wait_for(pilot, lambda: "[/x]/cat.1.jpg in train.zip" in words(app), what="the sentence drawn as written")
        assert app.is_running and platform.data.list_repos() == []


async def test_a_name_typed_at_the_jump_prompt_is_shown_not_run(config, platform):
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        for typed in ("[@click=app.quit]go", "[b]x[/b]", "[/y]"):
            await pilot.press("colon")
            await wait_for(pilot, lambda: isinstance(app.screen, JumpPrompt), what="the jump prompt")
            await pilot.press(*typed, "enter")
            await wait_for(pilot, lambda: f"named '{typed}'" in words(app), what=f"{typed} drawn as typed")
        toast = next(n for n in app._notifications if "[@click=app.quit]go" in n.message)
        assert toast.markup is False
        assert app.is_running


async def test_commit_messages_file_names_and_refused_names_show_as_written(config, platform, tmp_path):
    platform.data.create_repo("pets")
    message = f"[@click=app.quit]fix[/] {OSC}[b]cats{CSI}"
    platform.data.put_files("pets", "master", {"/[b]x/[@click=app.quit]y.txt": b"1", "/[red]dog.txt": b"2"}, message=message)
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: "pets" in app.screen.query_one("#repos", ResourceTable).all_keys, what="the repo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CommitsScreen), what="the commits")
        await wait_for(pilot, lambda: "[@click=app.quit]fix[/] [b]cats" in words(app), what="the message as written")
        assert_no_escape_of_ours(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen), what="the files")
        await wait_for(pilot, lambda: "[red]dog.txt" in words(app), what="the file names as written")
        tree = app.screen.query_one("#files")
        tree.root.expand_all()
        await wait_for(pilot, lambda: "[b]x/" in words(app) and "[@click=app.quit]y.txt" in words(app), what="the folder and file")
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), what="back on the repos")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, InputDialog), what="the name dialog")
        await pilot.press(*"[/x]", "enter")
        await wait_for(pilot, lambda: "'[/x]' is not a valid repo name" in words(app), what="the refusal, as written")
        assert app.is_running


async def test_folder_and_image_names_on_the_predict_screen_show_as_written(config, platform, tmp_path, monkeypatch):
    from dlptui.actions.sample import draw

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "pets[b][@click=app.quit]"
    folder.mkdir()
    (folder / "cat.[b]1[i].jpg").write_bytes(draw("cat", 1))
    (folder / f"dog.{OSC}2.jpg").write_bytes(draw("dog", 2))
    app = make_app(config, platform, start="predict")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("o")
        await pick(pilot, app, folder)
        await wait_for(pilot, lambda: "Images under ./pets[b][@click=app.quit]" in words(app), what="the folder title")
        await wait_for(pilot, lambda: "cat.[b]1[i].jpg" in words(app), what="the image name in the tree")
        await wait_for(pilot, lambda: "dog.2.jpg" in words(app), what="the other name, without its escape")
        assert_no_escape_of_ours(app)
        assert app.is_running


async def test_a_damaged_store_under_a_home_named_like_markup_is_one_sentence_on_screen(config, tmp_path):
    """A platform error raised on a poll (the data store's meta.db overwritten) shows in a notification and the
    screen's state line, naming the file as it is, brackets included."""
    from dataclasses import replace

    from dlptui.platform import Platform

    home = tmp_path / "h[b]ome[@click=app.quit]"
    (home / "data").mkdir(parents=True)
    home.chmod(0o700)
    (home / "data" / "meta.db").write_bytes(b"not a database at all\n" * 100)
    platform = Platform(replace(config, home=home))
    try:
        app = make_app(platform.config, platform, start="data")
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_for(pilot, lambda: any("is damaged" in n.message for n in app._notifications), what="the sentence")
            await wait_for(pilot, lambda: "h[b]ome[@click=app.quit]/data/meta.db is damaged" in str(app.screen.query_one("#state").render()),
                           what="the sentence on the state line")
            assert "h[b]ome[@click=app.quit]/data/meta" in words(app)
            assert app.is_running
    finally:
        platform.close()


async def test_refusals_in_a_dialog_and_a_notification_show_names_as_written(config, platform, tmp_path):
    from dlptui.tui.dialogs.files import FilePicker

    platform.data.create_repo("pets")
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / f"x{OSC}y.txt").write_text("a name with an escape sequence in it")
    missing = tmp_path / "no[b]such[@click=app.quit]"
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: "pets" in app.screen.query_one("#repos", ResourceTable).all_keys, what="the repo")
        await pilot.press("u")
        await pick(pilot, app, missing)
        await wait_for(pilot, lambda: "no[b]such[@click=app.quit]" in str(app.screen.query_one("#dialog-error").render()),
                       what="the picker's refusal")
        assert isinstance(app.screen, FilePicker) and "no[b]such[@click=app.quit]" in words(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), what="back on the repos")
        await pilot.press("u")
        await pick(pilot, app, folder)
        await wait_for(pilot, lambda: any("control character" in n.message for n in app._notifications), what="the refusal")
        await wait_for(pilot, lambda: "owned\\x07y.txt' holds a control" in words(app), what="the refusal drawn")
        assert_no_escape_of_ours(app)
        assert platform.data.inspect_repo("pets").commits == 0 and app.is_running
