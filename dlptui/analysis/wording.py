"""Numbers in the sentences of verdicts and gate actions: rates, points, relative changes, ms, counts."""

from __future__ import annotations

import math


def count(n: float) -> str:
    return f"{int(n):,}"


def about(n: int) -> str:
    """An estimate, in two significant figures: ~4,800."""
    if n < 100:
        return f"~{n}"
    digits = len(str(n)) - 2
    return f"~{round(n, -digits):,}"


def rate(x: float) -> str:
    return f"{100 * x:.2f} %"


def points(x: float) -> str:
    """A difference of two rates in percentage points."""
    if math.isinf(x):
        return "unbounded"
    return f"{100 * x:+.2f} points"


def relative(x: float) -> str:
    if math.isinf(x):
        return "unbounded"
    return f"{100 * x:+.1f} %"


def ms(x: float) -> str:
    return f"{x:.1f} ms"


def level(alpha: float) -> str:
    """The confidence of an interval at alpha: 95 %, 98.3 %."""
    return f"{100 * (1 - alpha):.3g} %"
