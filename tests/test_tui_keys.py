"""The console's one key scheme: one key means one verb on every screen, the docstring's table is
true, j/k move in every list and tree, `:q` quits."""

from __future__ import annotations

import importlib
import re

import pytest
from textual.binding import Binding

from dlptui.platform import PARTS
from dlptui.tui import app as app_module
from dlptui.tui.app import SCREENS, DlpApp
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from dlptui.tui.widgets.trees import FileTree, ImageTree, PathTree
from tests.fixtures.tui import SIZE, make_app, wait_for

# screens reached from a top-level one (Enter), besides the six of SCREENS
DETAIL_SCREENS = [
    "dlptui.tui.screens.data:CommitsScreen",
    "dlptui.tui.screens.data:FilesScreen",
    "dlptui.tui.screens.experiment:ExperimentScreen",
    "dlptui.tui.screens.experiment:TrialScreen",
    "dlptui.tui.screens.models:VersionsScreen",
    "dlptui.tui.screens.pipelines:JobScreen",
]
LISTS = [ResourceTable, FileTree, PathTree, ImageTree]  # the console's lists and trees
SHOWN = {"colon": ":", "question_mark": "?", "slash": "/", "escape": "esc"}  # how the docstring writes a key


def load(target: str) -> type:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def console_bindings() -> list[tuple[str, Binding]]:
    """(owner, binding) of every binding the console itself declares: the app, every screen, its lists."""
    classes = [DlpApp, BaseScreen, *(load(t) for _, _, t in SCREENS.values()), *(load(t) for t in DETAIL_SCREENS), *LISTS]
    found = []
    for cls in classes:
        for klass in cls.__mro__:  # mixins too (ExperimentActions, flows), but not Textual's own
            if klass.__module__.startswith("dlptui.") and "BINDINGS" in vars(klass):
                found += [(f"{cls.__name__}", b) for b in Binding.make_bindings(vars(klass)["BINDINGS"])]
    return found


def test_one_key_means_one_verb_and_one_verb_has_one_key():
    verbs_of_key: dict[str, set[str]] = {}
    keys_of_verb: dict[str, set[str]] = {}
    for _, binding in console_bindings():
        verbs_of_key.setdefault(binding.key, set()).add(binding.action)
        keys_of_verb.setdefault(binding.action, set()).add(binding.key)
    assert {k: v for k, v in verbs_of_key.items() if len(v) > 1} == {}
    assert {a: k for a, k in keys_of_verb.items() if len(k) > 1} == {}
    # the verbs the old keys mixed up now have a key each
    assert verbs_of_key["ctrl+d"] == {"delete"} and verbs_of_key["n"] == {"new"} and verbs_of_key["ctrl+k"] == {"kill"}
    assert verbs_of_key["j"] == {"cursor_down"} and verbs_of_key["k"] == {"cursor_up"}
    assert {verbs_of_key[k].pop() for k in ("c", "t", "v")} == {"resume", "canary", "compare"}


def test_every_binding_has_an_id_and_the_old_ids_are_kept():
    ids = {binding.id for _, binding in console_bindings()}
    assert None not in ids
    assert {
        "data.create", "data.delete", "data.upload", "data.import", "experiments.start", "experiments.pause",
        "experiments.resume", "experiments.kill", "experiment.kill", "models.register", "models.deploy",
        "models.compare", "models.promote_staging", "models.promote_production", "deployments.deploy",
        "deployments.switch", "deployments.canary", "deployments.undeploy", "deployments.lineage",
        "predict.run", "predict.folder", "predict.open", "predict.deployment", "app.quit", "app.jump",
    } <= ids


def test_the_key_table_in_the_app_docstring_lists_every_key():
    table = app_module.__doc__.split("key      verb")[1].split("\n\n")[0]
    written = set()
    for line in table.strip().splitlines():
        cell = re.split(r"\s{2,}", line.strip())[0]
        written |= {cell} if cell == "1 - 7" else set(cell.replace(" / ", " ").split())
    for owner, binding in console_bindings():
        if binding.action.startswith("switch_mode"):
            assert binding.key in "1234567"
            continue
        assert SHOWN.get(binding.key, binding.key) in written, f"{owner}: {binding.key} ({binding.action}) is not in the table"


async def test_j_and_k_move_in_a_table(tui_app):
    async with tui_app.run_test(size=SIZE) as pilot:
        services = tui_app.screen.query_one("#services", ResourceTable)
        await wait_for(pilot, lambda: services.row_count == len(PARTS), what="the services table")
        services.focus()
        await pilot.press("j", "j")
        assert services.cursor_row == 2
        await pilot.press("k")
        assert services.cursor_row == 1
        await pilot.press("down")  # the arrows still work
        assert services.cursor_row == 2


async def test_j_and_k_move_in_a_tree(tmp_path):
    from textual.app import App

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")

    class One(App):
        def compose(self):
            yield ImageTree(tmp_path)

    app = One()
    async with app.run_test() as pilot:
        tree = app.query_one(ImageTree)
        await wait_for(pilot, lambda: len(tree.root.children) == 3, what="the files in the tree")
        tree.focus()
        await pilot.press("j", "j")
        assert tree.cursor_line == 2
        await pilot.press("k")
        assert tree.cursor_line == 1


async def test_slash_filters_a_tree_by_name_and_a_name_is_shown_as_written(tmp_path):
    """The file picker's filter (an ImageTree: a PathTree reloaded) keeps the folders and the images whose name
    matches; `!` inverts; a pattern that is no regex is matched as text with a sentence. A name with brackets is
    shown as written, not read as markup, in a FileTree too (a Tree would read it as markup)."""
    from textual.app import App

    for name in ("apple.jpg", "berry.jpg", "[b]x.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder").mkdir()

    class One(App):
        def compose(self):
            yield ImageTree(tmp_path)

    def names(tree) -> set[str]:
        return {str(child.label) for child in tree.root.children}

    app = One()
    async with app.run_test() as pilot:
        tree = app.query_one(ImageTree)
        await wait_for(pilot, lambda: names(tree) == {"apple.jpg", "berry.jpg", "[b]x.jpg", "folder"},
                       what="the folder and the images, names as written")
        assert tree.set_filter("APP") is None and tree.filter_text == "APP"
        await wait_for(pilot, lambda: names(tree) == {"apple.jpg", "folder"}, what="the filtered tree")
        assert tree.set_filter("APP") is None  # the same text: nothing to do
        assert tree.set_filter("!app") is None
        await wait_for(pilot, lambda: names(tree) == {"berry.jpg", "[b]x.jpg", "folder"}, what="the inverted filter")
        assert tree.set_filter("[b") == "Not a valid regex (unterminated character set at position 0); matching it as text."
        await wait_for(pilot, lambda: names(tree) == {"[b]x.jpg", "folder"}, what="the pattern matched as text")
    files = FileTree("[b]commit[/b]")
    assert str(files.root.label) == "[b]commit[/b]" and str(files.root.add_leaf("[i]y.jpg").label) == "[i]y.jpg"


@pytest.mark.parametrize("word", ["q", "quit"])
async def test_colon_q_in_the_jump_prompt_quits(tui_app, word):
    async with tui_app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("colon", *word, "enter")
        await wait_for(pilot, lambda: not tui_app.is_running, what="the console to quit")


async def test_a_remapped_list_key_moves_and_the_old_one_does_not(config, platform):
    from dataclasses import replace

    app = make_app(replace(config, keymap={"list.down": "ctrl+n"}), platform)
    async with app.run_test(size=SIZE) as pilot:
        services = app.screen.query_one("#services", ResourceTable)
        await wait_for(pilot, lambda: services.row_count == len(PARTS), what="the services table")
        services.focus()
        await pilot.press("j")
        assert services.cursor_row == 0
        await pilot.press("ctrl+n")
        assert services.cursor_row == 1


async def test_the_frame_keys_wait_while_a_dialog_is_open(tui_app):
    from dlptui.tui.dialogs.confirm import ConfirmDialog

    answers = []
    async with tui_app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tui_app.push_screen(ConfirmDialog("Delete everything?"), answers.append)
        await pilot.pause()
        await pilot.press("3", "q", "question_mark")  # neither a switch, nor quit, nor the help behind the dialog
        await pilot.pause()
        assert tui_app.is_running and tui_app.current_mode == "cluster"
        assert isinstance(tui_app.screen, ConfirmDialog)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
        assert tui_app.current_mode == "experiments"
    assert answers == [False]
