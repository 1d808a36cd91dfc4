"""What the console draws, read from the terminal's text (`drawn`), not from the widgets' data: the `?` key table of
every screen, Enter in every dialog, a filter typed on every screen, the focused pane and where tab takes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlptui.platform.model import (Checkpoint, Deployment, DeploymentState, Experiment, ExperimentState,
                                   LoggedPrediction, Model, ModelVersion, Trial)
from dlptui.tui.app import SCREENS
from dlptui.tui.dialogs.help import HelpDialog
from dlptui.tui.keys import screen_actions
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for


def detail(name: str):
    """A screen reached from a top-level one, built on an empty platform (its data says it is missing)."""
    from dlptui.tui.screens.data import CommitsScreen, FilesScreen
    from dlptui.tui.screens.experiment import ExperimentScreen, TrialScreen
    from dlptui.tui.screens.models import VersionsScreen
    from dlptui.tui.screens.pipelines import JobScreen

    return {
        "commits": lambda: CommitsScreen("pets"),
        "files": lambda: FilesScreen("pets", "master"),
        "experiment": lambda: ExperimentScreen("1"),
        "trial": lambda: TrialScreen("1", "1"),
        "versions": lambda: VersionsScreen("dogcat-model"),
        "job": lambda: JobScreen("0123456789abcdef"),
    }[name]()


TARGETS = [(mode, None) for mode in SCREENS] + [
    ("data", "commits"), ("data", "files"), ("experiments", "experiment"), ("experiments", "trial"),
    ("models", "versions"), ("pipelines", "job"),
]


async def open_target(pilot, app, mode: str, name: str | None):
    await wait_for(pilot, lambda: app.current_mode == mode and app.screen.is_mounted, what=f"the {mode} screen")
    if name is not None:
        screen = detail(name)
        app.push_screen(screen)
        await wait_for(pilot, lambda: app.screen is screen and screen.is_mounted, what=f"the {name} screen")
    await pilot.pause()
    return app.screen


def footer(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def line_with(text: str, *words: str) -> str | None:
    """The drawn line holding `words` in that order, each a cell of its own (two or more spaces or a border apart)."""
    pattern = r"(^|[\s│])" + r"\s+".join(re.escape(w) for w in words) + r"($|[\s│])"
    return next((line for line in text.splitlines() if re.search(pattern, line)), None)


@pytest.mark.parametrize("mode,name", TARGETS, ids=[n or m for m, n in TARGETS])
async def test_the_key_table_of_every_screen_is_drawn_row_by_row(config, platform, mode, name):
    platform.data.create_repo("pets")
    platform.data.put_files("pets", "master", {"/a.txt": b"a"})
    app = make_app(config, platform, start=mode)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_target(pilot, app, mode, name)
        rows = screen_actions(screen)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpDialog), what="the key table")
        await pilot.pause()
        text, _ = drawn(app)
        assert line_with(text, "KEY", "ACTION", "ID (for [keymap])"), text  # the label as written, not read as markup
        for key, description, binding_id, *_ in rows:
            assert line_with(text, key, description, binding_id), f"{key} {description} {binding_id} is not drawn:\n{text}"
        assert "rows 1-" not in text  # the whole table fits: no row is hidden
        await pilot.press("enter")  # Enter closes it, as Esc does
        await wait_for(pilot, lambda: app.screen is screen, what="the key table to close")


@pytest.mark.parametrize("mode,name", TARGETS, ids=[n or m for m, n in TARGETS])
async def test_typing_into_the_filter_of_every_screen_never_switches_the_screen(config, platform, mode, name):
    platform.data.create_repo("pets")
    platform.data.put_files("pets", "master", {"/a.txt": b"a"})
    app = make_app(config, platform, start=mode)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_target(pilot, app, mode, name)
        await pilot.press("slash")
        box = screen.query_one("#filter")
        await wait_for(pilot, lambda: app.focused is box, what="the filter box")
        await pilot.press("3", "q", "1", "slash", "colon", "question_mark", "7")  # a screen's number, quit, jump, help
        await pilot.pause()
        assert app.is_running and app.screen is screen and app.current_mode == mode
        assert box.value == "3q1/:?7"  # "/" in the filter is a character of it
        assert "3q1/:?7" in drawn(app)[0]
        await pilot.press("escape")  # clears it; the keys are the screen's again
        await wait_for(pilot, lambda: app.focused is not box, what="the filter to close")
        await pilot.press("3")
        await wait_for(pilot, lambda: app.current_mode == "experiments", what="3 switching the screen again")


async def test_the_focused_pane_is_marked_and_the_footer_says_where_tab_goes(config, platform):
    app = make_app(config, platform, start="cluster")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "─ ▶ Nodes ─" in drawn(app)[0], what="the focused pane's mark")
        text = drawn(app)[0]
        assert "─ Services ─" in text and "─ ▶ Services ─" not in text  # one pane is marked
        await wait_for(pilot, lambda: "tab → Services" in footer(drawn(app)[0]), what="the footer naming where tab goes")
        await pilot.press("tab")
        await wait_for(pilot, lambda: "─ ▶ Services ─" in drawn(app)[0], what="the mark on the next pane")
        assert "─ Nodes ─" in drawn(app)[0]
        await wait_for(pilot, lambda: "tab → Processes of this home" in footer(drawn(app)[0]),
                       what="the footer naming the next pane")
        await pilot.press("j")  # the keys go to the focused pane
        assert app.screen.query_one("#services").cursor_row == 1
        assert app.screen.query_one("#nodes").cursor_row == 0


async def test_a_table_cut_by_the_screen_says_which_rows_are_in_sight(config, platform):
    for n in range(40):
        platform.data.create_repo(f"repo-{n:02d}")
    app = make_app(config, platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "rows 1-" in drawn(app)[0], what="the count of the rows in sight")
        note = re.search(r"rows 1-(\d+) of 40", drawn(app)[0])
        assert note and 10 < int(note.group(1)) < 40
        await pilot.press("end")
        await wait_for(pilot, lambda: re.search(r"rows \d+-40 of 40", drawn(app)[0]), what="the last rows in sight")
        assert "repo-39" in drawn(app)[0]
        await pilot.press("slash", *"repo-1")
        await wait_for(pilot, lambda: "10 of 40 match the filter" in drawn(app)[0], what="the filter's count")


async def test_a_long_list_is_windowed_and_every_row_can_be_reached():
    from textual.app import App

    from dlptui.tui.widgets.resource_table import WINDOW, ResourceTable

    class Host(App):
        def compose(self):
            yield ResourceTable([("name", "NAME"), ("n", "N")], title="Many", id="many")

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(ResourceTable)
        table.update_rows((str(i), (f"row {i}", str(i))) for i in range(1000))
        await pilot.pause()
        assert table.row_count == WINDOW  # the DataTable holds a window of the list
        assert "rows 1-" in drawn(app)[0] and "of 1,000" in drawn(app)[0]
        table.focus()
        await pilot.press("end")
        await wait_for(pilot, lambda: table.selected_key == "999", what="the last row")
        await wait_for(pilot, lambda: "row 999" in drawn(app)[0] and "-1,000 of 1,000" in drawn(app)[0],
                       what="the last row drawn")
        await pilot.press("home")
        await wait_for(pilot, lambda: table.selected_key == "0", what="the first row")
        for _ in range(WINDOW + 20):  # past the window's end, key by key
            await pilot.press("j")
        await wait_for(pilot, lambda: table.selected_key == str(WINDOW + 20), what="the row past the first window")
        await wait_for(pilot, lambda: f"row {WINDOW + 20} " in drawn(app)[0], what="that row drawn")
        assert table.select_key("640") and table.selected_key == "640"
        table.update_rows((str(i), (f"row {i}", str(i))) for i in range(1000))  # the same rows: the cursor stays
        await pilot.pause()
        assert table.selected_key == "640"


# --- Enter in every dialog answers it -----------------------------------------------------------------


def version(n: int) -> ModelVersion:
    return ModelVersion("dogcat-model", n, f"{n}" * 8 + "-uuid", created=1.0, experiment_id="1",
                        metrics={"accuracy": 0.5 + n / 10, "validation_loss": 1.0 / n})


def choices():
    return {"dogcat-model": (Model("dogcat-model", 1.0, versions=2, aliases={"production": 1}), [version(2), version(1)])}


def deployment() -> Deployment:
    return Deployment("dogcat-deploy", "dogcat-model", 1, DeploymentState.AVAILABLE)


def dialogs(tmp_path: Path):
    """(name, dialog, keys typed before Enter, the answer Enter must give) for every dialog of the console."""
    from dlptui.actions.registry import BEST
    from dlptui.tui.dialogs.compare import CompareDialog, CompareTrialsDialog
    from dlptui.tui.dialogs.confirm import ConfirmDialog
    from dlptui.tui.dialogs.deploy import DeployDialog, Target, VersionDialog
    from dlptui.tui.dialogs.files import FilePicker
    from dlptui.tui.dialogs.lineage import LineageDialog, Link
    from dlptui.tui.dialogs.prompt import InputDialog, JumpPrompt
    from dlptui.tui.dialogs.register import RegisterDialog, Registration
    from dlptui.tui.dialogs.serving import PredictionsDialog, ShadowDialog
    from dlptui.tui.dialogs.start import StartDialog

    config = tmp_path / "local.yaml"
    config.write_text("name: x\n")
    experiment = Experiment("1", "demo", ExperimentState.COMPLETED, 1.0)
    checkpoint = Checkpoint("c" * 32, "1", "1", 20, 1.0, str(tmp_path), {"accuracy": 0.9})
    prediction = LoggedPrediction(7, "dogcat-deploy", 1.0, "dogcat-model", 1, "primary", "r", "ab" * 32, 10, "cat",
                                  {"cat": 0.9, "dog": 0.1}, 5.0, 200)
    link = Link("version", "dogcat-model@1", "accuracy 60%", "models", "dogcat-model@1")
    trials = [Trial("1", "1", ExperimentState.COMPLETED, hparams={"lr": 0.1}, best_metric=0.3),
              Trial("2", "1", ExperimentState.COMPLETED, hparams={"lr": 0.01}, best_metric=0.2)]
    return [
        ("input", InputDialog("Name of the new repo"), ["p", "e", "t", "s"], "pets"),
        ("jump", JumpPrompt(["data"]), ["d", "a"], "da"),
        ("file picker", FilePicker("Pick", start=config), [], config.resolve()),
        ("start", StartDialog([config], []), [], (config, None, None, None)),
        ("register", RegisterDialog("dogcat-model", [(experiment, [checkpoint])]), [],
         Registration("dogcat-model", "1", BEST, None)),
        ("deploy", DeployDialog(choices()), [], Target("dogcat-deploy", "dogcat-model", "production")),
        ("switch", VersionDialog(deployment(), choices(), canary=False), [], Target("dogcat-deploy", "dogcat-model", "2")),
        ("canary", VersionDialog(deployment(), choices(), canary=True), [], Target("dogcat-deploy", "dogcat-model", "2", 10)),
        ("shadow", ShadowDialog(deployment(), choices()), [], "2"),
        ("predictions", PredictionsDialog("dogcat-deploy", [prediction]), [], 7),
        ("lineage", LineageDialog("Lineage of dogcat-deploy", [link]), [], link),
        ("compare", CompareDialog(version(1), version(2)), [], None),
        ("compare trials", CompareTrialsDialog("1", trials, "validation_loss", True), [], None),
        ("help", HelpDialog("Cluster", []), [], None),
        ("confirm", ConfirmDialog("Delete repo pets?"), [], False),  # "No" has the focus: Enter keeps things
    ]


@pytest.mark.parametrize("index", range(15), ids=[d[0] for d in dialogs(Path("/tmp"))])
async def test_enter_answers_every_dialog_wherever_the_focus_starts(index, tmp_path):
    from textual.app import App

    name, dialog, keys, answer = dialogs(tmp_path)[index]
    answers = []

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(dialog, answers.append)

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen is dialog and dialog.is_mounted, what=f"the {name} dialog")
        await pilot.pause()
        text = drawn(app)[0]  # the dialog as drawn: its heading and its buttons
        assert dialog.heading.split("(")[0].strip()[:40] in text, text
        for button in filter(None, (dialog.OK, dialog.CANCEL)):
            assert button[1] in text, text
        await pilot.press(*keys, "enter")
        await wait_for(pilot, lambda: answers, what=f"Enter to answer the {name} dialog")
        assert answers == [answer]
        assert app.screen is not dialog


async def test_in_a_dialog_a_select_opens_with_space_and_enter_picks_an_option_then_confirms(tmp_path):
    from textual.app import App
    from textual.widgets import Select

    from dlptui.tui.dialogs.serving import ShadowDialog

    dialog, answers = ShadowDialog(deployment(), choices()), []

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(dialog, answers.append)

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: dialog.is_mounted and isinstance(app.focused, Select), what="the select focused")
        await pilot.press("space")  # opens the list of versions
        await wait_for(pilot, lambda: dialog.query_one(Select).expanded, what="the open select")
        await pilot.press("up", "up", "enter")  # Enter in the open list picks the option, the dialog stays
        await wait_for(pilot, lambda: not dialog.query_one(Select).expanded, what="the option picked")
        assert answers == [] and app.screen is dialog
        picked = dialog.query_one(Select).value
        await pilot.press("enter")  # and now confirms
        await wait_for(pilot, lambda: answers, what="the dialog answered")
        assert answers == [picked] and picked != "2"
