"""A line chart of metric series drawn in braille (2x4 dots a cell), for live training curves.

    chart = MetricChart("loss")
    chart.add_points("training loss", batches, values)   # appends; repaints once
    chart.emphasize("trial 7 ")                          # the best trial's series bold (a search's overlay)

- Each series keeps a bounded history (`MAX_POINTS`): when full it keeps every other
  point, so a long run keeps the shape of its whole history in bounded memory.
- A redraw downsamples every series to the chart's width first (min and max of each
  dot column, joined to the column before), so its cost depends on the width, not on
  the number of points: 100,000 points draw in a few milliseconds.
- The drawing is cached and redone only when points were added or the size changed.
- It always fits its box: the legend is one line (the emphasized series first, then as many as fit, then
  "+N more"), so the plot and both axes keep their rows whatever the number of series.
- A series of one point (the first validation) is drawn as a marker "●" with its value beside it (for up to
  three such series; a search's many first validations get the marker alone), not as a single braille dot.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget

from dlptui.tui.shown import plain, shown

MAX_POINTS = 200_000
COLORS = ("dodger_blue1", "orange1", "green3", "magenta", "yellow", "cyan")
# the braille bit of the dot at (row 0-3, column 0-1) of a cell
DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint16)
Y_LABEL_WIDTH = 9
SERIES_AT_ONCE = 64  # series drawn in one numpy pass (memory: 64 x the plot's dots)
LABELLED = 3  # single points whose value is written beside their marker (more would write over each other)
MARKER = -2  # in the cell owners: MARKER - i is the marker of series i (-1: no series)


class Series:
    """One named line: x (batches) and y (values), in x order, bounded."""

    def __init__(self, name: str, color: str) -> None:
        self.name = name
        self.color = color
        self.x = np.empty(1024, dtype=np.float64)
        self.y = np.empty(1024, dtype=np.float64)
        self.n = 0

    def add(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        need = self.n + len(xs)
        if need > len(self.x):
            size = min(max(need, 2 * len(self.x)), MAX_POINTS + len(xs))
            self.x = np.resize(self.x, size)
            self.y = np.resize(self.y, size)
        self.x[self.n : need] = xs
        self.y[self.n : need] = ys
        self.n = need
        if self.n > 1 and np.any(np.diff(self.x[max(0, self.n - len(xs) - 1) : self.n]) < 0):
            order = np.argsort(self.x[: self.n], kind="stable")
            self.x[: self.n] = self.x[: self.n][order]
            self.y[: self.n] = self.y[: self.n][order]
        while self.n > MAX_POINTS:  # keep every other point: the whole history, half as fine
            self.x[: (self.n + 1) // 2] = self.x[: self.n : 2]
            self.y[: (self.n + 1) // 2] = self.y[: self.n : 2]
            self.n = (self.n + 1) // 2

    @property
    def xs(self) -> np.ndarray:
        return self.x[: self.n]

    @property
    def ys(self) -> np.ndarray:
        return self.y[: self.n]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.2e}"


def column_ranges(xs: np.ndarray, ys: np.ndarray, x0: float, x1: float, columns: int):
    """Per dot column: (has data, low, high) of the line through the points.

    A column with points spans their min and max; a column between two points (a
    sparse series, such as validations) gets the straight line between them; each
    column also reaches the level of the column before, so the line has no holes.
    """
    finite = np.isfinite(ys)
    if not finite.all():
        xs, ys = xs[finite], ys[finite]
    has = np.zeros(columns, dtype=bool)
    low = np.zeros(columns)
    high = np.zeros(columns)
    if len(xs) == 0:
        return has, low, high
    span = (x1 - x0) or 1.0
    col = np.clip(((xs - x0) / span * (columns - 1)).round().astype(np.int64), 0, columns - 1)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])  # xs sorted: runs of one column
    cols = col[starts]
    last = ys[np.r_[starts[1:], len(ys)] - 1]
    a, b = cols[0], cols[-1] + 1
    level = np.interp(np.arange(a, b), cols, last)  # the line's level in every column it crosses
    low[a:b] = level
    high[a:b] = level
    low[cols] = np.minimum.reduceat(ys, starts)
    high[cols] = np.maximum.reduceat(ys, starts)
    has[a:b] = True
    if b - a > 1:
        before = level[:-1]
        low[a + 1 : b] = np.minimum(low[a + 1 : b], before)
        high[a + 1 : b] = np.maximum(high[a + 1 : b], before)
    return has, low, high


class MetricChart(Widget):
    DEFAULT_CSS = """
    MetricChart { height: 1fr; min-height: 6; border: round $panel-lighten-2; }
    """

    def __init__(self, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart_title = title
        self.series: dict[str, Series] = {}
        self._version = 0
        self._cache: tuple[tuple, Text] | None = None
        self.border_title = shown(title)

    @property
    def points(self) -> int:
        return sum(s.n for s in self.series.values())

    def add_points(self, name: str, xs, ys) -> None:
        if len(xs) == 0:
            return
        if name not in self.series:
            self.series[name] = Series(name, COLORS[len(self.series) % len(COLORS)])
        self.series[name].add(xs, ys)
        self._version += 1
        self.refresh()

    def emphasize(self, prefix: str) -> None:
        """Draw the series whose name starts with `prefix` bold and white (the best trial), the rest as they were."""
        changed = False
        for s in self.series.values():
            wanted = "bold white" if s.name.startswith(prefix) else getattr(s, "base_color", s.color)
            if not hasattr(s, "base_color"):
                s.base_color = s.color
            if s.color != wanted:
                s.color, changed = wanted, True
        if changed:
            self._version += 1
            self.refresh()

    def clear(self) -> None:
        self.series.clear()
        self._version += 1
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        key = (self._version, width, height)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.draw(width, height))
        return self._cache[1]

    def legend(self, width: int) -> Text:
        """One line of at most `width` cells: a mark and the last value of each series, the emphasized ones first;
        what does not fit is counted ("+3 more")."""
        ordered = sorted(self.series.values(), key=lambda s: getattr(s, "base_color", s.color) == s.color)
        items = [(s, f"{plain(s.name)}{f' {_fmt(s.ys[-1])}' if s.n else ''}") for s in ordered]
        line = Text(no_wrap=True, overflow="crop")
        for index, (s, words) in enumerate(items):
            left = len(items) - index - 1
            more = f"+{left} more" if left else ""
            if line.cell_len + 2 + len(words) + 2 + len(more) > width and index:
                line.append(f"+{len(items) - index} more", style="dim")
                break
            line.append("━ ", style=s.color).append(words + "  ")
        line.truncate(width)
        return line

    def draw(self, width: int, height: int) -> Text:
        """The chart as text of `width` x `height` cells: legend (one line), plot with a y scale, x range."""
        legend = self.legend(width)
        live = [s for s in self.series.values() if s.n]
        plot_w, plot_h = max(1, width - Y_LABEL_WIDTH), max(1, height - 2)
        if not live or width <= Y_LABEL_WIDTH or height < 3:
            return Text.assemble(legend, "\n", Text("waiting for the first points...", style="dim"))
        x0 = min(float(s.xs[0]) for s in live)
        x1 = max(float(s.xs[-1]) for s in live)
        first, last = x0, x1  # what the x axis says
        if x1 - x0 < 1e-12:  # one batch only: it sits in the middle
            x0, x1 = x0 - 1, x1 + 1
        ys_all = [s.ys[np.isfinite(s.ys)] for s in live]
        ys_all = [y for y in ys_all if len(y)]
        y0 = min((float(y.min()) for y in ys_all), default=0.0)
        y1 = max((float(y.max()) for y in ys_all), default=1.0)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        dot_rows, dot_cols = plot_h * 4, plot_w * 2
        codes = np.zeros((plot_h, plot_w), dtype=np.uint16)
        owner = np.full((plot_h, plot_w), -1, dtype=np.int16)
        rows = np.arange(dot_rows)[None, :, None]
        ranges = [column_ranges(s.xs, s.ys, x0, x1, dot_cols) for s in live]
        for start in range(0, len(live), SERIES_AT_ONCE):  # many series (a search's trials) in a few numpy passes
            has, low, high = (np.stack(part) for part in zip(*ranges[start:start + SERIES_AT_ONCE]))
            # dot row 0 is the top: high values have small row numbers
            top = np.round((y1 - high) / (y1 - y0) * (dot_rows - 1))[:, None, :]
            bottom = np.round((y1 - low) / (y1 - y0) * (dot_rows - 1))[:, None, :]
            dots = (rows >= top) & (rows <= bottom) & has[:, None, :]
            cells = np.zeros((len(has), plot_h, plot_w), dtype=np.uint8)
            for r in range(4):  # each of a cell's 8 dots: its bit where the dot is drawn
                for c in range(2):
                    cells |= dots[:, r::4, c::2].astype(np.uint8) * np.uint8(DOT_BITS[r, c])
            codes |= np.bitwise_or.reduce(cells, axis=0)
            drawn = cells > 0
            latest = len(has) - 1 - drawn[::-1].argmax(axis=0)  # the last series drawn in each cell owns it
            owner = np.where(drawn.any(axis=0), start + latest, owner).astype(np.int16)
        grid = [[chr(0x2800 + int(c)) for c in codes[r]] for r in range(plot_h)]
        single = {id(s) for s in live if s.n == 1 and np.isfinite(s.ys[0])}
        for index, s in enumerate(live):  # a single point: a marker (with its value, for a few), not a lone dot
            if id(s) not in single:
                continue
            col = int(np.round((float(s.xs[0]) - x0) / (x1 - x0) * (dot_cols - 1))) // 2  # the cell its dot is in
            row = int(np.round((y1 - float(s.ys[0])) / (y1 - y0) * (dot_rows - 1))) // 4
            label = f" {_fmt(float(s.ys[0]))}" if len(single) <= LABELLED else ""
            start = col + 1 if col + 1 + len(label) <= plot_w else max(0, col - len(label))
            for i, ch in enumerate(label):
                if 0 <= start + i < plot_w and start + i != col:
                    grid[row][start + i], owner[row, start + i] = ch, index
            grid[row][col], owner[row, col] = "●", MARKER - index
        text = Text.assemble(legend, "\n", no_wrap=True, overflow="crop")
        for r in range(plot_h):
            label = _fmt(y1) if r == 0 else _fmt(y0) if r == plot_h - 1 else ""
            text.append(label.rjust(Y_LABEL_WIDTH - 1) + "┤" if label else " " * (Y_LABEL_WIDTH - 1) + "│", style="dim")
            chars = "".join(grid[r])
            runs = np.flatnonzero(np.r_[True, owner[r, 1:] != owner[r, :-1], True])
            for a, b in zip(runs[:-1], runs[1:]):
                who = int(owner[r, a])
                style = live[who].color if who >= 0 else f"bold {live[MARKER - who].color}" if who <= MARKER else ""
                text.append(chars[a:b], style=style)
            text.append("\n")
        left, right = f"{first:g}", f"batch {last:g}"
        text.append(" " * Y_LABEL_WIDTH + left + right.rjust(max(1, plot_w - len(left))), style="dim")
        return text
