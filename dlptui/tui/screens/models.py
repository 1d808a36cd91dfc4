"""Models: the registry's models; Enter shows a model's versions and its promotion history.

On the versions: `s` / `P` move the staging / production alias to the selected version
(the history under the table grows by one line), `m` marks a version and `v` compares
("versus") the marked one with the selected one, `l` opens the lineage dialog, `d` deploys
the selected version (the deploy dialog, `flows.DeployFlow`), `n` registers a checkpoint of
an experiment as a new version (on either screen, `flows.RegisterFlow`). Cells come from
`dlptui.render` (accuracy and loss read through the metric policy, written by its one rule).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from dlptui.actions import registry
from dlptui.actions.defaults import DEPLOYMENT, MODEL
from dlptui.platform.model import Model, ModelVersion, Promotion
from dlptui.render import registry as render
from dlptui.text import model_ref, version_tag
from dlptui.tui.dialogs.compare import CompareDialog
from dlptui.tui.dialogs.lineage import LineageDialog, follow, lineage_of
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.screens.flows import DeployFlow, RegisterFlow
from dlptui.tui.widgets.resource_table import ResourceTable, rendered


class ModelsScreen(RegisterFlow, BaseScreen):
    TITLE = "Models"
    POLL_SECONDS = 5.0
    MUTATING = frozenset({"new"})

    BINDINGS = [
        Binding("enter", "open", "Versions", id="models.open"),
        Binding("n", "new", "Register", id="models.register"),
    ]

    def compose_body(self) -> ComposeResult:
        yield ResourceTable.of(render.MODEL_COLUMNS, title="Models", id="models")

    @property
    def table(self) -> ResourceTable:
        return self.query_one("#models", ResourceTable)

    def fetch(self) -> list[Model]:
        return self.platform.registry.list_models()

    def show(self, models: list[Model]) -> None:
        self.table.update_rows(rendered(render.MODEL_COLUMNS, models, key=lambda m: m.name))
        self.state("" if models else f"No models yet: press n to register a checkpoint of an experiment as {MODEL}.")

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        name = self.table.selected_key
        if name is not None:
            self.app.push_screen(VersionsScreen(name))

    def action_new(self) -> None:
        self.start_register(self.table.selected_key or MODEL)

    def reveal(self, key: str) -> bool:
        """Select a model, or open a model's versions at one version ("dogcat-model@2")."""
        name, _, version = key.partition("@")
        if version:
            self.app.push_screen(VersionsScreen(name, select=int(version)))
            return True
        if name not in self.table.shown_keys:
            return False
        self.table.move_cursor(row=self.table.shown_keys.index(name))
        return True


# --- the versions of one model -----------------------------------------------------


class VersionsScreen(RegisterFlow, DeployFlow, BaseScreen):
    POLL_SECONDS = 5.0
    MUTATING = frozenset({"promote", "new", "deploy"})

    BINDINGS = [
        Binding("s", "promote('staging')", "Staging", id="models.promote_staging"),
        Binding("P", "promote('production')", "Production", id="models.promote_production"),
        Binding("m", "mark", "Mark", id="models.mark"),
        Binding("v", "compare", "Compare", id="models.compare"),
        Binding("l", "lineage", "Lineage", id="models.lineage"),
        Binding("d", "deploy", "Deploy", id="models.deploy"),
        Binding("n", "new", "Register", id="models.register"),
    ]

    def __init__(self, model: str, select: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.TITLE = f"Models › {model}"
        self.marked: int | None = None
        self.versions: dict[str, ModelVersion] = {}
        self._select = select

    def compose_body(self) -> ComposeResult:
        yield ResourceTable.of(render.VERSION_COLUMNS, title=f"Versions of {self.model}", id="versions")
        yield ResourceTable.of(render.PROMOTION_COLUMNS, title="Promotion history", id="history", classes="short")

    @property
    def table(self) -> ResourceTable:
        return self.query_one("#versions", ResourceTable)

    @property
    def selected(self) -> ModelVersion | None:
        key = self.table.selected_key
        return self.versions.get(key) if key else None

    def fetch(self) -> tuple[list[ModelVersion], list[Promotion]]:
        registry = self.platform.registry
        return registry.list_versions(self.model), registry.history(self.model)

    def show(self, data: tuple[list[ModelVersion], list[Promotion]]) -> None:
        versions, history = data
        self.versions = {model_ref(v.model, v.version): v for v in versions}
        self.table.update_rows(rendered(
            render.VERSION_COLUMNS, sorted(versions, key=lambda v: -v.version), key=lambda v: model_ref(v.model, v.version),
            styled={"version": lambda v, cell: cell + (" *" if v.version == self.marked else "")}))
        number = {id(p): str(i) for i, p in enumerate(history)}  # a promotion's place in the history is its key
        self.query_one("#history", ResourceTable).update_rows(
            rendered(render.PROMOTION_COLUMNS, list(reversed(history)), key=lambda p: number[id(p)]))
        if self._select is not None:
            self.reveal(model_ref(self.model, self._select))
            self._select = None
        self.state("" if versions else f"{self.model} has no versions yet: press n to register one.")

    def reveal(self, key: str) -> bool:
        """Select a version ("dogcat-model@2"); another model's version opens that model's versions."""
        name, _, version = key.partition("@")
        if name != self.model:
            self.dismiss()
            self.app.push_screen(VersionsScreen(name, select=int(version)))
            return True
        if key not in self.table.shown_keys:
            if self._select is None:  # not loaded yet: show() selects it when the rows arrive
                self._select = int(version)
            return True
        self.table.move_cursor(row=self.table.shown_keys.index(key))
        self.table.focus()
        return True

    # -- actions -------------------------------------------------------------------

    def action_promote(self, alias: str) -> None:
        version = self.selected
        if version is None:
            self.notify("Select a version to promote first.", severity="warning")
            return
        self.call(registry.promote, self.platform, self.model, version.version, alias, then=self._promoted)

    def _promoted(self, promotion: Promotion) -> None:
        self.notify(registry.promoted(promotion))
        self.reload()

    def action_mark(self) -> None:
        version = self.selected
        if version is None:
            return
        self.marked = None if self.marked == version.version else version.version
        self.notify(
            f"Marked {version_tag(version.version)}: select another version and press v to compare."
            if self.marked
            else f"Unmarked {version_tag(version.version)}."
        )
        self.reload()

    def action_compare(self) -> None:
        version = self.selected
        if version is None or self.marked is None:
            self.notify("Mark a version with m first, then select another one and press v.", severity="warning")
            return
        if version.version == self.marked:
            self.notify("Select a version other than the marked one to compare with it.", severity="warning")
            return
        marked = self.versions.get(model_ref(self.model, self.marked))
        if marked is None:
            self.notify(f"Version {self.marked} is not there any more.", severity="warning")
            return
        self.app.push_screen(CompareDialog(marked, version))

    def action_lineage(self) -> None:
        version = self.selected
        if version is not None:
            self.call(lineage_of, self.platform, None, version, then=self._show_lineage)

    def _show_lineage(self, dialog: LineageDialog) -> None:
        self.ask(dialog, lambda link: follow(self.app, link))

    def action_new(self) -> None:
        self.start_register(self.model)

    def action_deploy(self) -> None:
        """The deploy dialog with this version chosen; the deployment then shows on screen 5."""
        version = self.selected
        if version is None:
            self.notify("Select a version to deploy first.", severity="warning")
            return
        self.start_deploy(DEPLOYMENT, self.model, str(version.version),
                          then=lambda _: self.notify("Press 5 to follow it on the Deployments screen."))
