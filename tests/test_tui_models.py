"""The Models screen against a real local platform with a trained tiny experiment.

Register checkpoints through the dialog, promote with one key each (the alias moves and
the history grows), compare two versions, follow the lineage panel to another screen,
and see every changing action hidden in read-only mode.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from dlptui.tui.dialogs.compare import CompareDialog
from dlptui.tui.dialogs.deploy import DeployDialog
from dlptui.tui.dialogs.lineage import LineageDialog
from dlptui.tui.dialogs.register import RegisterDialog
from dlptui.tui.keys import screen_actions
from dlptui.tui.screens.models import ModelsScreen, VersionsScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for

pytestmark = pytest.mark.slow


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def register_with_keys(pilot, app, checkpoint_index: int | None = None) -> None:
    """n, then (optionally) pick a checkpoint in the dialog, then Register."""
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, RegisterDialog), what="the register dialog")
    if checkpoint_index is not None:
        await pilot.click("#checkpoint")
        await pilot.pause()
        for _ in range(checkpoint_index):
            await pilot.press("down")
        await pilot.press("enter")  # in the open list: picks the checkpoint, the dialog stays
        await pilot.pause()
        assert isinstance(app.screen, RegisterDialog)
    await pilot.press("enter")  # confirms, wherever the focus is
    await wait_for(pilot, lambda: not isinstance(app.screen, RegisterDialog), what="the dialog to close")


async def open_versions(pilot, app) -> VersionsScreen:
    models = app.screen.query_one("#models", ResourceTable)
    await wait_for(pilot, lambda: "dogcat-model" in models.all_keys, what="dogcat-model in the models table")
    models.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, VersionsScreen), what="the versions screen")
    return app.screen


async def test_register_and_promote_with_keys(trained_platform):
    app = make_app(trained_platform.config, trained_platform, start="models")
    registry = trained_platform.registry
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.is_mounted)
        await register_with_keys(pilot, app)  # the experiment's best checkpoint
        await wait_for(pilot, lambda: any("Registered dogcat-model@1" in n for n in notes(app)), what="registration")
        versions = await open_versions(pilot, app)
        table = versions.query_one("#versions", ResourceTable)
        history = versions.query_one("#history", ResourceTable)
        await wait_for(pilot, lambda: table.all_keys == ["dogcat-model@1"], what="version 1 in the table")

        # a second version, of the first checkpoint (the dialog's options: best, batch 10, batch 20)
        await register_with_keys(pilot, app, checkpoint_index=1)
        await wait_for(pilot, lambda: len(table.all_keys) == 2, what="version 2 in the table")
        v2 = registry.get_version("dogcat-model", 2)
        assert v2.checkpoint_uuid != registry.get_version("dogcat-model", 1).checkpoint_uuid

        table.focus()
        table.move_cursor(row=table.shown_keys.index("dogcat-model@2"))
        await pilot.press("s")
        await wait_for(pilot, lambda: history.row_count == 1, what="the staging promotion in the history")
        assert registry.get_model("dogcat-model").aliases == {"staging": 2}
        assert "staging" in str(table.get_row("dogcat-model@2")[1])

        await pilot.press("P")
        await wait_for(pilot, lambda: history.row_count == 2, what="the production promotion in the history")
        table.move_cursor(row=table.shown_keys.index("dogcat-model@1"))
        await pilot.press("s")  # staging moves back to v1: the history says from v2 to v1
        await wait_for(pilot, lambda: history.row_count == 3, what="the second staging promotion")
        assert registry.get_model("dogcat-model").aliases == {"staging": 1, "production": 2}
        newest = [str(c) for c in history.get_row(history.shown_keys[0])]
        assert newest[1:4] == ["staging", "v2", "v1"]
        await wait_for(pilot, lambda: str(table.get_row("dogcat-model@1")[1]) == "staging", what="the alias to move")
        assert str(table.get_row("dogcat-model@2")[1]) == "production"


async def test_compare_two_versions(trained_platform):
    experiment = trained_platform.training.list_experiments()[0]
    first, last = sorted(trained_platform.training.checkpoints(experiment.id), key=lambda c: c.batch)[:2]
    trained_platform.registry.register("dogcat-model", experiment.id, first.uuid)
    trained_platform.registry.register("dogcat-model", experiment.id, last.uuid)
    app = make_app(trained_platform.config, trained_platform, start="models")
    async with app.run_test(size=SIZE) as pilot:
        versions = await open_versions(pilot, app)
        table = versions.query_one("#versions", ResourceTable)
        await wait_for(pilot, lambda: len(table.all_keys) == 2, what="both versions")
        table.focus()
        await pilot.press("v")  # nothing marked yet: one sentence, no screen
        await pilot.pause()
        assert any("Mark a version with m first" in n for n in notes(app))
        table.move_cursor(row=table.shown_keys.index("dogcat-model@2"))  # the newer one marked: the order is the same
        await pilot.press("m")
        await wait_for(pilot, lambda: str(table.get_row("dogcat-model@2")[0]) == "v2 *", what="the mark")
        table.move_cursor(row=table.shown_keys.index("dogcat-model@1"))
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareDialog), what="the comparison")
        await pilot.pause()
        screen = drawn(app)[0]
        assert "dogcat-model: version 2 against version 1" in screen
        header = next(line.split("█")[1].split() for line in screen.splitlines() if "change (v2 - v1)" in line)
        assert header[:2] == ["v1", "v2"]  # the older on the left, the change is the newer minus the older
        old, new = first.metrics["accuracy"], last.metrics["accuracy"]
        delta = round(100 * (new - old), 1)
        verdict = "same" if delta == 0 else ("better" if delta > 0 else "worse")
        change = f"{abs(delta):.1f} pp, same" if delta == 0 else f"{delta:+.1f} pp, {verdict}"
        accuracy = next(line for line in screen.splitlines() if f"{100 * old:.1f}%" in line and "accuracy" in line)
        assert f"{100 * new:.1f}%" in accuracy and change in accuracy
        loss = next(line for line in screen.splitlines() if "validation_loss" in line)
        assert ("better" if last.metrics["validation_loss"] < first.metrics["validation_loss"] else "worse") in loss or "same" in loss
        assert "checkpoint" in screen and "differs" in screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionsScreen), what="back to the versions")

        # d: the deploy dialog with the selected version chosen; Esc deploys nothing
        table.move_cursor(row=table.shown_keys.index("dogcat-model@1"))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DeployDialog), what="the deploy dialog")
        assert app.screen.query_one("#model").value == "dogcat-model"
        assert app.screen.query_one("#ref").value == "1"
        assert app.screen.query_one("#name").value == "dogcat-deploy"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionsScreen), what="back to the versions")
        assert trained_platform.serving.list_deployments() == []


async def test_lineage_panel_shows_the_chain_and_a_link_switches_screen(trained_platform):
    experiment = trained_platform.training.list_experiments()[0]
    version = trained_platform.registry.register("dogcat-model", experiment.id)
    app = make_app(trained_platform.config, trained_platform, start="models")
    async with app.run_test(size=SIZE) as pilot:
        versions = await open_versions(pilot, app)
        table = versions.query_one("#versions", ResourceTable)
        await wait_for(pilot, lambda: table.all_keys == ["dogcat-model@1"], what="the version")
        table.focus()
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LineageDialog), what="the lineage panel")
        panel = app.screen
        assert [link.kind for link in panel.links] == ["version", "checkpoint", "experiment", "data commit"]
        assert panel.links[1].title == version.checkpoint_uuid
        assert panel.links[2].key == experiment.id
        assert panel.links[3].title == f"dogs-and-cats@{experiment.data_commit}"
        assert panel.missing == ""
        await pilot.press("down", "down", "enter")  # the experiment
        await wait_for(pilot, lambda: app.current_mode == "experiments", what="the switch to the experiments screen")
        experiments = app.screen.query_one("#experiments", ResourceTable)
        await wait_for(pilot, lambda: experiments.selected_key == experiment.id, what="the experiment's row selected")

        # the data commit's link selects its repo on the data screen, among others
        for name in ("aardvark", "zebra"):
            trained_platform.data.create_repo(name)
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionsScreen), what="back on the versions")
        app.screen.query_one("#versions", ResourceTable).focus()
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LineageDialog), what="the lineage panel")
        await pilot.press("down", "down", "down", "enter")  # the data commit
        await wait_for(pilot, lambda: app.current_mode == "data", what="the switch to the data screen")
        repos = app.screen.query_one(ResourceTable)
        await wait_for(pilot, lambda: len(repos.shown_keys) == 3, what="the three repos")
        await wait_for(pilot, lambda: repos.selected_key == "dogs-and-cats", what="the repo's row selected")
        assert repos.shown_keys.index("dogs-and-cats") != 0


async def test_read_only_hides_register_and_promote(trained_platform):
    experiment = trained_platform.training.list_experiments()[0]
    trained_platform.registry.register("dogcat-model", experiment.id)
    config = replace(trained_platform.config, read_only=True)
    app = make_app(config, trained_platform, start="models")
    async with app.run_test(size=SIZE) as pilot:
        ids = {row[2] for row in screen_actions(app.screen)}
        assert "models.register" not in ids and "app.jump" in ids
        versions = await open_versions(pilot, app)
        table = versions.query_one("#versions", ResourceTable)
        await wait_for(pilot, lambda: table.all_keys == ["dogcat-model@1"], what="the version")
        ids = {row[2] for row in screen_actions(versions)}
        assert {"models.compare", "models.lineage", "models.mark"} <= ids
        assert not ids & {"models.promote_staging", "models.promote_production", "models.register", "models.deploy"}
        table.focus()
        await pilot.press("s", "P", "n", "d")
        await pilot.pause()
        assert trained_platform.registry.get_model("dogcat-model").aliases == {}
        assert isinstance(app.screen, VersionsScreen)  # no dialog opened


async def test_a_remapped_key_promotes(trained_platform):
    experiment = trained_platform.training.list_experiments()[0]
    trained_platform.registry.register("dogcat-model", experiment.id)
    config = replace(trained_platform.config, keymap={"models.promote_production": "g"})
    app = make_app(config, trained_platform, start="models")
    async with app.run_test(size=SIZE) as pilot:
        versions = await open_versions(pilot, app)
        table = versions.query_one("#versions", ResourceTable)
        await wait_for(pilot, lambda: table.all_keys == ["dogcat-model@1"], what="the version")
        table.focus()
        await pilot.press("P")  # the old key does nothing now
        await pilot.pause()
        assert trained_platform.registry.get_model("dogcat-model").aliases == {}
        await pilot.press("g")
        await wait_for(pilot, lambda: versions.query_one("#history", ResourceTable).row_count == 1, what="the promotion")
        assert trained_platform.registry.get_model("dogcat-model").aliases == {"production": 1}


async def test_a_wrong_model_name_is_one_sentence(trained_platform):
    app = make_app(trained_platform.config, trained_platform, start="models")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.is_mounted)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RegisterDialog), what="the register dialog")
        app.screen.query_one("#model").value = "  "
        await pilot.click("#ok")
        await pilot.pause()
        assert isinstance(app.screen, RegisterDialog)  # stays open, says why
        assert "Give the model a name" in str(app.screen.query_one("#dialog-error").content)
        model = app.screen.query_one("#model")
        model.value = "no such/model"
        model.focus()
        await pilot.press("enter")  # Enter in a field submits the form
        await wait_for(pilot, lambda: any("is not a valid model name" in n for n in notes(app)), what="the sentence")
        sentence = next(n for n in notes(app) if "is not a valid model name" in n)
        assert "\n" not in sentence and "Traceback" not in sentence
        assert trained_platform.registry.list_models() == []
