"""User text (commit messages, file names, log lines) is shown as plain text: never markup, never an
escape sequence that moves the cursor, retitles the terminal or fakes a link."""

from __future__ import annotations

import pytest
from rich.text import Text

from dlptui.text import plain
from tests.helpers import run, run_json

NASTY = [
    "[/bold]",  # would crash a markup renderer
    "[link=https://evil.example]click[/link]",  # would fake a link
    "\x1b]0;owned\x07title",  # OSC: retitles the window
    "\x1b[2J\x1b[Hcleared",  # CSI: clears the screen
    "bell\x07 and nul\x00",
    "\x9b31mC1 CSI",
]


@pytest.mark.parametrize("text", NASTY)
def test_plain_leaves_no_escape_or_control(text):
    shown = plain(text)
    assert "\x1b" not in shown and "\x07" not in shown and "\x00" not in shown and "\x9b" not in shown
    assert plain("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_a_commit_message_is_printed_as_it_was_written(home, capsys):
    run_json(capsys, "data", "create", "r")
    source = home.parent / "f.txt"
    source.write_text("x")
    message = "[/bold] \x1b]0;owned\x07 [link=https://evil.example]x[/link]"
    code, _, err = run(capsys, "data", "put", "r", str(source), "-m", message)
    assert code == 0, err
    code, out, err = run(capsys, "data", "commits", "r")
    assert code == 0, err
    assert "[/bold]" in out and "[link=https://evil.example]x[/link]" in out  # the words, as written
    assert "\x1b" not in out and "\x07" not in out


async def test_the_console_table_shows_markup_like_text_plainly():
    from textual.app import App, ComposeResult

    from dlptui.tui.widgets.resource_table import ResourceTable

    class One(App):
        def compose(self) -> ComposeResult:
            yield ResourceTable([("m", "MESSAGE")], id="t")

    app = One()
    async with app.run_test() as pilot:
        table = app.query_one(ResourceTable)
        table.update_rows([("a", ("[/bold] \x1b[2J",)), ("b", (Text("styled", style="bold"),))])
        await pilot.pause()
        from textual.widgets._data_table import default_cell_formatter

        shown = default_cell_formatter(table.get_row("a")[0])  # what the table draws
        assert shown.plain == "[/bold] " and not shown.spans
        assert table.get_row("b")[0].style == "bold"  # a Text a screen built keeps its style


def test_a_file_printed_to_a_terminal_loses_its_escape_sequences(home, capsys, monkeypatch):
    source = home.parent / "notes.txt"
    source.write_bytes(b"line one\n\x1b]0;owned\x07\x1b[2Jline two\n")
    run_json(capsys, "data", "create", "r")
    assert run(capsys, "data", "put", "r", str(source))[0] == 0
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    code, out, _ = run(capsys, "data", "get", "r:/notes.txt")
    assert code == 0 and out == "line one\nline two\n"
