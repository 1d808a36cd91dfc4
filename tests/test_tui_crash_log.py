"""A segfault in the console leaves a Python traceback in the crash log under the XDG state folder."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_fault_in_the_console_is_written_to_the_crash_log(tmp_path):
    # the console's own setup, then a real SIGSEGV of the interpreter (ctypes reads address 0)
    script = (
        "import sys, dlptui.tui as t\n"
        "class Boom:\n"
        "    def __init__(self, config): pass\n"
        "    def run(self):\n"
        "        import ctypes; ctypes.string_at(0)\n"
        "import dlptui.tui.app as app; app.DlpApp = Boom\n"
        "t.run_console(None)\n"
    )
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "TERM": "dumb"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode < 0  # killed by the signal
    log = (tmp_path / "state" / "dlptui" / "crash.log").read_text()
    assert "Segmentation fault" in log and "in run" in log
