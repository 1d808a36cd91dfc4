"""The Deployments screen against a real local platform: a real seldon-core microservice starts.

One deployment goes through its whole life with keys (deploy, available, log tail, lineage,
switch version, canary, no canary, undeploy (ctrl+d) with "No" first), so the server starts as few times as it
can on a small machine; read-only mode is checked without a server.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from dlptui.tui.dialogs.confirm import ConfirmDialog
from dlptui.tui.dialogs.deploy import DeployDialog, VersionDialog
from dlptui.tui.dialogs.lineage import LineageDialog
from dlptui.tui.keys import screen_actions
from dlptui.tui.screens.deployments import DeploymentsScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.console import undeploy_all
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for

pytestmark = pytest.mark.slow
SERVER_S = 240.0  # a generous bound for a server to start on a busy machine


def cell(table: ResourceTable, key: str, column: int) -> str:
    return str(table.get_row(key)[column])


async def submit(pilot, app, dialog_type) -> None:
    """Enter, as a person confirms (the README's key table): the dialog's first field, a Select, has the focus."""
    await wait_for(pilot, lambda: isinstance(app.screen, dialog_type), what=f"the {dialog_type.__name__}")
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, dialog_type), what="the dialog to close")


async def open_prediction_log(pilot, app, deployment: str) -> ResourceTable:
    """On the Deployments screen: the deployment's row selected, `w`; the prediction log dialog's table."""
    from dlptui.tui.dialogs.serving import PredictionsDialog

    table = app.screen.query_one("#deployments", ResourceTable)
    await wait_for(pilot, lambda: deployment in table.all_keys, what="the deployment")
    table.select_key(deployment)
    table.focus()
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(app.screen, PredictionsDialog), what="the prediction log")
    return app.screen.query_one("#predictions", ResourceTable)


async def test_deploy_switch_canary_lineage_and_undeploy_with_keys(registered_platform):
    platform = registered_platform
    undeploy_all(platform)
    app = make_app(platform.config, platform, start="deployments")
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, DeploymentsScreen)
            await wait_for(pilot, lambda: "Nothing is deployed" in str(screen.query_one("#state").content),
                           what="the empty state")
            table = screen.query_one("#deployments", ResourceTable)

            # deploy: the dialog proposes dogcat-model's staging alias (v1) as dogcat-deploy
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, DeployDialog), what="the deploy dialog")
            assert app.screen.query_one("#name").value == "dogcat-deploy"
            await submit(pilot, app, DeployDialog)
            await wait_for(pilot, lambda: "dogcat-deploy" in table.all_keys, what="the deployment row")
            assert cell(table, "dogcat-deploy", 1) == "dogcat-model@1"
            await wait_for(pilot, lambda: cell(table, "dogcat-deploy", 3) == "available", timeout=SERVER_S,
                           what="the deployment to become available")
            assert cell(table, "dogcat-deploy", 4).startswith("http://127.0.0.1:")
            log = screen.query_one("#log")
            await wait_for(pilot, lambda: log.line_count > 0, what="the server's log tail")
            assert "─ Server log of dogcat-deploy ─" in drawn(app)[0]  # the log pane's title, as drawn

            # lineage of the deployment: the whole chain, down to the data commit
            table.focus()
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(app.screen, LineageDialog), what="the lineage panel")
            kinds = [link.kind for link in app.screen.links]
            assert kinds == ["deployment", "version", "checkpoint", "experiment", "data commit"]
            assert app.screen.links[1].title == "dogcat-model@1"
            await pilot.press("down", "enter")  # the version: the models screen opens at it
            await wait_for(pilot, lambda: app.current_mode == "models", what="the switch to the models screen")
            await wait_for(
                pilot,
                lambda: app.screen.query_one("#versions", ResourceTable).selected_key == "dogcat-model@1",
                what="version 1 selected on the models screen",
            )
            await pilot.press("5")
            await wait_for(pilot, lambda: app.screen is screen, what="back on the deployments screen")

            # switch to v2 (the dialog proposes the other version)
            table.focus()
            await pilot.press("e")
            await submit(pilot, app, VersionDialog)
            await wait_for(pilot, lambda: cell(table, "dogcat-deploy", 1) == "dogcat-model@2", timeout=SERVER_S,
                           what="the switch to version 2")
            assert platform.serving.get_deployment("dogcat-deploy").version == 2

            # a canary: v1 takes 10 percent
            await pilot.press("t")
            await wait_for(pilot, lambda: isinstance(app.screen, VersionDialog), what="the canary dialog")
            assert app.screen.query_one("#traffic").value == "10"
            await submit(pilot, app, VersionDialog)
            await wait_for(pilot, lambda: cell(table, "dogcat-deploy", 5) == "v1 10%", timeout=SERVER_S,
                           what="the canary")

            # a canary share that is not a percent stays in the dialog with one sentence
            await pilot.press("t")
            await wait_for(pilot, lambda: isinstance(app.screen, VersionDialog), what="the canary dialog")
            app.screen.query_one("#traffic").value = "150"
            await pilot.click("#ok")
            await pilot.pause()
            assert isinstance(app.screen, VersionDialog)
            assert "between 1 and 99 percent" in str(app.screen.query_one("#dialog-error").content)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
            assert cell(table, "dogcat-deploy", 5) == "v1 10%"

            # a share of 0 removes the canary
            await pilot.press("t")
            await wait_for(pilot, lambda: isinstance(app.screen, VersionDialog), what="the canary dialog")
            app.screen.query_one("#traffic").value = "0"
            await submit(pilot, app, VersionDialog)
            await wait_for(pilot, lambda: cell(table, "dogcat-deploy", 5) == "-", timeout=SERVER_S, what="no canary")
            assert platform.serving.get_deployment("dogcat-deploy").canary_version is None

            # undeploy asks first, with "No" focused: Enter keeps the deployment
            await pilot.press("ctrl+d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            assert app.focused is not None and app.focused.id == "no"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
            await pilot.pause()
            assert [d.name for d in platform.serving.list_deployments()] == ["dogcat-deploy"]
            await pilot.press("ctrl+d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            await pilot.press("y")
            await wait_for(pilot, lambda: table.row_count == 0, what="the row to go")
            assert platform.serving.list_deployments() == []
            assert any("Undeployed dogcat-deploy" in n.message for n in app._notifications)
    finally:
        undeploy_all(platform)


async def test_read_only_hides_every_changing_action(registered_platform):
    config = replace(registered_platform.config, read_only=True)
    app = make_app(config, registered_platform, start="deployments")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DeploymentsScreen) and app.screen.is_mounted)
        ids = {row[2] for row in screen_actions(app.screen)}
        assert "deployments.lineage" in ids
        assert "deployments.predictions" in ids
        assert not ids & {"deployments.deploy", "deployments.switch", "deployments.canary", "deployments.undeploy",
                          "deployments.promote_canary", "deployments.abort_canary", "deployments.shadow",
                          "deployments.rollback"}
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, DeployDialog)
        assert registered_platform.serving.list_deployments() == []


async def test_canary_figures_promote_shadow_rollback_and_predictions_with_keys(registered_platform):
    """Versions side by side with live figures, then g (promote), h (shadow), b (roll back), w (the log)."""
    from dlptui.tui.dialogs.serving import PredictionsDialog, ShadowDialog
    from tests.fixtures.serving import image_bytes

    platform = registered_platform
    undeploy_all(platform)
    serving = platform.serving
    registry = platform.registry
    staging = registry.get_version("dogcat-model", "staging")
    assert staging.version == 1
    serving.deploy("dogcat-deploy", staging, "staging")  # as `deploy dogcat-model@staging` does
    serving.set_canary("dogcat-deploy", registry.get_version("dogcat-model", 2), 50)
    for _ in range(10):
        serving.predict("dogcat-deploy", image_bytes())
    app = make_app(platform.config, platform, start="deployments")
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            table = screen.query_one("#deployments", ResourceTable)
            versions = screen.query_one("#versions", ResourceTable)
            await wait_for(pilot, lambda: set(versions.all_keys) == {"primary-1", "canary-2"}, timeout=SERVER_S,
                           what="primary and canary side by side")
            requests = [int(cell(versions, key, 3)) for key in ("primary-1", "canary-2")]
            assert sum(requests) == 10 and all(requests)
            assert cell(versions, "canary-2", 2) == "50%" and cell(versions, "canary-2", 6).endswith("ms")
            assert "requests" in str(screen.query_one("#verdict").content)
            for _ in range(6):
                serving.predict("dogcat-deploy", image_bytes())
            screen.reload()
            await wait_for(pilot, lambda: cell(versions, "primary-1", 9) != "-", what="a sparkline of requests per poll")

            # the prediction log; Enter on one shows its lineage
            table.focus()
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, PredictionsDialog), what="the prediction log")
            assert len(app.screen.predictions) == 16
            log_table = app.screen.query_one("#predictions", ResourceTable)
            await wait_for(pilot, lambda: len(log_table.shown_keys) == 16, what="the logged predictions")
            app.screen.query_one("#filter").value = "canary"
            await wait_for(pilot, lambda: 0 < len(log_table.shown_keys) < 16, what="the filter")
            assert all(cell(log_table, key, 3) == "canary" for key in log_table.shown_keys)
            app.screen.query_one("#filter").value = ""
            await wait_for(pilot, lambda: len(log_table.shown_keys) == 16, what="the filter cleared")
            log_table.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, LineageDialog), what="the lineage of a prediction")
            assert [link.kind for link in app.screen.links][:2] == ["prediction", "version"]
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, what="back on the screen")

            # promote the canary: asks, then asks whether staging (which it was deployed by) moves along; version 2
            # takes everything and staging names it
            table.focus()
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog) and "Move staging to version 2 too?"
                           in str(app.screen.query_one("#question").content), what="the question about the alias")
            await pilot.press("y")
            await wait_for(pilot, lambda: cell(table, "dogcat-deploy", 1) == "dogcat-model@2", timeout=SERVER_S,
                           what="the promotion")
            assert serving.get_deployment("dogcat-deploy").canary_version is None
            await wait_for(pilot, lambda: registry.get_version("dogcat-model", "staging").version == 2,
                           what="staging moved to version 2 (after the promotion, in the same worker)")

            # a shadow of version 1
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, ShadowDialog), what="the shadow dialog")
            assert str(app.screen.query_one("#ref").value) == "1"
            await submit(pilot, app, ShadowDialog)
            await wait_for(pilot, lambda: serving.get_deployment("dogcat-deploy").shadow_version == 1, timeout=SERVER_S,
                           what="the shadow")
            await wait_for(pilot, lambda: "shadow-1" in versions.all_keys, what="the shadow's row")

            # roll back: to the whole routing that served before the promotion (version 1 and its canary), recorded
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            await pilot.press("y")
            await wait_for(pilot, lambda: cell(table, "dogcat-deploy", 1) == "dogcat-model@1", timeout=SERVER_S,
                           what="the rollback")
            back = serving.get_deployment("dogcat-deploy")
            assert (back.canary_version, back.shadow_version) == (2, None)
            await wait_for(pilot, lambda: "shadow-1" not in versions.all_keys and "canary-2" in versions.all_keys,
                           what="the rows of the routing rolled back to")
            assert [h.change for h in serving.history("dogcat-deploy")][-3:] == ["promoted", "shadow", "rolled back"]
            # staging names version 2 now, version 1 serves: the screen says so
            await wait_for(pilot, lambda: "staging names version 2 of dogcat-model, but version 1 serves"
                           in str(screen.query_one("#verdict").content), what="the alias note")
    finally:
        undeploy_all(platform)
        registry.promote("dogcat-model", 1, "staging")  # as the session's fixture made it, for the tests after this one


async def test_y_and_n_in_the_prediction_log_mark_a_prediction_right_or_wrong(served):
    """`w`, then `y` on one logged prediction (its own label is the truth) and `n` on another (the other label of a
    two-label model): each row shows its truth, and the prediction log holds it."""
    from dlptui.render.serving import LOGGED_COLUMNS
    from dlptui.tui.dialogs.serving import PredictionsDialog
    from tests.fixtures.serving import DEPLOYMENT, image_bytes

    truth = [c.key for c in LOGGED_COLUMNS].index("truth")
    first = served.serving.predict(DEPLOYMENT, image_bytes((5, 5, 5)))
    second = served.serving.predict(DEPLOYMENT, image_bytes((250, 250, 250)))
    other = "dog" if first.label == "cat" else "cat"
    app = make_app(served.config, served, start="deployments")
    async with app.run_test(size=SIZE) as pilot:
        log_table = await open_prediction_log(pilot, app, DEPLOYMENT)
        await wait_for(pilot, lambda: {first.id, second.id} <= set(log_table.shown_keys), what="the two predictions")
        assert cell(log_table, second.id, truth) == "-"
        assert {"predictions.right", "predictions.wrong"} <= {row[2] for row in screen_actions(app.screen)}

        log_table.select_key(second.id)
        await pilot.press("y")
        await wait_for(pilot, lambda: cell(log_table, second.id, truth) == f"{second.label} (right)", what="marked right")
        log_table.select_key(first.id)
        await pilot.press("n")
        await wait_for(pilot, lambda: cell(log_table, first.id, truth) == f"{other} (wrong)", what="marked wrong")
        assert isinstance(app.screen, PredictionsDialog)  # y and n keep the log open
    logged = {p.id: p for p in served.serving.predictions(DEPLOYMENT, limit=100_000)}
    assert (logged[int(second.id)].truth, logged[int(first.id)].truth) == (second.label, other)

    # read-only: the prediction log opens, and y / n are not offered
    app = make_app(replace(served.config, read_only=True), served, start="deployments")
    async with app.run_test(size=SIZE) as pilot:
        await open_prediction_log(pilot, app, DEPLOYMENT)
        ids = {row[2] for row in screen_actions(app.screen)}
        assert "dialog.cancel" in ids and not ids & {"predictions.right", "predictions.wrong"}, ids
