"""The flows two screens share, each a mixin of a BaseScreen: register a checkpoint, deploy a version.

- `RegisterFlow.start_register(model)`: the experiments that have checkpoints
  (`actions.registry.register_choices`), the register dialog, `actions.registry.register`,
  its sentence. Models and a model's Versions both offer it (`n`).
- `DeployFlow.start_deploy(name, model, ref, then)`: every model's versions
  (`actions.serving.choices`), the deploy dialog, then `actions.serving.deploy`, which
  makes a new deployment, updates one that serves another version, or leaves alone one
  that serves this version already, as the CLI does. Deployments (`n`) and a model's
  Versions (`d`) both offer it.

Each runs the platform calls in thread workers (`BaseScreen.call`) and says what happened
in one notification; the screens import this module, not each other.
"""

from __future__ import annotations

from collections.abc import Callable

from dlptui.actions import registry, serving
from dlptui.actions.defaults import DEPLOYMENT
from dlptui.platform.model import ModelVersion
from dlptui.text import model_ref
from dlptui.tui.dialogs.deploy import DeployDialog, Target
from dlptui.tui.dialogs.register import Registration, RegisterDialog

NO_VERSIONS = "The registry has no model versions yet; register one on the Models screen (4)."


class RegisterFlow:
    """`n` on the Models and Versions screens: pick an experiment's checkpoint, register it, say so."""

    def start_register(self, model: str, experiment_id: str | None = None) -> None:
        """With `experiment_id` (the live view of a search): that experiment only, its trials a choice, the best first."""
        if experiment_id is None:
            self.call(registry.register_choices, self.platform, then=lambda choices: self._ask_register(model, choices))
            return

        def gather():
            choices = [c for c in registry.register_choices(self.platform) if c[0].id == experiment_id]
            trials = self.platform.training.list_trials(experiment_id)
            best = registry.best_trial(self.platform, experiment_id)
            return choices, trials, best.id if best else None

        self.call(gather, then=lambda found: self._ask_register(model, found[0], found[1], found[2]))

    def _ask_register(self, model: str, choices, trials=None, best_trial=None) -> None:
        if not choices:
            self.notify("No experiment has a checkpoint yet; train one on the Experiments screen (3) first.",
                        severity="warning")
            return

        def chosen(reg: Registration) -> None:
            self.call(registry.register, self.platform, reg.model, reg.experiment_id, reg.checkpoint_uuid, "",
                      reg.trial_id, then=self._registered)

        self.ask(RegisterDialog(model, choices, trials if trials and len(trials) > 1 else None, best_trial), chosen)

    def _registered(self, version: ModelVersion) -> None:
        self.notify(registry.registered(version))
        self.reload()


class DeployFlow:
    """The deploy dialog over every model's versions, then `actions.serving.deploy`."""

    def start_deploy(self, name: str = DEPLOYMENT, model: str | None = None, ref: str | None = None,
                     then: Callable[[serving.Outcome], None] | None = None) -> None:
        def ask(choices: serving.Choices) -> None:
            if not choices:
                self.notify(NO_VERSIONS, severity="warning")
            else:
                self.ask(DeployDialog(choices, name, model, ref), chosen)

        def chosen(target: Target) -> None:
            self.notify(f"Deploying {model_ref(target.model, target.ref)} as {target.name}...")
            self.call(serving.deploy, self.platform, target.name, target.model, target.ref, then=done)

        def done(outcome: serving.Outcome) -> None:
            self.notify(outcome.sentence())
            if then is not None:
                then(outcome)

        self.call(serving.choices, self.platform, then=ask)
