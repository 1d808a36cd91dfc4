"""Register a checkpoint as a new model version: the model's name, an experiment, one of its checkpoints.

`RegisterDialog(model, choices)` (choices: `actions.registry.register_choices(platform)`)
dismisses with a `Registration`, or None on Esc. "Its best checkpoint" leaves the choice to
the registry (`actions.registry.BEST`). With `trials` (one experiment's, from its live view) the
dialog offers the trial too, the best one first: its best checkpoint is registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input, Select

from dlptui import text
from dlptui.actions.defaults import MODEL
from dlptui.actions.registry import BEST
from dlptui.errors import InvalidInput
from dlptui.platform.metrics import accuracy, loss
from dlptui.platform.model import Checkpoint, Experiment
from dlptui.render import training as render
from dlptui.tui.dialogs.base import Dialog, field

BEST_CHOICE = "best"  # the Select value of "its best checkpoint"


@dataclass(frozen=True)
class Registration:
    model: str
    experiment_id: str
    checkpoint_uuid: str | None  # None (BEST): the experiment's best
    trial_id: str | None = None  # with BEST: that trial's best checkpoint


def checkpoint_label(c: Checkpoint) -> str:
    return (f"batch {c.batch}  accuracy {text.metric('accuracy', accuracy(c.metrics))}  "
            f"loss {text.metric('validation_loss', loss(c.metrics))}  {text.uuid(c.uuid)}")


class RegisterDialog(Dialog["Registration | None"]):
    """Model name, an experiment, and one of its checkpoints or its best."""

    OK = ("ok", "Register")

    def __init__(self, model: str, choices: list[tuple[Experiment, list[Checkpoint]]], trials: list | None = None,
                 best_trial: str | None = None) -> None:
        super().__init__("Register a checkpoint as a new model version")
        self.model = model
        self.choices = {e.id: (e, cps) for e, cps in choices}
        self.trials = trials or []
        self.best_trial = best_trial

    def compose_body(self) -> ComposeResult:
        yield from field("model", Input(self.model, placeholder=MODEL, id="model"))
        experiments = [(f"{e.id}  {e.name}  ({e.state.value}, {text.plural(len(c), 'checkpoint')})", e.id)
                       for e, c in self.choices.values()]
        yield from field("experiment", Select(experiments, value=experiments[0][1], allow_blank=False, id="experiment"))
        if self.trials:
            ordered = sorted(self.trials, key=lambda t: (t.id != self.best_trial, int(t.id) if t.id.isdigit() else 0))
            options = [(f"trial {t.id}{'  (the best)' if t.id == self.best_trial else ''}  best {text.number(t.best_metric)}  "
                        + render.hparams(t.hparams), t.id)
                       for t in ordered if t.best_checkpoint]
            if options:
                yield from field("trial", Select(options, value=options[0][1], allow_blank=False, id="trial"))
        yield from field("checkpoint", Select(self._checkpoints(experiments[0][1]), allow_blank=False, id="checkpoint"))

    def _checkpoints(self, experiment_id: str) -> list[tuple[str, str]]:
        _, checkpoints = self.choices[experiment_id]
        label = "the chosen trial's best checkpoint (by the searcher metric)" if self.trials else "its best checkpoint (by the searcher metric)"
        return [(label, BEST_CHOICE)] + [
            (checkpoint_label(c), c.uuid) for c in sorted(checkpoints, key=lambda c: c.batch)
        ]

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "experiment" and event.value in self.choices:
            self.query_one("#checkpoint", Select).set_options(self._checkpoints(str(event.value)))

    def result(self) -> Registration:
        model = self.query_one("#model", Input).value.strip()
        if not model:
            raise InvalidInput(f"Give the model a name, such as {MODEL}.")
        checkpoint = self.query_one("#checkpoint", Select).value
        trial = None
        if self.query("#trial"):
            chosen = self.query_one("#trial", Select).value
            trial = None if chosen is Select.NULL else str(chosen)
        best = checkpoint in (BEST_CHOICE, Select.NULL)
        return Registration(
            model=model,
            experiment_id=str(self.query_one("#experiment", Select).value),
            checkpoint_uuid=BEST if best else str(checkpoint),
            trial_id=trial if best else None,
        )
