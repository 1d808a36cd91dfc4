"""A scatter plot drawn in braille (2x4 dots a cell): a metric against a hyperparameter, one dot per trial.

    Static(scatter_text(xs, ys, width=40, height=10, log_x=True, highlight=best_index))

Pure text (a rich Text), so a dialog shows it in a Static and a test reads it. A log axis is used
for a hyperparameter that spans two decades or more (a learning rate), its ticks at the powers of
ten inside it (0.0001, 0.001, 0.01: values, never an exponent such as 1e-3.7); a linear axis has
ticks at round steps (1, 2 or 5 times a power of ten); a categorical one is placed at evenly
spaced positions, labelled below.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rich.text import Text

DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
LABEL = 9


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def ticks(lo: float, hi: float, log: bool, most: int = 5) -> list[tuple[float, str]]:
    """(position on the axis, label) of the axis's ticks between `lo` and `hi` (positions in log10 for a log axis)."""
    if log:
        decades = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
        while len(decades) > most:
            decades = decades[::2]
        if len(decades) >= 2:
            return [(float(k), _fmt(10.0 ** k)) for k in decades]
        return [(lo, _fmt(10.0 ** lo)), (hi, _fmt(10.0 ** hi))]
    span = hi - lo
    if span <= 0:
        return [(lo, _fmt(lo))]
    raw = span / max(1, most - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    found = []
    value = first
    while value <= hi + step * 1e-9:
        found.append((value, _fmt(0.0 if abs(value) < step * 1e-9 else value)))
        value += step
    return found if len(found) >= 2 else [(lo, _fmt(lo)), (hi, _fmt(hi))]


def axis(lo: float, hi: float, log: bool, width: int) -> tuple[str, str]:
    """The x axis under a plot `width` cells wide: a rule with a mark at each tick, and the tick labels under their
    marks (a label that would run into the one before is left out)."""
    rule = ["─"] * width
    labels = [" "] * (width + 8)
    end = -2  # the last column a label took
    for position, label in ticks(lo, hi, log):
        column = round((position - lo) / (hi - lo) * (width - 1)) if hi > lo else 0
        column = min(width - 1, max(0, column))
        rule[column] = "┬"
        start = max(0, min(column - len(label) // 2, width - len(label)))
        if start <= end + 1:
            continue
        labels[start:start + len(label)] = label
        end = start + len(label) - 1
    return "".join(rule), "".join(labels).rstrip()


def positions(values: list) -> tuple[list[float], list[str] | None, bool]:
    """x positions for values: numbers as they are (log10 when they span > 2 decades), others by category."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and values:
        positive = all(v > 0 for v in values)
        if positive and max(values) / min(values) >= 100:
            return [math.log10(v) for v in values], None, True
        return [float(v) for v in values], None, False
    categories = sorted({str(v).lower() if isinstance(v, bool) else str(v) for v in values})
    index = {c: i for i, c in enumerate(categories)}
    return [float(index[str(v).lower() if isinstance(v, bool) else str(v)]) for v in values], categories, False


def scatter_text(xs_raw: list, ys: list[float | None], width: int = 40, height: int = 10, highlight: int | None = None,
                 x_name: str = "", y_name: str = "", y_format: Callable[[float], str] = _fmt) -> Text:
    """The plot: y labels at the left (written by `y_format`), one braille dot per (x, y), the `highlight` one in
    bold green, the x axis with its ticks under it."""
    keep = [i for i, y in enumerate(ys) if y is not None and math.isfinite(y)]
    if not keep:
        return Text("no trial has reported the metric yet", style="dim")
    xs, categories, log_x = positions([xs_raw[i] for i in keep])
    yv = [float(ys[i]) for i in keep]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(yv), max(yv)
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    cols, rows = width * 2, height * 4
    cells = [[0] * width for _ in range(height)]
    owner = [[-1] * width for _ in range(height)]
    for n, (x, y) in enumerate(zip(xs, yv)):
        c = round((x - x0) / (x1 - x0) * (cols - 1))
        r = round((y1 - y) / (y1 - y0) * (rows - 1))
        cells[r // 4][c // 2] |= DOT_BITS[r % 4][c % 2]
        if keep[n] == highlight or owner[r // 4][c // 2] == -1:
            owner[r // 4][c // 2] = keep[n]
    out = Text()
    if y_name:
        out.append(f"{y_name}\n", style="bold")
    for r in range(height):
        label = y_format(y1) if r == 0 else y_format(y0) if r == height - 1 else ""
        out.append((label.rjust(LABEL - 1) + "┤") if label else " " * (LABEL - 1) + "│", style="dim")
        for c in range(width):
            ch = chr(0x2800 + cells[r][c]) if cells[r][c] else " "
            out.append(ch, style="bold green" if owner[r][c] == highlight and highlight is not None and cells[r][c] else "dodger_blue1")
        out.append("\n")
    if categories:
        out.append(" " * LABEL + "  ".join(categories), style="dim")
    else:
        rule, labels = axis(x0, x1, log_x, width)
        out.append(" " * (LABEL - 1) + "└" + rule + "\n" + " " * LABEL + labels, style="dim")
    if x_name:
        out.append(f"\n{' ' * LABEL}{x_name}{' (log scale)' if log_x else ''}", style="bold")
    return out
