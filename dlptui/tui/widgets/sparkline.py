"""A sparkline in block characters: a bounded history of one series drawn in one line of text.

    history = Series(limit=30); history.add(3.0)
    sparkline(history.values, width=12)   # "▁▁▂▅█" (the last `width` values, scaled to their maximum)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 16) -> str:
    """The last `width` values as blocks scaled from 0 to their maximum; empty for no values."""
    shown = [max(0.0, float(v)) for v in list(values)[-width:]]
    if not shown:
        return ""
    top = max(shown)
    if top <= 0:
        return BLOCKS[0] * len(shown)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * (len(BLOCKS) - 1) + 0.5))] for v in shown)


class Series:
    """A bounded history of a counter's increments (requests per poll) for a sparkline."""

    def __init__(self, limit: int = 60) -> None:
        self.values: deque[float] = deque(maxlen=limit)
        self._last: float | None = None

    def add_count(self, total: float | None) -> None:
        """Record how much a cumulative counter grew since the last call (a restart counts from 0)."""
        if total is None:
            return
        if self._last is not None:
            self.values.append(total - self._last if total >= self._last else total)
        self._last = total
