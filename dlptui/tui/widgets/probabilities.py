"""One prediction at a glance: the label, a bar per class probability, the latency.

    bars = Probabilities()
    bars.show(prediction)      # a dlptui.platform.model.Prediction
    bars.show_message("Pick a deployment first.")

A prediction that failed (its `error` is set) shows that sentence instead of bars.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dlptui import text as words
from dlptui.platform.model import Prediction
from dlptui.tui.shown import plain, shown

BAR_WIDTH = 30


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A bar of `width` cells, filled in eighths of a cell so close values still differ."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width)


def render_prediction(prediction: Prediction, width: int = BAR_WIDTH) -> Text:
    text = Text()
    if prediction.error:
        text.append(plain(prediction.error), style="bold red")
        return text
    text.append("label  ", style="dim")
    text.append(plain(prediction.label or "-"), style="bold")
    if prediction.version is not None:
        text.append(f"   ({words.version_tag(prediction.version)})", style="dim")
    text.append("\n\n")
    name_width = max((len(name) for name in prediction.probabilities), default=0)
    for name, p in sorted(prediction.probabilities.items(), key=lambda item: -item[1]):
        style = "bold green" if name == prediction.label else "cyan"
        text.append(f"{plain(name):<{name_width}}  ")
        text.append(bar(p, width), style=style)
        text.append(f" {words.percent(p):>6}\n")
    if prediction.latency_ms is not None:
        text.append("\nlatency  ", style="dim")
        text.append(words.latency(prediction.latency_ms))
    return text


class Probabilities(Static):
    """The label, a bar per class and the latency of one prediction."""

    DEFAULT_CSS = """
    Probabilities { height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self.prediction: Prediction | None = None

    def show(self, prediction: Prediction) -> None:
        self.prediction = prediction
        self.update(render_prediction(prediction))

    def show_message(self, message: str) -> None:
        self.prediction = None
        self.update(shown(message, style="dim"))
