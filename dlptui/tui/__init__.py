"""The terminal console (Textual). `run_console(config)` opens it; see `app.py` for its conventions."""

from __future__ import annotations


def run_console(config) -> int:
    """Open the console on the active profile; returns the process exit code."""
    # textual_image asks the terminal what it can draw when imported: do it before the
    # app takes the terminal over (FACTS.md). A console without it still works.
    try:
        import textual_image.widget  # noqa: F401
    except Exception:
        pass
    from dlptui.tui.app import DlpApp

    app = DlpApp(config)
    app.run()
    return app.return_code or 0
