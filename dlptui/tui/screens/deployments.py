"""Deployments: what serves which model version, its state and endpoint, and its server's log.

`n` deploys a model version or alias under a name (default dogcat-deploy), `u` switches
the selected deployment to another version, `c` sets a canary (a version and the percent
of requests it gets; 0 removes it), `d` undeploys after a confirmation, `l` opens the
lineage panel. The log under the table follows the selected deployment on every poll.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Log, Select, Static

from dlptui.errors import InvalidInput, PlatformError
from dlptui.platform.model import Deployment, DeploymentState, Model, ModelVersion
from dlptui.tui.format import since
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.screens.models import DEFAULT_MODEL, accuracy
from dlptui.tui.widgets.form import FormDialog, field
from dlptui.tui.widgets.lineage import LineagePanel, follow, lineage_of
from dlptui.tui.widgets.resource_table import ResourceTable

DEFAULT_DEPLOYMENT = "dogcat-deploy"
LOG_LINES = 200
STATE_STYLE = {
    DeploymentState.AVAILABLE: "green",
    DeploymentState.STARTING: "yellow",
    DeploymentState.FAILED: "bold red",
    DeploymentState.STOPPED: "dim",
}

# a model's choices: (Model, its versions newest first)
Choices = dict[str, tuple[Model, list[ModelVersion]]]


def version_options(model: Model, versions: list[ModelVersion]) -> list[tuple[str, str]]:
    """Aliases first (they follow promotions), then every version, newest first."""
    options = [(f"{alias}  (now v{number})", alias) for alias, number in sorted(model.aliases.items())]
    if versions:
        options.append((f"latest  (now v{versions[0].version})", "latest"))
    options += [(f"v{v.version}  accuracy {accuracy(v.metrics)}  {v.checkpoint_uuid[:8]}", str(v.version)) for v in versions]
    return options


def read_choices(platform) -> Choices:
    """Runs in a thread: every model with its versions."""
    registry = platform.registry
    found: Choices = {}
    for model in registry.list_models():
        versions = sorted(registry.list_versions(model.name), key=lambda v: -v.version)
        if versions:
            found[model.name] = (model, versions)
    return found


@dataclass(frozen=True)
class Target:
    name: str  # the deployment
    model: str
    ref: str  # a version number or an alias
    canary: int | None = None  # percent for a canary (0 removes it); None: the primary version


def deploy(platform, target: Target) -> Deployment:
    """Runs in a thread: resolve the version or alias, then deploy it under the target's name."""
    version = platform.registry.get_version(target.model, target.ref)
    return platform.serving.deploy(target.name, version)


class DeployDialog(FormDialog):
    """A model, one of its versions or aliases (preselected if given), and the deployment's name."""

    def __init__(self, choices: Choices, name: str = DEFAULT_DEPLOYMENT, model: str | None = None,
                 ref: str | None = None) -> None:
        super().__init__("Deploy a model version", ok="Deploy")
        self.choices = choices
        self.default_name = name
        self.model = model if model in choices else (DEFAULT_MODEL if DEFAULT_MODEL in choices else sorted(choices)[0])
        self.ref = ref

    def compose_fields(self) -> ComposeResult:
        options = version_options(*self.choices[self.model])
        ref = self.ref if self.ref in {value for _, value in options} else options[0][1]
        models = [(m, m) for m in sorted(self.choices)]
        yield from field("model", Select(models, value=self.model, allow_blank=False, id="model"))
        yield from field("version or alias", Select(options, value=ref, allow_blank=False, id="ref"))
        yield from field("deployment name", Input(self.default_name, id="name"))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "model" and event.value in self.choices and event.value != self.model:
            self.model = str(event.value)
            self.query_one("#ref", Select).set_options(version_options(*self.choices[self.model]))

    def result(self) -> Target:
        name = self.query_one("#name", Input).value.strip()
        if not name:
            raise InvalidInput(f"Give the deployment a name, such as {DEFAULT_DEPLOYMENT}.")
        return Target(name, str(self.query_one("#model", Select).value), str(self.query_one("#ref", Select).value))


class VersionDialog(FormDialog):
    """Another version of the deployment's model; with `canary`, also the percent of requests it gets."""

    def __init__(self, deployment: Deployment, choices: Choices, canary: bool) -> None:
        verb = "Set a canary of" if canary else "Switch"
        super().__init__(f"{verb} {deployment.name} (serving {deployment.model}@{deployment.version})",
                         ok="Set canary" if canary else "Switch")
        self.deployment = deployment
        self.choices = choices
        self.canary = canary

    def compose_fields(self) -> ComposeResult:
        options = version_options(*self.choices[self.deployment.model])
        others = [value for _, value in options if value.isdigit() and value != str(self.deployment.version)]
        value = others[0] if others else options[0][1]
        if self.canary and self.deployment.canary_version is not None:
            value = str(self.deployment.canary_version)  # the usual change: its share
        yield from field("version or alias", Select(options, value=value, allow_blank=False, id="ref"))
        if self.canary:
            share = str(self.deployment.canary_traffic or 10)
            yield from field("percent of requests for it (0 removes the canary)", Input(share, id="traffic"))

    def result(self) -> Target:
        ref = str(self.query_one("#ref", Select).value)
        share = None
        if self.canary:
            text = self.query_one("#traffic", Input).value.strip()
            if not text.isdigit() or not 0 <= int(text) <= 100:
                raise InvalidInput(f"The canary share must be a whole percent from 0 to 100, not {text!r}.")
            share = int(text)
        return Target(self.deployment.name, self.deployment.model, ref, share)


class DeploymentsScreen(BaseScreen):
    TITLE = "Deployments"
    POLL_SECONDS = 2.0
    MUTATING = frozenset({"deploy", "switch", "canary", "undeploy"})

    BINDINGS = [
        Binding("n", "deploy", "Deploy", id="deployments.deploy"),
        Binding("u", "switch", "Switch version", id="deployments.switch"),
        Binding("c", "canary", "Canary", id="deployments.canary"),
        Binding("d", "undeploy", "Undeploy", id="deployments.undeploy"),
        Binding("l", "lineage", "Lineage", id="deployments.lineage"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.deployments: dict[str, Deployment] = {}
        self.log_of: str | None = None  # the deployment whose log is shown (read by fetch's thread)
        self._log_shown: tuple[str | None, list[str]] = (None, [])

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(
            [
                ("name", "NAME"),
                ("model", "MODEL@VERSION"),
                ("replicas", "REPLICAS"),
                ("state", "STATE"),
                ("endpoint", "ENDPOINT"),
                ("canary", "CANARY"),
                ("age", "AGE"),
            ],
            id="deployments",
            classes="short",
        )
        yield Static("Server log", classes="section-title", id="log-title")
        yield Log(id="log", max_lines=LOG_LINES)

    @property
    def table(self) -> ResourceTable:
        return self.query_one("#deployments", ResourceTable)

    @property
    def selected(self) -> Deployment | None:
        key = self.table.selected_key
        return self.deployments.get(key) if key else None

    # -- polling -------------------------------------------------------------------

    def fetch(self) -> tuple[list[Deployment], str | None, list[str]]:
        serving = self.platform.serving
        deployments = serving.list_deployments()
        names = [d.name for d in deployments]
        name = self.log_of if self.log_of in names else (names[0] if names else None)
        try:
            lines = serving.logs(name, LOG_LINES) if name else []
        except PlatformError as e:  # no pod or no log yet (a cluster): the list still shows, the log says why
            lines = [str(e)]
        return deployments, name, lines

    def show(self, data: tuple[list[Deployment], str | None, list[str]]) -> None:
        deployments, name, lines = data
        self.deployments = {d.name: d for d in deployments}
        self.table.update_rows((d.name, self._cells(d)) for d in deployments)
        if self.log_of != self.table.selected_key:  # the cursor moved while the poll ran
            self.log_of = self.table.selected_key
        if name == self.log_of:
            self._show_log(name, lines)
        self._show_state()

    @staticmethod
    def _cells(d: Deployment) -> tuple:
        canary = f"v{d.canary_version} {d.canary_traffic}%" if d.canary_version is not None else "-"
        return (
            d.name,
            f"{d.model}@{d.version}",
            str(d.replicas),
            Text(d.state.value, style=STATE_STYLE.get(d.state, "")),
            d.endpoint or "-",
            canary,
            since(d.created),
        )

    def _show_log(self, name: str | None, lines: list[str]) -> None:
        if (name, lines) == self._log_shown:
            return  # unchanged: leave the log (and where the reader scrolled to) alone
        self._log_shown = (name, lines)
        log = self.query_one("#log", Log)
        self.query_one("#log-title", Static).update(f"Server log of {name}" if name else "Server log")
        log.clear()
        log.write_lines(lines)

    def _show_state(self) -> None:
        d = self.selected
        if not self.deployments:
            self.state("Nothing is deployed: press n to deploy a model version (dogcat-model as dogcat-deploy).")
        elif d is not None and d.state is not DeploymentState.AVAILABLE and d.detail:
            self.state(f"{d.name} is {d.state.value}: {d.detail}")
        else:
            self.state("")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        if key != self.log_of:
            self.log_of = key
            self._show_state()
            self.reload()

    def reveal(self, key: str) -> bool:
        """Select a deployment by name; False while it is not in the table (yet)."""
        if key not in self.table.shown_keys:
            return False
        self.table.move_cursor(row=self.table.shown_keys.index(key))
        self.table.focus()
        return True

    # -- actions -------------------------------------------------------------------

    def _need_selected(self) -> Deployment | None:
        d = self.selected
        if d is None:
            self.notify("Select a deployment first (n deploys one).", severity="warning")
        return d

    def _with_choices(self, then) -> None:
        def loaded(choices: Choices) -> None:
            if not choices:
                self.notify("The registry has no model versions yet; register one on the Models screen (4).",
                            severity="warning")
            else:
                then(choices)

        self.call(read_choices, self.platform, then=loaded)

    def action_deploy(self) -> None:
        taken = set(self.deployments)
        name = DEFAULT_DEPLOYMENT if DEFAULT_DEPLOYMENT not in taken else ""
        self._with_choices(lambda choices: self.app.push_screen(DeployDialog(choices, name), self._deploy))

    def _deploy(self, target: Target | None) -> None:
        if target is None:
            return

        self.notify(f"Deploying {target.model}@{target.ref} as {target.name}...")
        self.call(deploy, self.platform, target, then=self._changed("deployed"))

    def action_switch(self) -> None:
        d = self._need_selected()
        if d is not None:
            self._ask_version(d, canary=False)

    def action_canary(self) -> None:
        d = self._need_selected()
        if d is not None:
            self._ask_version(d, canary=True)

    def _ask_version(self, d: Deployment, canary: bool) -> None:
        def ask(choices: Choices) -> None:
            if d.model not in choices:
                self.notify(f"The registry has no versions of {d.model}.", severity="warning")
            else:
                self.app.push_screen(VersionDialog(d, choices, canary), self._set_version)

        self._with_choices(ask)

    def _set_version(self, target: Target | None) -> None:
        if target is None:
            return
        share = target.canary

        def change() -> Deployment:
            serving = self.platform.serving
            if share == 0:
                return serving.set_canary(target.name, None, 0)
            version = self.platform.registry.get_version(target.model, target.ref)
            if share is None:
                return serving.update(target.name, version)
            return serving.set_canary(target.name, version, share)

        if share is None:
            self.notify(f"Switching {target.name} to {target.model}@{target.ref}...")
        elif share:
            self.notify(f"Sending {share}% of {target.name}'s requests to {target.model}@{target.ref}...")
        else:
            self.notify(f"Removing the canary of {target.name}...")
        self.call(change, then=self._changed("updated"))

    def action_undeploy(self) -> None:
        d = self._need_selected()
        if d is None:
            return

        def undeploy() -> None:
            self.call(self.platform.serving.undeploy, d.name, then=lambda _: self._undeployed(d.name))

        self.confirm(f"Undeploy {d.name} ({d.model}@{d.version})? Its endpoint stops answering.", undeploy)

    def _undeployed(self, name: str) -> None:
        self.notify(f"Undeployed {name}.")
        self.reload()

    def _changed(self, verb: str):
        def done(d: Deployment) -> None:
            canary = f", canary v{d.canary_version} at {d.canary_traffic}%" if d.canary_version is not None else ""
            self.notify(f"{d.name} {verb}: {d.model}@{d.version}{canary} ({d.state.value}).")
            self.log_of = d.name
            self.reload()

        return done

    def action_lineage(self) -> None:
        d = self._need_selected()
        if d is not None:
            self.call(lineage_of, self.platform, d.name, None, then=self._show_lineage)

    def _show_lineage(self, panel: LineagePanel) -> None:
        self.app.push_screen(panel, lambda link: follow(self.app, link) if link else None)
