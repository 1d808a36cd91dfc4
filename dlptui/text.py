"""The one way to write a value (an id, a size, a time, a metric, a reference), for the CLI and the console alike.

An id or a size is written the same way on every screen and in every table (as k9s keeps one
render layer for all its views): change it here and both faces follow. Nothing here knows a
face or a noun; everything takes plain values and returns a `str`. `dlptui.render` builds each
noun's table cells and describe block from these; the use cases' sentences use them too.
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
    """A share (0.973) as 97.3%."""
    return MISSING if fraction is None else f"{100 * fraction:.1f}%"


def number(value: float | None, digits: int = 4) -> str:
    """A measured number in `digits` significant digits (0.2314, 1.235e-05, 1234)."""
    return MISSING if value is None else f"{value:.{digits}g}"


# --- metrics: one rule for every face --------------------------------------------------------------
# A metric whose name says it is a share of the examples (an accuracy, a precision, a recall, an F1, an AUC,
# an agreement) is a fraction in [0, 1] and is written as a percent with one decimal; every other metric (a
# loss, an error, a perplexity, a learning rate) in 4 significant digits. Lower is better for a loss or an error
# (what a search's `smaller_is_better` says otherwise wins for its own metric), higher for everything else.
FRACTION_WORDS = ("acc", "precision", "recall", "f1", "auc", "agreement")
LOWER_WORDS = ("loss", "error", "err_rate", "perplexity", "mse", "mae", "rmse")


def is_fraction(name: str) -> bool:
    """Whether a metric of this name is a share written as a percent."""
    lowered = name.lower()
    return any(word in lowered for word in FRACTION_WORDS)


def lower_is_better(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in LOWER_WORDS)


def metric(name: str, value: float | None) -> str:
    """A metric's value by the rule above: accuracy 0.9731 -> 97.3%, validation_loss 0.231419 -> 0.2314."""
    if value is None:
        return MISSING
    return percent(value) if is_fraction(name) else number(value)


def change(name: str, old: float | None, new: float | None, smaller_is_better: bool | None = None) -> tuple[str, bool | None]:
    """(new minus old in the metric's own unit, with the better direction named; whether new is better, None when
    equal or unknown): accuracy 0.90 -> 0.93 is ("+3.0 pp, better", True), loss 0.20 -> 0.25 is ("+0.05, worse", False)."""
    if old is None or new is None:
        return MISSING, None
    delta = new - old
    written = f"{100 * delta:+.1f} pp" if is_fraction(name) else f"{delta:+.4g}"
    if written[1:] in ("0", "0.0 pp"):  # equal, or closer than the unit shows
        return f"{written[1:]}, same", None
    smaller = lower_is_better(name) if smaller_is_better is None else smaller_is_better
    better = delta < 0 if smaller else delta > 0
    return f"{written}, {'better' if better else 'worse'}", better


def latency(ms: float | None) -> str:
    """A request's latency: 35.2 ms."""
    return MISSING if ms is None else f"{ms:.1f} ms"


def duration(seconds: float | None) -> str:
    """How long something ran: 4.2s, 3m07s, 2h05m."""
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


# --- names ---------------------------------------------------------------------------------------
_CHUNKS = re.compile(r"(\d+)")


def natural_key(path: str) -> tuple:
    """Sort key of a file name or path as a person reads it: cat.2 before cat.10, folder by folder, case aside."""
    return tuple(
        tuple((0, int(chunk), chunk) if chunk.isdigit() else (1, chunk.casefold(), chunk) for chunk in _CHUNKS.split(part) if chunk)
        for part in path.strip("/").split("/")
    )


def hparam(value: object) -> str:
    """A hyperparameter's value: floats in 4 significant digits (a log-uniform learning rate reads 0.0031)."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def commit_id(commit: str | None) -> str:
    return commit[:COMMIT_CHARS] if commit else MISSING


def job_id(job: str | None) -> str:
    """A job id shortened as a commit id is; a cluster job's `pipeline@id` keeps its pipeline."""
    if not job:
        return MISSING
    pipeline, at, ident = job.rpartition("@")
    return f"{pipeline}@{commit_id(ident)}" if at else commit_id(job)


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
