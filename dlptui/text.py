"""The one renderer of ids, sizes, times, numbers and references, for the CLI and the console alike.

An id or a size is written the same way on every screen and in every table (as k9s keeps one
render layer for all its views): change it here and both faces follow. Nothing here knows a
face; everything takes plain values and returns a `str`.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

COMMIT_CHARS = 12  # how much of a commit id a person sees (a unique prefix in practice)
UUID_CHARS = 8  # how much of a checkpoint uuid a table shows
MISSING = "-"
# terminal escape sequences (CSI, OSC, other ESC forms) and every other control character but tab and newline
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-_])|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: object) -> str:
    """User text (a commit message, a file name, a log line) safe to show on a terminal: no escape
    sequence that could move the cursor, retitle the window or fake a link, no control character."""
    return _ESCAPES.sub("", str(value))


def size(n: int | None) -> str:
    """Bytes as 0 B, 1.5 KiB, 3.2 MiB, ..."""
    if n is None:
        return MISSING
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def timestamp(t: float | None) -> str:
    """A wall-clock time as 2026-12-01 22:13:05 (local time)."""
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else MISSING


def clock(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else MISSING


def since(t: float | None, now: float | None = None) -> str:
    """Age like k9s: 42s, 5m, 3h, 2d."""
    if not t:
        return MISSING
    seconds = max(0, int((now or time.time()) - t))
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def percent(fraction: float | None) -> str:
    return MISSING if fraction is None else f"{100 * fraction:.1f}%"


def number(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}g}"


def hparam(value: object) -> str:
    """A hyperparameter's value: floats in 4 significant digits (a log-uniform learning rate reads 0.0031)."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def score(value: float | None) -> str:
    """A metric such as an accuracy or a loss: four decimals."""
    return MISSING if value is None else f"{value:.4f}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def commit_id(commit: str | None) -> str:
    return commit[:COMMIT_CHARS] if commit else MISSING


def uuid(value: str | None) -> str:
    return value[:UUID_CHARS] if value else MISSING


def data_ref(repo: str | None, commit: str | None) -> str:
    """`repo@commit`, the commit shortened, or '-' when either is unknown."""
    if not repo or not commit:
        return MISSING
    return f"{repo}@{commit_id(commit)}"


def model_ref(model: str, version: int | str | None) -> str:
    """`model@version` (a number or an alias)."""
    return f"{model}@{version}" if version is not None else model


def version_tag(version: int | None) -> str:
    return MISSING if version is None else f"v{version}"


def canary(version: int | None, traffic: int | None) -> str:
    return MISSING if version is None else f"v{version} {traffic}%"
