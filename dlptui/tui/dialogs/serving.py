"""Dialogs of the Deployments screen beyond deploying: the shadow version, the prediction log.

    ShadowDialog(deployment, choices)     -> the version (or alias) to mirror to, or "none"
    PredictionsDialog(name, predictions)  -> the id of the prediction whose lineage to show, or None
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Select

from dlptui import text
from dlptui.actions.serving import Choices
from dlptui.platform.model import Deployment, LoggedPrediction
from dlptui.render import serving as render
from dlptui.tui.dialogs.base import Dialog, field
from dlptui.tui.dialogs.deploy import version_options

NONE = "none"


class ShadowDialog(Dialog[str]):
    """A version that gets a copy of every request (its answers are logged, never returned)."""

    def __init__(self, deployment: Deployment, choices: Choices) -> None:
        super().__init__(f"Shadow of {deployment.name} (serving {text.model_ref(deployment.model, deployment.version)})",
                         ok="Set shadow")
        self.deployment = deployment
        self.choices = choices

    def compose_body(self) -> ComposeResult:
        options = [(f"none  (no shadow{'' if self.deployment.shadow_version is None else ': stop the current one'})", NONE)]
        options += version_options(*self.choices[self.deployment.model])
        others = [v for _, v in options if v.isdigit() and v != str(self.deployment.version)]
        value = str(self.deployment.shadow_version) if self.deployment.shadow_version is not None else (others[0] if others else NONE)
        yield from field("mirror every request to", Select(options, value=value, allow_blank=False, id="ref"))

    def result(self) -> str:
        return str(self.query_one("#ref", Select).value)


class PredictionsDialog(Dialog[int]):
    """The deployment's latest logged predictions, filtered by a regex over the cells (`!` inverts);
    Enter on one (or OK) answers its id, for its lineage."""

    OK = ("ok", "Lineage")
    FOCUS = "#predictions"

    def __init__(self, name: str, predictions: list[LoggedPrediction]) -> None:
        super().__init__(f"Predictions of {name}: the latest {len(predictions)}, newest first")
        self.predictions = list(reversed(predictions))
        self.add_class("-wide")

    def compose_body(self) -> ComposeResult:
        from textual.widgets import Input

        from dlptui.tui.widgets.resource_table import ResourceTable

        yield Input(placeholder="filter: a regex over every column (! inverts), e.g. dog|canary", id="filter")
        yield ResourceTable.of(render.LOGGED_COLUMNS, id="predictions")

    def on_mount(self) -> None:
        from dlptui.tui.widgets.resource_table import ResourceTable, rendered

        table = self.query_one("#predictions", ResourceTable)
        table.update_rows(rendered(render.LOGGED_COLUMNS, self.predictions, key=lambda p: str(p.id)))
        table.focus()

    def on_input_changed(self, event) -> None:
        from dlptui.tui.widgets.resource_table import ResourceTable

        problem = self.query_one("#predictions", ResourceTable).set_filter(event.value)
        if problem:
            self.refuse(problem)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.confirm()

    def result(self) -> int:
        from dlptui.errors import InvalidInput
        from dlptui.tui.widgets.resource_table import ResourceTable

        key = self.query_one("#predictions", ResourceTable).selected_key
        if key is None:
            raise InvalidInput("No prediction is shown; predict through the deployment first, or change the filter.")
        return int(key)
