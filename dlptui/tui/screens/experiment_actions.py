"""What the experiments list and the live view of one experiment share: the verbs and the state's look.

`ExperimentActions` (mixed into a BaseScreen) pauses, resumes and kills `experiment_id()`;
kill asks first, with "No" focused. `state_text` and `progress_bar` draw an experiment's
state and progress the same way on both screens. Neither screen imports the other.
"""

from __future__ import annotations

from functools import lru_cache

from rich.text import Text

from dlptui.platform.model import Experiment, ExperimentState

STATE_STYLES = {
    ExperimentState.QUEUED: "yellow",
    ExperimentState.RUNNING: "bold green",
    ExperimentState.PAUSED: "yellow",
    ExperimentState.COMPLETED: "blue",
    ExperimentState.ERROR: "bold red",
    ExperimentState.KILLED: "red",
}


def progress_bar(fraction: float, width: int = 12) -> Text:
    """A bar of `width` cells and the percent; the same Text for the same look (never changed in place: a
    list of 5,000 experiments draws a handful of bars)."""
    return _bar(round(fraction * width), width, f" {100 * fraction:3.0f}%")


@lru_cache(maxsize=512)
def _bar(filled: int, width: int, percent: str) -> Text:
    return Text.assemble(("█" * filled, "green"), ("░" * (width - filled), "dim"), percent)


def state_text(state: ExperimentState) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


class ExperimentActions:
    """Pause, resume and kill on `self.experiment_id()`; mixed into a BaseScreen."""

    MUTATING = frozenset({"new", "pause", "resume", "kill"})

    def experiment_id(self) -> str | None:
        raise NotImplementedError

    def _chosen(self) -> str | None:
        chosen = self.experiment_id()
        if chosen is None:
            self.notify("Select an experiment first.", severity="warning")
        return chosen

    def _changed(self, what: str):
        def done(e: Experiment) -> None:
            self.notify(f"Experiment {e.id} {what}: it is {e.state.value} now.")
            self.reload()

        return done

    def action_pause(self) -> None:
        if chosen := self._chosen():
            self.notify(f"Pausing experiment {chosen} at its next checkpoint...")
            self.call(self.platform.training.pause, chosen, then=self._changed("paused"))

    def action_resume(self) -> None:
        if chosen := self._chosen():
            self.call(self.platform.training.resume, chosen, then=self._changed("resumed"))

    def action_kill(self) -> None:
        if chosen := self._chosen():
            self.confirm(
                f"Kill experiment {chosen}? It stops at once; its checkpoints stay.",
                lambda: self.call(self.platform.training.kill, chosen, then=self._changed("killed")),
            )
