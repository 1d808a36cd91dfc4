"""The terminal console (Textual). `run_console(config)` opens it; see `app.py` for its conventions and keys."""

from __future__ import annotations


def run_console(config) -> int:
    """Open the console on the active profile; returns the process exit code."""
    from dlptui.tui import graphics

    graphics.probe()  # a terminal that may draw pixels is asked before the app takes it over
    from dlptui.tui.app import DlpApp

    app = DlpApp(config)
    app.run()
    return app.return_code or 0
