"""The one render layer of both faces: per noun, the cells of its table row and the lines of its describe block.

As k9s keeps `internal/render` apart from its views, every table of the CLI and of the console, `describe`, and
the console's dialogs take their text from here, so an id, a size, a time or a metric is written the same on
every screen and in every command. Values are written by `dlptui.text` (times as local ISO or relative, sizes in
IEC units, metrics by one rule, `-` for what is missing); nothing here writes a Python repr (no epoch float, no
`None`, no list or dict). `--json` is machine data and does not come through here.

    from dlptui.render import cells, data
    cells(data.REPO_COLUMNS, repo)            # ("dogs-and-cats", "1.2 MiB", "3", ...)
    lines(describe(commit))                   # ["      id: 3f2a...", "    repo: dogs-and-cats", ...]

One module per part: `data` (repo, commit, file), `pipelines` (pipeline, job, datum), `training` (experiment,
trial, checkpoint, metric point), `registry` (model, model version, promotion, two versions compared), `serving`
(deployment, version in a deployment, deployment change, logged prediction, prediction, the server's log).
A cell is a `str`: the faces add their own styles (the console's colours) and escape what they must.
Imports no Textual and no rich; only the platform's model and `dlptui.text`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dlptui.text import MISSING, plain

Block = list[tuple[str, str]]  # a describe block: (label, value) lines, in order


@dataclass(frozen=True)
class Column:
    """One column of a noun's table: `key` names it for the console's table, `header` is what both faces show,
    `cell(obj)` writes the object's value (None becomes `-`)."""

    key: str
    header: str
    cell: Callable[[Any], object]


def cell(column: Column, obj: Any) -> str:
    value = column.cell(obj)
    return MISSING if value is None or value == "" else str(value)


def cells(columns: Sequence[Column], obj: Any) -> tuple[str, ...]:
    """The row of `obj`: one string per column."""
    return tuple(cell(c, obj) for c in columns)


def pick(columns: Sequence[Column], *keys: str) -> list[Column]:
    """The columns named by `keys`, in that order (a narrower table of the same noun)."""
    by_key = {c.key: c for c in columns}
    return [by_key[k] for k in keys]


def without(columns: Sequence[Column], *keys: str) -> list[Column]:
    return [c for c in columns if c.key not in keys]


def joined(values: Iterable[object], sep: str = ", ") -> str:
    """A list as words ("a, b"), `-` when empty: never a Python list."""
    words = [str(v) for v in values if v is not None and v != ""]
    return sep.join(words) if words else MISSING


def counts(mapping: dict[str, int] | None) -> str:
    """Counts per name as "cat 17, dog 15" (sorted by name), `-` when empty: never a Python dict."""
    return joined(f"{k} {v}" for k, v in sorted((mapping or {}).items()))


def lines(block: Block, indent: int = 2) -> list[str]:
    """A describe block as aligned lines, labels right-aligned: "   created: 2026-12-01 22:13:05". A value of
    several lines continues under its first, indented as it is."""
    if not block:
        return []
    width = max(len(label) for label, _ in block)
    out = []
    for label, value in block:
        head = " " * indent + f"{label:>{width}}: "
        first, *rest = plain(value if value not in (None, "") else MISSING).split("\n")
        out.append(head + first)
        out.extend(" " * len(head) + more for more in rest)
    return out


# --- describe(obj): the block of any noun, by its type -----------------------------------------

_DESCRIBERS: dict[type, Callable[[Any], Block]] = {}
PARTS = ("data", "pipelines", "training", "registry", "serving")


def describer(kind: type) -> Callable[[Callable[[Any], Block]], Callable[[Any], Block]]:
    """Register the describe block of a model type (each part's module does it for its nouns)."""

    def register(fn: Callable[[Any], Block]) -> Callable[[Any], Block]:
        _DESCRIBERS[kind] = fn
        return fn

    return register


def describe(obj: Any) -> Block:
    """The describe block of a model object (a Repo, a Commit, a Pipeline, a Job, a Deployment, ...)."""
    import importlib

    for part in PARTS:  # importing a part registers its nouns
        importlib.import_module(f"dlptui.render.{part}")

    for kind in type(obj).__mro__:
        if kind in _DESCRIBERS:
            return _DESCRIBERS[kind](obj)
    raise TypeError(f"no describe block for {type(obj).__name__}")
