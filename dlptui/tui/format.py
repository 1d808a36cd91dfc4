"""Short human forms of sizes, times and numbers for the console's tables."""

from __future__ import annotations

import time
from datetime import datetime

from dlptui.text import size as human_size, timestamp as human_time

__all__ = ["human_size", "human_time", "since", "percent", "number", "clock", "plural"]


def since(t: float | None, now: float | None = None) -> str:
    """Age like k9s: 42s, 5m, 3h, 2d."""
    if not t:
        return "-"
    seconds = max(0, int((now or time.time()) - t))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def clock(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else "-"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
