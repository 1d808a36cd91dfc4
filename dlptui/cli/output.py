"""How the CLI prints: a table for people, JSON with `--json`, and the one way a destructive command asks.

Cells and describe blocks come from `dlptui.render`, as the console's do (`--json` is machine data and does not
go through it). Every line the CLI writes goes
through here (`say`, `emit_*`): user text in it (a commit message, a log line, a name in an error
sentence) loses its terminal escape sequences and control characters (`dlptui.text.plain`), so what
a person reads is what was written, never a cleared screen, a retitled window or a faked link.
The one exception is `data get` piping a file's bytes as they are (tests/test_cli_output.py holds
every other module of the CLI to this).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dlptui import render
from dlptui.errors import InvalidInput
from dlptui.platform.model import to_dict
from dlptui.text import plain

Column = render.Column | tuple[str, Callable[[Any], Any]]  # a noun's render.Column, or (header, value) of a one-off table
MANY_ROWS = 200  # from this many rows on, a table is laid out here (rich's per-cell layout takes seconds for 100,000)


def say(*values: object, sep: str = " ", end: str = "\n", file: Any = None, flush: bool = False, start: str = "") -> None:
    """`print` for the CLI: the values as plain text (`start` and `end`, the CLI's own, as given: a "\\r" that
    redraws a status line)."""
    print(start + plain(sep.join(str(v) for v in values)), end=end, file=file or sys.stdout, flush=flush)


def emit_json(value: Any) -> None:
    """JSON on stdout: an object indented; a list one object a line (json's C encoder: 5,000 experiments in a
    fraction of a second, where the indented form takes seconds)."""
    data = to_dict(value)
    if isinstance(data, list):
        sys.stdout.write("[\n" + ",\n".join(json.dumps(item, default=str) for item in data) + ("\n]\n" if data else "]\n"))
    else:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def emit_table(rows: Iterable[Any], columns: Sequence[Column], as_json: bool, title: str | None = None) -> None:
    """Print `rows` (dataclasses) as JSON objects with every field, or as a table of `columns`."""
    rows = list(rows)
    if as_json:
        emit_json(rows)
        return
    columns = [c if isinstance(c, render.Column) else render.Column(c[0], c[0], c[1]) for c in columns]
    if len(rows) >= MANY_ROWS:
        _plain_table(rows, columns, title)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(plain(title)) if title else None, box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column.header)
    for row in rows:  # cells are plain text: a file name or a sentence may hold [brackets] (pip install 'dlptui[local]')
        table.add_row(*(Text(plain(cell)) for cell in render.cells(columns, row)))
    # piped output keeps whole cells (no 80-column guess): people grep and cut it
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def emit_block(block: render.Block) -> None:
    """A describe block (render's): `label: value` lines, the labels aligned."""
    for line in render.lines(block):
        say(line)


def _plain_table(rows: list[Any], columns: Sequence[render.Column], title: str | None) -> None:
    """The table as rich draws it with no box (two spaces between columns, the header first), whole cells, no wrap."""
    cells = [[column.header for column in columns]]
    cells += [[plain(cell) for cell in render.cells(columns, row)] for row in rows]
    from rich.cells import cell_len  # a wide character takes two cells

    sizes = [[cell_len(cell) for cell in line] for line in cells]
    widths = [max(line[i] for line in sizes) for i in range(len(columns))]
    out = [plain(title)] if title else []
    out += ["  ".join(cell + " " * (width - size) for cell, size, width in zip(line, lens, widths)).rstrip()
            for line, lens in zip(cells, sizes)]
    sys.stdout.write("\n".join(out) + "\n")


def emit_object(obj: Any, as_json: bool) -> None:
    """One object: JSON, or its describe block."""
    if as_json:
        emit_json(obj)
        return
    emit_block(render.describe(obj))


def emit_done(obj: Any, sentence: str, as_json: bool) -> int:
    """What a command that changed something did: `obj` as JSON, or the sentence that says it. Returns 0."""
    if as_json:
        emit_json(obj)
    else:
        say(sentence)
    return 0


def confirm(question: str, yes: bool, refused: str) -> bool:
    """A destructive command's question: --yes answers it; a terminal asks (No by default);
    without a terminal and without --yes, `refused` is the sentence of an InvalidInput."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise InvalidInput(f"{refused}: stdin is not a terminal to ask on; add --yes.")
    answer = input(plain(f"{question} [y/N] "))
    return answer.strip().lower() in ("y", "yes")


def choose(question: str, options: Sequence[str], refused: Exception) -> int:
    """A numbered choice on a terminal: the index of the option a person picks (a number from 1). Without a terminal,
    `refused` (a PlatformError with its sentence) is raised; so is it after three answers that are not a number of the
    list."""
    if not sys.stdin.isatty():
        raise refused
    say(question)
    for number, option in enumerate(options, 1):
        say(f"  {number}) {option}")
    for _ in range(3):
        try:
            answer = input(f"number [1-{len(options)}]: ").strip()
        except EOFError:
            break
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return int(answer) - 1
        say(f"Give a number from 1 to {len(options)}.", file=sys.stderr)
    raise refused
