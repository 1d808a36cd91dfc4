"""One renderer for every listing: a rich table for people, a JSON array with `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dlptui.platform.model import to_dict
from dlptui.text import size, timestamp


def emit_json(value: Any) -> None:
    json.dump(to_dict(value), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


human_size = size
human_time = timestamp


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
