"""The console's frame: modes, jump, filter, help, palette, read-only, keymap, a dead part, unavailable screens."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.command import CommandList

from dlptui.platform import PARTS
from dlptui.tui.app import SCREENS, resolve_jump
from dlptui.tui.dialogs.confirm import ConfirmDialog
from dlptui.tui.dialogs.help import HelpDialog
from dlptui.tui.screens.base import BaseScreen, UnavailableScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.tui import SIZE, make_app, wait_for


def palette_prompts(app) -> list[str]:
    commands = app.screen.query_one(CommandList)
    return [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]


async def palette_listed(pilot, app, first: str | None = None) -> list[str]:
    """The palette's prompts once its search has finished (its workers run on the loop: a fixed pause
    is too short on a loaded machine); with `first`, once the best match names it."""
    from textual.command import CommandPalette

    def ready() -> bool:
        palette = app.screen
        if not isinstance(palette, CommandPalette) or not palette.has_class("-ready"):
            return False
        if any(w.is_running and w.group == CommandPalette._GATHER_COMMANDS_GROUP for w in app.workers):
            return False  # still gathering (or a newer search after a key)
        prompts = palette_prompts(app)
        return bool(prompts) and (first is None or first in prompts[0])

    await wait_for(pilot, ready, what=f"the palette's list{f' led by {first}' if first else ''}")
    return palette_prompts(app)


def test_jump_resolves_names_aliases_and_prefixes():
    assert resolve_jump("exp") == "experiments"
    assert resolve_jump(":dp".lstrip(":")) == "deployments"
    assert resolve_jump("deploy") == "deployments"
    assert resolve_jump("mod") == "models"
    assert resolve_jump("Data") == "data"
    assert resolve_jump("nonsense") is None
    assert resolve_jump("d") is None  # data and deployments: ambiguous


async def test_number_keys_and_jump_switch_screens(tui_app):
    async with tui_app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: tui_app.screen.is_mounted, what="the first screen")
        assert tui_app.current_mode == "cluster"
        for mode, (key, _, _) in SCREENS.items():
            await pilot.press(key)
            await pilot.pause()
            assert tui_app.current_mode == mode
            assert isinstance(tui_app.screen, BaseScreen)
        await pilot.press("colon")
        await pilot.pause()
        await pilot.press(*"exp", "enter")
        await pilot.pause()
        assert tui_app.current_mode == "experiments"
        await pilot.press("colon")
        await pilot.pause()
        await pilot.press(*"nosuch", "enter")
        await pilot.pause()
        assert tui_app.current_mode == "experiments"
        assert any("There is no screen named 'nosuch'" in n.message for n in tui_app._notifications)


async def test_header_shows_every_part_and_cluster_context(tui_app):
    async with tui_app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(tui_app.health.services) == len(PARTS) and tui_app.health.context, what="the health poll")
        assert tui_app.health.services["cluster"].reachable
        header = tui_app.screen.query_one("DlpHeader").render().plain
        assert "profile local" in header
        assert f"python {tui_app.health.context['python']}" in header
        assert "load" in header


async def test_filter_narrows_the_focused_table_and_esc_clears_it(tui_app):
    async with tui_app.run_test(size=SIZE) as pilot:
        services = tui_app.screen.query_one("#services", ResourceTable)
        await wait_for(pilot, lambda: services.row_count == len(PARTS), what="the services table")
        services.focus()
        await pilot.press("slash")
        await pilot.press(*"^(data|train)")
        await pilot.pause()
        assert services.shown_keys == ["data", "training"]
        await pilot.press("enter")  # keeps the filter, back to the table
        await pilot.pause()
        assert tui_app.focused is services and services.row_count == 2
        await pilot.press("slash")
        await pilot.press("ctrl+a", "ctrl+k", *"!^(data|train)")  # inverted
        await pilot.pause()
        assert set(services.shown_keys) == {"cluster", "registry", "serving", "pipelines"}
        await pilot.press("escape")
        await pilot.pause()
        assert services.row_count == len(PARTS)


async def test_help_lists_the_keys_of_the_current_screen(tui_app):
    async with tui_app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(tui_app.screen, HelpDialog)
        ids = {row[2] for row in tui_app.screen.actions}
        assert {"screen.filter", "app.jump", "app.quit", "app.help"} <= ids
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(tui_app.screen, HelpDialog)


async def test_palette_lists_the_screen_actions_and_runs_one(tui_app):
    async with tui_app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        prompts = await palette_listed(pilot, tui_app)
        assert any("app.jump" in p for p in prompts)
        assert any("screen.filter" in p for p in prompts)
        await pilot.press(*"app.data")
        await palette_listed(pilot, tui_app, first="app.data")
        await pilot.press("enter")
        await wait_for(pilot, lambda: tui_app.current_mode == "data", what="the palette's switch to Data")


async def test_a_remapped_key_works_and_the_old_one_does_not(config, platform):
    app = make_app(replace(config, keymap={"app.experiments": "x", "app.help": "f1"}), platform)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
        assert app.current_mode == "cluster"
        await pilot.press("x")
        await pilot.pause()
        assert app.current_mode == "experiments"
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpDialog)


async def test_read_only_hides_the_sample_action_from_footer_help_and_palette(config, platform):
    app = make_app(replace(config, read_only=True), platform)
    async with app.run_test(size=SIZE) as pilot:
        app.empty_platform = True  # what the first look finds on this fresh home
        app.refresh_bindings()
        await pilot.pause()
        assert "f2" not in app.screen.active_bindings
        assert "READ-ONLY" in app.screen.query_one("DlpHeader").render().plain
        await pilot.press("f2")
        await pilot.pause()
        assert not app.sample_loading
        await pilot.press("ctrl+p")
        prompts = await palette_listed(pilot, app)
        assert any("app.jump" in p for p in prompts)
        assert not any("app.sample" in p for p in prompts)


async def test_sample_action_is_offered_on_an_empty_platform(tui_app):
    async with tui_app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: tui_app.empty_platform, what="the first-start offer")
        assert "f2" in tui_app.screen.active_bindings
        assert any("press F2" in n.message for n in tui_app._notifications)


async def test_confirm_dialog_focuses_no_and_enter_keeps(tui_app):
    answers = []
    async with tui_app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tui_app.push_screen(ConfirmDialog("Delete everything?"), answers.append)
        await pilot.pause()
        assert tui_app.focused.id == "no"
        await pilot.press("enter")
        await pilot.pause()
        tui_app.push_screen(ConfirmDialog("Delete everything?"), answers.append)
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert answers == [False, True]


async def test_a_dead_backend_shows_in_the_header_and_the_console_keeps_working(home, monkeypatch):
    from dlptui.config import load_config

    monkeypatch.setenv("PACHD_ADDRESS", "grpc://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("DET_MASTER", "http://127.0.0.1:9")
    monkeypatch.setenv("KUBECONFIG", str(home / "no-such-kubeconfig"))
    app = make_app(load_config(profile="cluster"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.health.services) == len(PARTS), timeout=90, what="the health poll")
        assert not app.health.services["data"].reachable
        header = app.screen.query_one("DlpHeader").render().plain
        assert "✖ data" in header
        assert app.health.services["data"].detail.split(".")[0] in header  # its reason, in a sentence
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
        assert app.current_mode == "experiments"
        assert app.is_running


async def test_a_screen_whose_module_is_missing_says_so(tui_app, monkeypatch):
    import dlptui.tui.app as app_module

    monkeypatch.setitem(app_module.SCREENS, "predict", ("6", "Predict", "dlptui.tui.screens.no_such_module:X"))
    async with tui_app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause()
        assert isinstance(tui_app.screen, UnavailableScreen)
        text = str(tui_app.screen.query_one("#unavailable").render())
        assert "not available yet" in text


HEAVY = ("torch", "torchvision", "determined", "kubernetes", "grpc", "python_pachyderm", "seldon_core",
         "numpy", "PIL", "textual_image")


def test_importing_the_console_and_every_screen_loads_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys; import dlptui.tui, dlptui.tui.app, dlptui.cli;"
        "from dlptui.tui.app import SCREENS, load_screen;"
        "[load_screen(m) for m in SCREENS];"
        "import dlptui.tui.dialogs.deploy, dlptui.tui.dialogs.lineage, dlptui.tui.dialogs.help;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


FIRST_FRAME = """
import asyncio, json, sys
from dlptui.config import load_config
from dlptui.tui import graphics
from dlptui.tui.app import DlpApp

graphics.probe()  # as run_console does: not a terminal that draws pixels, so nothing is imported
app = DlpApp(load_config(), start=sys.argv[1])
seen = {}
after_first_frame = app._after_first_frame

def first_frame():
    seen["heavy"] = sorted(m for m in %r if m in sys.modules)
    seen["screen"] = type(app.screen).__name__
    after_first_frame()

app._after_first_frame = first_frame

async def main():
    async with app.run_test(size=(120, 36)) as pilot:
        while "heavy" not in seen:
            await pilot.pause(0.01)
    print(json.dumps(seen))

asyncio.run(main())
"""


@pytest.mark.parametrize("start", ["cluster", "predict"])
def test_the_first_frame_is_painted_before_any_heavy_library_is_loaded(home, start):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "TERM": "xterm-kitty"}  # a terminal that may draw pixels: still nothing without a tty
    out = subprocess.run([sys.executable, "-c", FIRST_FRAME % (HEAVY,), start], capture_output=True, text=True,
                         env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["screen"] == {"cluster": "ClusterScreen", "predict": "PredictScreen"}[start]
    assert seen["heavy"] == []


def test_graphics_are_probed_only_where_the_terminal_may_draw_pixels():
    from dlptui.tui import graphics

    assert graphics.may_draw_pixels({"TERM": "xterm-kitty"})
    assert graphics.may_draw_pixels({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"})
    assert graphics.may_draw_pixels({"TERM": "xterm-256color", "KONSOLE_VERSION": "230800"})
    assert not graphics.may_draw_pixels({"TERM": "xterm-256color"})
    assert not graphics.may_draw_pixels({"TERM": "dumb"})
    assert not graphics.probe({"TERM": "xterm-256color"})  # nothing asked, nothing imported: half blocks


async def test_resource_table_updates_in_place_and_the_cursor_stays_on_its_row():
    from textual.app import App

    class One(App):
        def compose(self):
            yield ResourceTable([("name", "NAME"), ("state", "STATE")], id="t")

    app = One()
    async with app.run_test() as pilot:
        table = app.query_one(ResourceTable)
        table.update_rows([("a", ("a", "running")), ("b", ("b", "running")), ("c", ("c", "queued"))])
        table.move_cursor(row=1)
        await pilot.pause()
        assert table.selected_key == "b"
        table.update_rows([("a", ("a", "running")), ("b", ("b", "completed")), ("c", ("c", "running"))])
        assert table.selected_key == "b" and table.get_row("b")[1] == "completed"
        table.update_rows([("new", ("new", "queued")), ("a", ("a", "x")), ("b", ("b", "y"))])  # c gone, new first
        assert table.shown_keys == ["new", "a", "b"]
        assert table.selected_key == "b" and table.get_row("b")[1] == "y"
        assert table.set_filter("(") is not None  # not a regex: matched as text, and said so
        assert table.row_count == 0
        table.set_filter("")
        assert table.row_count == 3


def test_errors_become_one_sentence():
    from dlptui.errors import NotFound
    from dlptui.tui.screens.base import describe_error

    assert describe_error(NotFound("There is no repo 'x'.")) == "There is no repo 'x'."
    sentence = describe_error(ValueError("bad value\nTraceback (most recent call last): ..."))
    assert sentence == "Unexpected error: ValueError: bad value."


async def test_a_slow_part_shows_as_slow_and_the_others_answer(tui_app, platform):
    import threading

    release = threading.Event()
    answer = platform.data.health
    platform.data.health = lambda: release.wait(60) and answer()
    try:
        async with tui_app.run_test(size=SIZE) as pilot:
            # the cluster's answer too: on a loaded machine it may come after the slow mark (3 s), and data stays slow
            await wait_for(pilot, lambda: "data" in tui_app.health.slow and "cluster" in tui_app.health.services,
                           what="the slow mark and the cluster's answer")
            header = tui_app.screen.query_one("DlpHeader").render().plain
            assert "⧗ data" in header and "slow or hanging" in header
            assert tui_app.health.services["cluster"].reachable and "data" not in tui_app.health.services
            await pilot.press("2")  # the console keeps working
            await pilot.pause()
            assert tui_app.current_mode == "data"
            release.set()
            await wait_for(pilot, lambda: "data" not in tui_app.health.slow and tui_app.health.services.get("data"),
                           what="the late answer")
            assert "⧗" not in tui_app.screen.query_one("DlpHeader").render().plain
    finally:
        release.set()


async def test_keymap_from_the_config_file_and_a_clash_said_in_one_sentence(home, tmp_path):
    from dlptui.config import load_config

    config_file = tmp_path / "config" / "dlptui" / "config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text('[keymap]\n"app.data" = "ctrl+d"\n"app.jump" = "q"\n')  # q is app.quit's key
    config = load_config()
    assert config.keymap == {"app.data": "ctrl+d", "app.jump": "q"}
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+d")
        await pilot.pause()
        assert app.current_mode == "data"
        clash = "The [keymap] of your config gives q to app.jump and app.quit"
        await wait_for(pilot, lambda: any(clash in n.message for n in app._notifications), what="the clash sentence")
        assert app.is_running


async def test_on_exit_the_platform_is_closed_only_after_the_threads_using_it_return(config):
    import threading

    app = make_app(config)  # the app's own platform: it closes it on exit
    events: list[str] = []
    release = threading.Event()
    close = app.platform.close
    app.platform.close = lambda: events.append("closed") or close()

    def poll() -> None:  # a poll still reading the store when the user quits
        release.wait(30)
        events.append("returned")

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.run_worker(app.work.track(poll), thread=True)
        await pilot.pause()
        threading.Timer(0.5, release.set).start()
    assert events == ["returned", "closed"]


async def test_a_call_stuck_on_exit_leaves_the_platform_open_instead_of_closing_it_under_the_thread(config, monkeypatch):
    import threading

    app = make_app(config)
    monkeypatch.setattr(app, "CLOSE_WAIT_SECONDS", 0.2)
    closed: list[bool] = []
    release = threading.Event()
    close = app.platform.close
    app.platform.close = lambda: closed.append(True) or close()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.run_worker(app.work.track(lambda: release.wait(30)), thread=True)
            await pilot.pause()
        assert closed == [] and app.work.running == 1
    finally:
        release.set()
    assert app.work.wait_idle(5) and app.work.running == 0
    close()


async def test_every_dialog_has_one_look_esc_cancels_and_enter_on_a_focused_yes_confirms(tui_app):
    from dlptui.tui.dialogs.prompt import InputDialog

    answers = []
    async with tui_app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tui_app.push_screen(ConfirmDialog("Delete everything?"), answers.append)
        await pilot.pause()
        await pilot.press("tab")  # from "No" to "Yes"
        assert tui_app.focused.id == "yes"
        await pilot.press("enter")
        await pilot.pause()
        tui_app.push_screen(InputDialog("Name of the new repo", placeholder="dogs-and-cats"), answers.append)
        await pilot.pause()
        dialog = tui_app.screen
        assert [w.id for w in dialog.query("#dialog, #dialog-title, #dialog-body, #dialog-buttons")] == [
            "dialog", "dialog-title", "dialog-body", "dialog-buttons"]
        await pilot.press("enter")  # nothing typed: one sentence, the dialog stays
        await pilot.pause()
        assert tui_app.screen is dialog and "Type something" in str(dialog.query_one("#dialog-error").content)
        await pilot.press("escape")
        await pilot.pause()
        assert tui_app.screen is not dialog
    assert answers == [True, None]
