"""Deploy a model version, or move a deployment to another one, or give it a canary.

    DeployDialog(choices, name="dogcat-deploy", model=None, ref=None)  -> Target(name, model, ref)
    VersionDialog(deployment, choices, canary=False | True)          -> Target(name, model, ref, canary)

`choices` is `actions.serving.choices(platform)`: every model with versions, newest first.
The versions offered are the model's aliases first (they follow promotions), then `latest`,
then every version with its accuracy (the metric policy of `platform/metrics.py`). The screen
hands the Target to `actions.serving` (deploy, switch, set_canary), which decides whether a
deploy is a new deployment, an update or nothing; a canary share is parsed there too.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input, Select

from dlptui import text
from dlptui.actions.defaults import CANARY_TRAFFIC, DEPLOYMENT, MODEL
from dlptui.actions.serving import Choices, parse_traffic
from dlptui.errors import InvalidInput
from dlptui.platform.model import Deployment, Model, ModelVersion
from dlptui.render import registry as render
from dlptui.tui.dialogs.base import Dialog, field


@dataclass(frozen=True)
class Target:
    name: str  # the deployment
    model: str
    ref: str  # a version number or an alias
    canary: int | None = None  # percent for a canary (0 removes it); None: the primary version


def version_options(model: Model, versions: list[ModelVersion]) -> list[tuple[str, str]]:
    """Aliases first (they follow promotions), then `latest`, then every version, newest first."""
    options = [(f"{alias}  (now {text.version_tag(number)})", alias) for alias, number in sorted(model.aliases.items())]
    if versions:
        options.append((f"latest  (now {text.version_tag(versions[0].version)})", "latest"))
    options += [(render.version_choice(v), str(v.version)) for v in versions]
    return options


class DeployDialog(Dialog["Target | None"]):
    """A model, one of its versions or aliases (preselected if given), and the deployment's name."""

    OK = ("ok", "Deploy")

    def __init__(self, choices: Choices, name: str = DEPLOYMENT, model: str | None = None, ref: str | None = None) -> None:
        super().__init__("Deploy a model version (a name that serves already is updated)")
        self.choices = choices
        self.default_name = name
        self.model = model if model in choices else (MODEL if MODEL in choices else sorted(choices)[0])
        self.ref = ref

    def compose_body(self) -> ComposeResult:
        options = version_options(*self.choices[self.model])
        ref = self.ref if self.ref in {value for _, value in options} else options[0][1]
        models = [(m, m) for m in sorted(self.choices)]
        yield from field("model", Select(models, value=self.model, allow_blank=False, id="model"))
        yield from field("version or alias", Select(options, value=ref, allow_blank=False, id="ref"))
        yield from field("deployment name", Input(self.default_name, placeholder=DEPLOYMENT, id="name"))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "model" and event.value in self.choices and event.value != self.model:
            self.model = str(event.value)
            self.query_one("#ref", Select).set_options(version_options(*self.choices[self.model]))

    def result(self) -> Target:
        name = self.query_one("#name", Input).value.strip()
        if not name:
            raise InvalidInput(f"Give the deployment a name, such as {DEPLOYMENT}.")
        return Target(name, str(self.query_one("#model", Select).value), str(self.query_one("#ref", Select).value))


class VersionDialog(Dialog["Target | None"]):
    """Another version of the deployment's model; with `canary`, also the percent of requests it gets."""

    def __init__(self, deployment: Deployment, choices: Choices, canary: bool) -> None:
        verb = "Set a canary of" if canary else "Switch"
        super().__init__(f"{verb} {deployment.name} (serving {text.model_ref(deployment.model, deployment.version)})",
                         ok="Set canary" if canary else "Switch")
        self.deployment = deployment
        self.choices = choices
        self.canary = canary

    def compose_body(self) -> ComposeResult:
        options = version_options(*self.choices[self.deployment.model])
        others = [value for _, value in options if value.isdigit() and value != str(self.deployment.version)]
        value = others[0] if others else options[0][1]
        if self.canary and self.deployment.canary_version is not None:
            value = str(self.deployment.canary_version)  # the usual change: its share
        yield from field("version or alias", Select(options, value=value, allow_blank=False, id="ref"))
        if self.canary:
            share = str(self.deployment.canary_traffic or CANARY_TRAFFIC)
            yield from field("percent of requests for it (0 removes the canary)", Input(share, id="traffic"))

    def result(self) -> Target:
        ref = str(self.query_one("#ref", Select).value)
        share = parse_traffic(self.query_one("#traffic", Input).value) if self.canary else None
        return Target(self.deployment.name, self.deployment.model, ref, share)
