"""Thread work in flight, counted, so the platform is closed only once no thread uses it.

    work = InFlight()
    app.run_worker(work.track(fn), thread=True)     # every thread worker of the console
    work.wait_idle(3.0)                              # on exit, before Platform.close()

Textual cannot stop a thread worker: cancelling one only stops waiting for it. A console
that quits while a poll or a health check is still reading the embedded store would close
the store's SQLite connections under that thread (seen: a segfault at exit, about one exit
in thirty on a busy machine). So every thread worker runs through `track`, and the app
closes its platform once `wait_idle` says the last one has returned, or leaves it to the
end of the process when one is still stuck on a dead backend after the wait.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any


class InFlight:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    def track(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """`fn`, counted while it runs (in whatever thread runs it)."""

        @functools.wraps(fn)
        def run() -> Any:
            with self._changed:
                self._running += 1
            try:
                return fn()
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

        return run

    def wait_idle(self, timeout: float) -> bool:
        """Block until no tracked work runs, at most `timeout` seconds; True when none does."""
        with self._changed:
            return self._changed.wait_for(lambda: self._running == 0, timeout)
