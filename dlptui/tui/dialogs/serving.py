"""Dialogs of the Deployments screen beyond deploying: the shadow version, the prediction log.

    ShadowDialog(deployment, choices)     -> the version (or alias) to mirror to, or "none"
    PredictionsDialog(name, predictions, mark, look)  -> the id of the prediction whose lineage to show, or None;
                                             `y` / `n` mark the selected one right or wrong (ground truth),
                                             `i` shows the image it was sent, where the deployment keeps inputs
    KeptImageDialog(prediction, picture)  the image a logged prediction was sent, with what was answered
    LabelDialog(prediction)               -> the right label of a wrong prediction of a model with 3+ labels
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
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


# mark(prediction, its right label, then): record the feedback (in a worker), then(the predictions as recorded)
Mark = Callable[[LoggedPrediction, str, Callable[[list[LoggedPrediction]], None]], None]
# look(prediction): show the image it was sent (read and decoded in a worker), or say why it cannot
Look = Callable[[LoggedPrediction], None]


class PredictionsDialog(Dialog[int]):
    """The deployment's latest logged predictions, filtered by a regex over the cells (`!` inverts);
    Enter on one (or OK) answers its id, for its lineage. `y` marks the selected prediction right (its own label
    is the truth), `n` wrong (the other label of a two-label model; otherwise the dialog asks which), through
    `mark`; the row shows the truth once it is recorded."""

    OK = ("ok", "Lineage")
    FOCUS = "#predictions"
    BINDINGS = [
        Binding("y", "right", "Right", id="predictions.right"),
        Binding("n", "wrong", "Wrong", id="predictions.wrong"),
        Binding("i", "image", "Image", id="predictions.image"),
    ]

    def __init__(self, name: str, predictions: list[LoggedPrediction], mark: Mark | None = None,
                 look: Look | None = None) -> None:
        keys = [k for k, offered in (("y: right, n: wrong", mark), ("i: image", look)) if offered]
        super().__init__(f"Predictions of {name}: the latest {len(predictions)}, newest first"
                         + (f"  ({', '.join(keys)})" if keys else ""))
        self.predictions = list(reversed(predictions))
        self.mark = mark
        self.look = look
        self.add_class("-wide")

    def compose_body(self) -> ComposeResult:
        from textual.widgets import Input

        from dlptui.tui.widgets.resource_table import ResourceTable

        yield Input(placeholder="filter: a regex over every column (! inverts), e.g. dog|canary", id="filter")
        yield ResourceTable.of(render.LOGGED_COLUMNS, id="predictions")

    def on_mount(self) -> None:
        self._show()
        self.query_one("#predictions").focus()

    def _show(self) -> None:
        from dlptui.tui.widgets.resource_table import ResourceTable, rendered

        table = self.query_one("#predictions", ResourceTable)
        table.update_rows(rendered(render.LOGGED_COLUMNS, self.predictions, key=lambda p: str(p.id)))

    def on_input_changed(self, event) -> None:
        from dlptui.tui.widgets.resource_table import ResourceTable

        problem = self.query_one("#predictions", ResourceTable).set_filter(event.value)
        if problem:
            self.refuse(problem)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.confirm()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`y` and `n` only where marking is offered (not in a read-only console)."""
        if action in ("right", "wrong") and self.mark is None:
            return False
        if action == "image" and self.look is None:
            return False
        return super().check_action(action, parameters)

    def _selected(self) -> LoggedPrediction | None:
        from dlptui.tui.widgets.resource_table import ResourceTable

        key = self.query_one("#predictions", ResourceTable).selected_key
        found = next((p for p in self.predictions if str(p.id) == key), None)
        if found is None:
            self.refuse("No prediction is selected.")
        elif found.label is None or found.role == "shadow":
            self.refuse(f"Prediction {found.id} gave no answer to a client ({'a shadow' if found.role == 'shadow' else 'it failed'}); "
                        "mark an answered one.")
            return None
        return found

    def action_right(self) -> None:
        found = self._selected()
        if found is not None and self.mark is not None:
            self.mark(found, found.label, self.recorded)

    def action_wrong(self) -> None:
        from dlptui.actions.feedback import other_label

        found = self._selected()
        if found is None or self.mark is None:
            return
        other = other_label(found)
        if other is not None:
            self.mark(found, other, self.recorded)
        else:
            self.app.push_screen(LabelDialog(found), lambda label: self.mark(found, label, self.recorded) if label else None)

    def action_image(self) -> None:
        from dlptui.tui.widgets.resource_table import ResourceTable

        key = self.query_one("#predictions", ResourceTable).selected_key
        found = next((p for p in self.predictions if str(p.id) == key), None)
        if found is None:
            self.refuse("No prediction is selected.")
        elif self.look is not None:
            self.refuse("")
            self.look(found)

    def recorded(self, predictions: list[LoggedPrediction]) -> None:
        """The rows of `predictions` as recorded now (their truth shown)."""
        fresh = {p.id: p for p in predictions}
        self.predictions = [fresh.get(p.id, p) for p in self.predictions]
        self.refuse("")
        self._show()

    def result(self) -> int:
        from dlptui.errors import InvalidInput
        from dlptui.tui.widgets.resource_table import ResourceTable

        key = self.query_one("#predictions", ResourceTable).selected_key
        if key is None:
            raise InvalidInput("No prediction is shown; predict through the deployment first, or change the filter.")
        return int(key)


class LabelDialog(Dialog[str]):
    """Which label was right, for a wrong prediction of a model with more than two labels."""

    def __init__(self, prediction: LoggedPrediction) -> None:
        super().__init__(f"Prediction {prediction.id} said {prediction.label}: what was right?", ok="Mark")
        self.choices = [label for label in sorted(prediction.probabilities) if label != prediction.label]

    def compose_body(self) -> ComposeResult:
        yield from field("the right label", Select([(c, c) for c in self.choices], value=self.choices[0] if self.choices else Select.BLANK,
                                                   allow_blank=not self.choices, id="label"))

    def result(self) -> str:
        from dlptui.errors import InvalidInput

        value = self.query_one("#label", Select).value
        if not isinstance(value, str):
            raise InvalidInput("The model has no other label to choose.")
        return value


class KeptImageDialog(Dialog[None]):
    """The image a logged prediction was sent (as the deployment kept it), drawn as the files tree draws one, with
    what was answered and, where feedback came, the truth."""

    OK = None
    CANCEL = ("close", "Close")
    BINDINGS = [Binding("q", "cancel", "Close", id="kept-image.close")]

    def __init__(self, prediction: LoggedPrediction, picture) -> None:
        p = prediction
        truth = "" if p.truth is None else f", truth {p.truth} ({'right' if p.right else 'wrong'})"
        super().__init__(f"Input of {p.deployment}#{p.id}: {p.label or 'no answer'} by "
                         f"{text.model_ref(p.model, p.version)} ({p.role}){truth}")
        self.picture = picture
        self.add_class("-wide")

    def compose_body(self) -> ComposeResult:
        from dlptui.tui.widgets.image_preview import ImagePreview

        yield ImagePreview("", id="kept-image")

    def on_mount(self) -> None:
        from dlptui.tui.widgets.image_preview import ImagePreview

        width, height = self.picture.info.get("original_size", self.picture.size)
        self.query_one("#kept-image", ImagePreview).show_image(self.picture, caption=f"{width}x{height}")

    def result(self) -> None:
        return None
