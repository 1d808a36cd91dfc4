"""One renderer for every listing: a rich table for people, a JSON array with `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from dlptui.platform.model import to_dict


def emit_json(value: Any) -> None:
    json.dump(to_dict(value), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_time(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


Column = tuple[str, Callable[[Any], Any]]


def emit_table(rows: Iterable[Any], columns: Sequence[Column], as_json: bool, title: str | None = None) -> None:
    """Print `rows` (dataclasses) as JSON objects with every field, or as a table of `columns`."""
    rows = list(rows)
    if as_json:
        emit_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for header, _ in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*("-" if (v := get(row)) is None else str(v) for _, get in columns))
    # piped output keeps whole cells (no 80-column guess): people grep and cut it
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def emit_object(obj: Any, as_json: bool) -> None:
    """One object: JSON, or `field: value` lines."""
    if as_json:
        emit_json(obj)
        return
    for key, value in to_dict(obj).items():
        print(f"{key:>20}: {value}")
