"""The terminal console (Textual). `run_console(config)` opens it; see `app.py` for its conventions and keys.

A crash of the interpreter itself (a segfault in a C extension) leaves its Python traceback in
`$XDG_STATE_HOME/dlptui/crash.log` (default `~/.local/state/dlptui/crash.log`) through
`faulthandler`, instead of a terminal that just closes.
"""

from __future__ import annotations

import os
from pathlib import Path


def crash_log(env=os.environ) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dlptui" / "crash.log"


def run_console(config) -> int:
    """Open the console on the active profile; returns the process exit code."""
    import faulthandler

    log = crash_log()
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        crash_file = open(log, "a")  # kept open while the console runs: faulthandler writes to its descriptor
        faulthandler.enable(file=crash_file, all_threads=True)
    except OSError:
        crash_file = None  # no state folder: the console runs without a crash log
    from dlptui.tui import graphics

    graphics.probe()  # a terminal that may draw pixels is asked before the app takes it over
    from dlptui.tui.app import DlpApp

    app = DlpApp(config)
    try:
        app.run()
    finally:
        if crash_file is not None:
            faulthandler.disable()
            crash_file.close()
    return app.return_code or 0
