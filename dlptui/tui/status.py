"""The platform's health as the console shows it: each part checked in its own thread, round after round.

    health = HealthPoller(app, platform, InFlight())
    health.signal.subscribe(widget, lambda _: widget.refresh())
    health.start()                       # after the first frame
    health.services["data"].reachable    # part -> Service, as each answers
    health.slow                          # parts that have not answered for `slow_after` seconds
    health.context                       # Cluster.context(): host or kube context, versions, load

- Each part's `Platform.health(part)` runs in a thread worker of the app (group "health"),
  so a slow or dead part never freezes the console; `signal` is published as each one
  answers, and again when a part becomes slow.
- The next round starts `interval` seconds after the last answer of this one (no stacked
  checks); a part that has not answered after `slow_after` seconds is in `slow` until it does.
- The app hands the poller its workers' state changes (`finished(worker)`), since a worker
  reports to the node that runs it.
"""

from __future__ import annotations

from functools import partial

from textual.app import App
from textual.signal import Signal
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from dlptui.errors import PlatformError
from dlptui.platform import PARTS
from dlptui.platform.model import Service
from dlptui.tui.work import InFlight


class HealthPoller:
    """Each part's health and the cluster's context, polled in threads; see the module docstring."""

    GROUP = "health"

    def __init__(self, app: App, platform, work: InFlight, interval: float = 5.0, slow_after: float = 3.0) -> None:
        self.app = app
        self.platform = platform
        self.work = work
        self.interval = interval
        self.slow_after = slow_after
        self.services: dict[str, Service] = {}
        self.slow: set[str] = set()
        self.context: dict[str, str] = {}
        self.signal: Signal[None] = Signal(app, "health")
        self._pending: set[str] = set()
        self._slow_timer: Timer | None = None
        self._stopped = False

    def start(self) -> None:
        """One round now; each round schedules the next when its last part has answered."""
        self._stopped = False
        self._round()

    def stop(self) -> None:
        self._stopped = True
        if self._slow_timer is not None:
            self._slow_timer.stop()

    def _round(self) -> None:
        if self._stopped or not self.app.is_running:
            return
        self._pending = set(PARTS)
        for part in PARTS:
            self.app.run_worker(
                self.work.track(partial(self._check, part)), thread=True, group=self.GROUP, name=part, exit_on_error=False
            )
        self._slow_timer = self.app.set_timer(self.slow_after, self._mark_slow)

    def _check(self, part: str) -> tuple[Service, dict[str, str] | None]:
        """Runs in a thread: the part's health (never raises) and, for the cluster, its context."""
        service = self.platform.health(part)
        context = None
        if part == "cluster" and service.reachable:
            try:
                context = self.platform.cluster.context()
            except PlatformError:  # the header then shows the profile alone
                pass
        return service, context

    def owns(self, worker: Worker) -> bool:
        return worker.group == self.GROUP

    def finished(self, worker: Worker) -> None:
        """A check ended (its worker's state changed to an end): record it, publish, maybe schedule."""
        if worker.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        part = worker.name
        if worker.state == WorkerState.SUCCESS and worker.result is not None:
            service, context = worker.result
            self.services[part] = service
            if context is not None:
                self.context = context
        self.slow.discard(part)
        self._pending.discard(part)
        self.signal.publish(None)
        if not self._pending:
            if self._slow_timer is not None:
                self._slow_timer.stop()
            if self.app.is_running and not self._stopped:
                self.app.set_timer(self.interval, self._round)

    def _mark_slow(self) -> None:
        self.slow = set(self._pending)
        if self.slow:
            self.signal.publish(None)
