"""The Deployments screen's drift line against a real deployment: a version whose reference came from its training
commit turns red on inverted images, with its p-value, window, outliers, a sparkline of its drift scores and the
retrain suggestion; before any reference it says how to compute one."""

from __future__ import annotations

import pytest

from tests.fixtures.console import wait_available
from tests.fixtures.tui import SIZE, make_app, wait_for
from tests.test_drift_cli import held_back, inverted, send

pytestmark = pytest.mark.slow
NAME = "drift-tui"


async def test_the_drift_line_turns_red_with_its_sparkline_and_the_retrain_suggestion(trained_platform):
    from dlptui.actions import drift_reference
    from dlptui.tui.dialogs.confirm import ConfirmDialog
    from dlptui.tui.screens.deployments import DeploymentsScreen

    platform = trained_platform
    [experiment] = platform.training.list_experiments()
    platform.registry.register("dogcat-model", experiment.id)
    platform.serving.deploy(NAME, platform.registry.get_version("dogcat-model", 1))
    try:
        endpoint = wait_available(platform.serving, NAME).endpoint
        app = make_app(platform.config, platform, start="deployments")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, DeploymentsScreen)
            line = screen.query_one("#drift")
            await wait_for(pilot, lambda: "is not computed yet; `dlptui drift drift-tui --reference` computes it"
                           in str(line.content), what="the line saying there is no reference")
            await pilot.press("T")  # nothing drifts yet: nothing to retrain, and nothing started
            await wait_for(pilot, lambda: any(n.message == "No version of drift-tui drifts from its training data: nothing to "
                                              "retrain." for n in app._notifications), what="the sentence that nothing drifts")
            assert [e.id for e in platform.training.list_experiments()] == [experiment.id]
            drift_reference.compute(platform, NAME)
            send(endpoint, held_back(100))
            send(endpoint, inverted(200))
            await wait_for(pilot, lambda: "drifting" in str(line.content), timeout=120, what="the drifting line")
            shown = str(line.content)
            first, suggestion = shown.splitlines()[:2]
            assert first.startswith("Drift v1 primary: drifting p ") and "window 200" in first, first
            assert "outliers in 300" in first
            spark = first.rsplit("  ", 1)[1]
            assert spark[0] in "▁▂" and spark[-1] in "▇█", spark  # stable windows low, drifting ones high
            assert suggestion.startswith("Version 1 drifts from the data it was trained on"), suggestion
            styles = {str(span.style) for span in line.content.spans}
            assert "bold red" in styles

            # R does what the suggestion says, once asked: the demo model on the newest commit of its training data
            await pilot.press("T")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
            question = str(app.screen.query_one("#question").content)
            assert question.startswith("Version 1 of drift-tui drifts from its training data. Train the demo model on "
                                       f"{experiment.data_repo}@{experiment.data_commit[:12]}"), question
            await pilot.press("y")
            await wait_for(pilot, lambda: len(platform.training.list_experiments()) == 2, what="the retrain experiment")
            started = next(e for e in platform.training.list_experiments() if e.id != experiment.id)
            platform.training.kill(started.id)
            assert (started.data_repo, started.data_commit) == (experiment.data_repo, experiment.data_commit)
            await wait_for(pilot, lambda: any(n.message.startswith(f"Started experiment {started.id} on ")
                                              for n in app._notifications), what="the notification")
    finally:
        for e in platform.training.list_experiments():
            if not e.state.terminal:
                platform.training.kill(e.id)
        platform.serving.undeploy(NAME)
