"""Models: the registry's models; Enter shows a model's versions and its promotion history.

On the versions: `s` / `p` move the staging / production alias to the selected version
(the history under the table grows by one line), `m` marks a version and `c` compares
the marked one with the selected one, `l` opens the lineage panel, `d` deploys the
selected version (the Deployments screen's dialog), `n` registers a checkpoint of an
experiment as a new version (on either screen).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Select, Static

from dlptui.errors import InvalidInput
from dlptui.platform.model import Checkpoint, Experiment, Model, ModelVersion, Promotion
from dlptui.tui.format import human_time
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.widgets.compare import CompareScreen
from dlptui.tui.widgets.form import FormDialog, field
from dlptui.tui.widgets.lineage import LineagePanel, follow, lineage_of
from dlptui.tui.widgets.resource_table import ResourceTable

DEFAULT_MODEL = "dogcat-model"
BEST = "best"  # the checkpoint choice that lets the registry pick the experiment's best


def metric(metrics: dict[str, float], *names: str) -> str:
    for name in names:
        if name in metrics:
            return f"{metrics[name]:.4f}"
    return "-"


def accuracy(metrics: dict[str, float]) -> str:
    return metric(metrics, "validation_accuracy", "accuracy", "val_accuracy")


def loss(metrics: dict[str, float]) -> str:
    return metric(metrics, "validation_loss", "val_loss", "loss")


def version_key(model: str, version: int) -> str:
    return f"{model}@{version}"


# --- register ------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    model: str
    experiment_id: str
    checkpoint_uuid: str | None  # None: the experiment's best


def checkpoint_label(c: Checkpoint) -> str:
    return f"batch {c.batch}  accuracy {accuracy(c.metrics)}  loss {loss(c.metrics)}  {c.uuid[:8]}"


class RegisterDialog(FormDialog):
    """Model name, an experiment, and one of its checkpoints or its best."""

    def __init__(self, model: str, choices: list[tuple[Experiment, list[Checkpoint]]]) -> None:
        super().__init__("Register a checkpoint as a new model version", ok="Register")
        self.model = model
        self.choices = {e.id: (e, cps) for e, cps in choices}

    def compose_fields(self) -> ComposeResult:
        yield from field("model", Input(self.model, id="model"))
        experiments = [(f"{e.id}  {e.name}  ({e.state.value}, {len(c)} checkpoints)", e.id) for e, c in self.choices.values()]
        yield from field("experiment", Select(experiments, value=experiments[0][1], allow_blank=False, id="experiment"))
        yield from field("checkpoint", Select(self._checkpoints(experiments[0][1]), allow_blank=False, id="checkpoint"))

    def _checkpoints(self, experiment_id: str) -> list[tuple[str, str]]:
        _, checkpoints = self.choices[experiment_id]
        return [("its best checkpoint (highest validation accuracy)", BEST)] + [
            (checkpoint_label(c), c.uuid) for c in sorted(checkpoints, key=lambda c: c.batch)
        ]

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "experiment" and event.value in self.choices:
            self.query_one("#checkpoint", Select).set_options(self._checkpoints(str(event.value)))

    def result(self) -> Registration:
        model = self.query_one("#model", Input).value.strip()
        if not model:
            raise InvalidInput("Give the model a name, such as dogcat-model.")
        checkpoint = self.query_one("#checkpoint", Select).value
        return Registration(
            model=model,
            experiment_id=str(self.query_one("#experiment", Select).value),
            checkpoint_uuid=None if checkpoint in (BEST, Select.NULL) else str(checkpoint),
        )


class RegisterMixin:
    """`n` on both screens: load the experiments with checkpoints, ask, register, show."""

    def start_register(self: BaseScreen, model: str) -> None:
        self.call(self._register_choices, then=lambda choices: self._ask_register(model, choices))

    def _register_choices(self: BaseScreen) -> list[tuple[Experiment, list[Checkpoint]]]:
        training = self.platform.training
        found = []
        for experiment in training.list_experiments():
            checkpoints = training.checkpoints(experiment.id)
            if checkpoints:
                found.append((experiment, checkpoints))
        return found

    def _ask_register(self: BaseScreen, model: str, choices) -> None:
        if not choices:
            self.notify(
                "No experiment has a checkpoint yet; train one on the Experiments screen (3) first.",
                severity="warning",
            )
            return

        def chosen(reg: Registration | None) -> None:
            if reg is not None:
                self.call(
                    self.platform.registry.register, reg.model, reg.experiment_id, reg.checkpoint_uuid,
                    then=self._registered,
                )

        self.app.push_screen(RegisterDialog(model, choices), chosen)

    def _registered(self: BaseScreen, version: ModelVersion) -> None:
        self.notify(f"Registered {version} from checkpoint {version.checkpoint_uuid[:8]}.")
        self.reload()


# --- the models --------------------------------------------------------------------------


class ModelsScreen(RegisterMixin, BaseScreen):
    TITLE = "Models"
    POLL_SECONDS = 5.0
    MUTATING = frozenset({"register"})

    BINDINGS = [
        Binding("enter", "open", "Versions", id="models.open"),
        Binding("n", "register", "Register", id="models.register"),
    ]

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(
            [
                ("name", "NAME"),
                ("versions", "VERSIONS"),
                ("staging", "STAGING"),
                ("production", "PRODUCTION"),
                ("created", "CREATED"),
                ("description", "DESCRIPTION"),
            ],
            id="models",
        )

    @property
    def table(self) -> ResourceTable:
        return self.query_one("#models", ResourceTable)

    def fetch(self) -> list[Model]:
        return self.platform.registry.list_models()

    def show(self, models: list[Model]) -> None:
        self.table.update_rows(
            (
                m.name,
                (
                    m.name,
                    str(m.versions),
                    _alias(m.aliases.get("staging")),
                    _alias(m.aliases.get("production")),
                    human_time(m.created),
                    m.description,
                ),
            )
            for m in models
        )
        self.state("" if models else "No models yet: press n to register a checkpoint of an experiment as dogcat-model.")

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        name = self.table.selected_key
        if name is not None:
            self.app.push_screen(VersionsScreen(name))

    def action_register(self) -> None:
        self.start_register(self.table.selected_key or DEFAULT_MODEL)

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


def _alias(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


# --- the versions of one model -----------------------------------------------------


class VersionsScreen(RegisterMixin, BaseScreen):
    POLL_SECONDS = 5.0
    MUTATING = frozenset({"promote", "register", "deploy"})

    BINDINGS = [
        Binding("s", "promote('staging')", "Staging", id="models.promote_staging"),
        Binding("p", "promote('production')", "Production", id="models.promote_production"),
        Binding("m", "mark", "Mark", id="models.mark"),
        Binding("c", "compare", "Compare", id="models.compare"),
        Binding("l", "lineage", "Lineage", id="models.lineage"),
        Binding("d", "deploy", "Deploy", id="models.deploy"),
        Binding("n", "register", "Register", id="models.register"),
    ]

    def __init__(self, model: str, select: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.TITLE = f"Models › {model}"
        self.marked: int | None = None
        self.versions: dict[str, ModelVersion] = {}
        self._select = select

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(
            [
                ("version", "VERSION"),
                ("aliases", "ALIASES"),
                ("accuracy", "ACCURACY"),
                ("loss", "VAL LOSS"),
                ("checkpoint", "CHECKPOINT"),
                ("experiment", "EXPERIMENT"),
                ("data", "DATA COMMIT"),
                ("created", "CREATED"),
            ],
            id="versions",
        )
        yield Static("Promotion history", classes="section-title")
        yield ResourceTable(
            [("time", "TIME"), ("alias", "ALIAS"), ("from", "FROM"), ("to", "TO"), ("who", "WHO")],
            id="history",
            classes="short",
        )

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
        self.versions = {version_key(v.model, v.version): v for v in versions}
        self.table.update_rows(
            (
                version_key(v.model, v.version),
                (
                    f"v{v.version}" + (" *" if v.version == self.marked else ""),
                    ", ".join(v.aliases) or "-",
                    accuracy(v.metrics),
                    loss(v.metrics),
                    v.checkpoint_uuid[:8],
                    v.experiment_id or "-",
                    f"{v.data_repo}@{v.data_commit[:8]}" if v.data_repo and v.data_commit else "-",
                    human_time(v.created),
                ),
            )
            for v in sorted(versions, key=lambda v: -v.version)
        )
        self.query_one("#history", ResourceTable).update_rows(
            (
                str(i),
                (
                    human_time(p.time),
                    p.alias,
                    _alias(p.from_version),
                    f"v{p.to_version}",
                    p.who,
                ),
            )
            for i, p in reversed(list(enumerate(history)))
        )
        if self._select is not None:
            self.reveal(version_key(self.model, self._select))
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
        self.call(self.platform.registry.promote, self.model, version.version, alias, then=self._promoted)

    def _promoted(self, promotion: Promotion) -> None:
        before = f" (was {_alias(promotion.from_version)})" if promotion.from_version else ""
        self.notify(f"{promotion.alias} of {promotion.model} is now v{promotion.to_version}{before}.")
        self.reload()

    def action_mark(self) -> None:
        version = self.selected
        if version is None:
            return
        self.marked = None if self.marked == version.version else version.version
        self.notify(
            f"Marked v{version.version}: select another version and press c to compare."
            if self.marked
            else f"Unmarked v{version.version}."
        )
        self.reload()

    def action_compare(self) -> None:
        version = self.selected
        if version is None or self.marked is None:
            self.notify("Mark a version with m first, then select another one and press c.", severity="warning")
            return
        if version.version == self.marked:
            self.notify("Select a version other than the marked one to compare with it.", severity="warning")
            return
        marked = self.versions.get(version_key(self.model, self.marked))
        if marked is None:
            self.notify(f"Version {self.marked} is not there any more.", severity="warning")
            return
        self.app.push_screen(CompareScreen(marked, version))

    def action_lineage(self) -> None:
        version = self.selected
        if version is None:
            return
        self.call(lineage_of, self.platform, None, version, then=self._show_lineage)

    def _show_lineage(self, panel: LineagePanel) -> None:
        self.app.push_screen(panel, lambda link: follow(self.app, link) if link else None)

    def action_register(self) -> None:
        self.start_register(self.model)

    def action_deploy(self) -> None:
        """The deploy dialog with this version chosen; the deployment then shows on screen 5."""
        from dlptui.tui.screens.deployments import DeployDialog, deploy, read_choices

        version = self.selected
        if version is None:
            self.notify("Select a version to deploy first.", severity="warning")
            return

        def deployed(d) -> None:
            self.notify(f"{d.name} is {d.state.value} with {d.model}@{d.version}: press 5 to follow it.")

        def chosen(target) -> None:
            if target is not None:
                self.notify(f"Deploying {target.model}@{target.ref} as {target.name}...")
                self.call(deploy, self.platform, target, then=deployed)

        def ask(choices) -> None:
            self.app.push_screen(DeployDialog(choices, model=self.model, ref=str(version.version)), chosen)

        self.call(read_choices, self.platform, then=ask)
