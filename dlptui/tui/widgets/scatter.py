"""A scatter plot drawn in braille (2x4 dots a cell): a metric against a hyperparameter, one dot per trial.

    Static(scatter_text(xs, ys, width=40, height=10, log_x=True, highlight=best_index))

Pure text (a rich Text), so a dialog shows it in a Static and a test reads it. A log axis is used
for a hyperparameter that spans two decades or more (a learning rate); a categorical one is
placed at evenly spaced positions, labelled below.
"""

from __future__ import annotations

import math

from rich.text import Text

DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
LABEL = 9


def _fmt(v: float) -> str:
    return f"{v:.3g}"


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
                 x_name: str = "", y_name: str = "") -> Text:
    """The plot: y labels at the left, one braille dot per (x, y), the `highlight` one in bold green."""
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
        label = _fmt(y1) if r == 0 else _fmt(y0) if r == height - 1 else ""
        out.append((label.rjust(LABEL - 1) + "┤") if label else " " * (LABEL - 1) + "│", style="dim")
        for c in range(width):
            ch = chr(0x2800 + cells[r][c]) if cells[r][c] else " "
            out.append(ch, style="bold green" if owner[r][c] == highlight and highlight is not None and cells[r][c] else "dodger_blue1")
        out.append("\n")
    if categories:
        axis = "  ".join(categories)
    else:
        left, right = (f"1e{x0:.2g}", f"1e{x1:.2g}") if log_x else (_fmt(x0), _fmt(x1))
        axis = left + right.rjust(max(1, width - len(left)))
    out.append(" " * LABEL + axis, style="dim")
    if x_name:
        out.append(f"\n{' ' * LABEL}{x_name}{' (log scale)' if log_x else ''}", style="bold")
    return out
