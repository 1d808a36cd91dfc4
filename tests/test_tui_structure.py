"""The console's modules: no import circle (lazy imports inside functions count too), and one direction
between its parts: app -> screens -> dialogs -> widgets, none of them back up."""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("dlptui")


def tui_modules(graph) -> list[str]:
    return sorted(m for m in graph.modules if m.startswith("dlptui.tui."))


def test_no_module_of_the_console_imports_itself_back(graph):
    circles = []
    for module in tui_modules(graph):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("dlptui.tui.") and imported != module:
                back = graph.find_shortest_chain(importer=imported, imported=module)
                if back:
                    circles.append(" -> ".join((module, *back)))
    assert circles == []


@pytest.mark.parametrize(
    ("part", "not_above"),
    [
        ("dlptui.tui.widgets", ("dlptui.tui.dialogs", "dlptui.tui.screens", "dlptui.tui.app")),
        ("dlptui.tui.dialogs", ("dlptui.tui.screens", "dlptui.tui.app")),
        ("dlptui.tui.screens", ("dlptui.tui.app",)),
    ],
)
def test_the_parts_import_only_downwards(graph, part, not_above):
    upward = [
        f"{m} -> {i}"
        for m in tui_modules(graph) if m.startswith(part + ".")
        for i in graph.find_modules_directly_imported_by(m) if i.startswith(not_above)
    ]
    assert upward == []


def test_every_modal_is_a_dialog_and_lives_in_dialogs():
    import importlib
    import pkgutil

    from textual.screen import ModalScreen

    import dlptui.tui.dialogs
    import dlptui.tui.screens
    import dlptui.tui.widgets
    from dlptui.tui.dialogs.base import Dialog

    modals = []
    for package in (dlptui.tui.dialogs, dlptui.tui.screens, dlptui.tui.widgets):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            modals += [
                (module.__name__, obj) for obj in vars(module).values()
                if isinstance(obj, type) and issubclass(obj, ModalScreen) and obj.__module__ == module.__name__
            ]
    assert modals
    assert [(m, c.__name__) for m, c in modals if not m.startswith("dlptui.tui.dialogs.")] == []
    assert [c.__name__ for _, c in modals if not issubclass(c, Dialog)] == []


def test_every_static_and_label_of_the_console_reads_no_markup():
    """A str given to a Static or Label with markup on is parsed: a name with `[/x]` crashes it (tui/shown.py)."""
    import ast
    from pathlib import Path

    import dlptui.tui

    offenders = []
    for path in sorted(Path(dlptui.tui.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("Static", "Label"):
                markup = next((k.value for k in node.keywords if k.arg == "markup"), None)
                if not (isinstance(markup, ast.Constant) and markup.value is False):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []

