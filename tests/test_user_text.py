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


OSC = "\x1b]0;owned\x07"
CSI = "\x1b[2J"


def _clean(*streams: str) -> None:
    for s in streams:
        assert "\x1b" not in s and "\x07" not in s and "\x9b" not in s, repr(s[:200])


def test_pipeline_inspect_job_and_job_logs_print_no_escape_sequence(home, capsys, tmp_path):
    """The pipeline's description, its datum's log lines and its job's reason are user text."""
    import json
    import time

    spec = tmp_path / "loud.json"
    spec.write_text(json.dumps({
        "pipeline": {"name": "loud"}, "description": f"says {OSC}hello{CSI}", "input": {"pfs": {"repo": "raw", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", r"printf 'out \033]0;owned\007 \033[2Jdone\n'; exit 3"]}, "datum_tries": 1,
    }))
    run_json(capsys, "data", "create", "raw")
    (tmp_path / "a.txt").write_text("alpha")
    run_json(capsys, "data", "put", "raw", str(tmp_path / "a.txt"))
    try:
        run_json(capsys, "pipeline", "create", "-f", str(spec))
        code, out, err = run(capsys, "pipeline", "inspect", "loud")
        assert code == 0 and "says hello" in out
        _clean(out, err)
        deadline = time.monotonic() + 120
        while not (jobs := run_json(capsys, "jobs", "loud")):
            assert time.monotonic() < deadline, "the pipeline's runner made no job within 120 s"
            time.sleep(0.05)
        job_id = jobs[0]["id"]
        run(capsys, "job", job_id, "--wait", "--timeout", "120")
        code, out, err = run(capsys, "job", job_id)
        assert code == 0 and job_id in out
        _clean(out, err)
        code, out, err = run(capsys, "job", "logs", job_id)
        assert code == 0 and "out ]0;owned" not in out and "done" in out
        _clean(out, err)
    finally:
        run(capsys, "pipeline", "stop", "loud")


def test_error_sentences_and_argument_mistakes_print_no_escape_sequence(home, capsys, tmp_path):
    code, _, err = run(capsys, "data", "put", "r", str(tmp_path / f"no{OSC}such{CSI}.txt"))
    assert code == 3 and err.startswith("dlptui: ") and "nosuch.txt" in err and err.count("\n") == 1
    _clean(err)
    code, out, err = run(capsys, "data", "repos", f"extra{OSC}")  # argparse's own sentence names the argument
    assert code == 2 and "extra" in err and err.count("\n") == 1
    _clean(out, err)


def test_a_file_name_with_markup_in_the_progress_bar_is_words(home, capsys, tmp_path, monkeypatch):
    """On a terminal `data import-kaggle` shows a progress bar described by the file's name: not markup."""
    import zipfile

    from dlptui.actions.datasets import generate_sample

    images = generate_sample(tmp_path / "imgs", count=4, size=16)
    archive = tmp_path / "[b]pets[i].zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(images.iterdir()):
            z.write(p, f"train/{p.name}")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    code, out, err = run(capsys, "data", "import-kaggle", str(archive), "--repo", "pets", "--tar")
    assert code == 0, err
    assert "committed pets@" in out and "import [b]pets[i].zip" in out  # the bar's last frame, its name as written


def test_every_line_the_cli_prints_goes_through_one_place():
    """cli/output.py (`say`, `emit_*`) strips what a terminal would act on; nothing else in the CLI prints."""
    import ast
    from pathlib import Path

    import dlptui.cli

    found = []
    for path in sorted(Path(dlptui.cli.__file__).parent.glob("*.py")):
        if path.name == "output.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("print", "input"):
                found.append(f"{path.name} {func.id}")
            elif isinstance(func, ast.Attribute) and func.attr in ("write", "writelines") and "std" in ast.unparse(func.value):
                found.append(f"{path.name} {ast.unparse(func)}")
    assert found == ["data.py sys.stdout.buffer.write"]  # a file's bytes piped as they are (plain on a terminal)
