"""The Cluster screen: this host, the parts of the platform, the platform's processes; polling stops when hidden."""

from __future__ import annotations

import subprocess
import sys

from dlptui.platform import PARTS
from dlptui.tui.screens.cluster import ClusterScreen
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for


def table(app, name: str) -> ResourceTable:
    return app.screen.query_one(f"#{name}", ResourceTable)


async def test_nodes_services_and_processes_refresh(config, platform, home):
    app = make_app(config, platform)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: table(app, "nodes").row_count == 1, what="the node row")
            host = platform.cluster.nodes()[0].name
            assert table(app, "nodes").shown_keys == [host]
            cpu_cell = str(table(app, "nodes").get_row(host)[2])
            assert float(cpu_cell.split("/")[1].split()[0]) == platform.cluster.nodes()[0].cpu_capacity
            await wait_for(pilot, lambda: table(app, "services").get_row("data")[2] == "ok", what="the data part's health")
            assert table(app, "services").row_count == len(PARTS)
            assert "console/console" in table(app, "workloads").all_keys

            (home / "serving").mkdir(exist_ok=True)
            (home / "serving" / "sleeper.pid").write_text(str(child.pid))
            await wait_for(pilot, lambda: "serving/sleeper" in table(app, "workloads").all_keys, what="the new process")
            table(app, "workloads").focus()
            table(app, "workloads").move_cursor(row=table(app, "workloads").shown_keys.index("serving/sleeper"))
            child.kill()
            child.wait()
            await wait_for(pilot, lambda: "serving/sleeper" not in table(app, "workloads").all_keys, what="the process to go")
            assert table(app, "workloads").selected_key is not None  # the cursor stays on a row
    finally:
        child.kill()


async def test_polling_stops_while_hidden_and_resumes(config, platform):
    """Asserted on what the screen asked of the platform and what it scheduled, not on a pause: hidden while its
    next poll is set, and again while a poll is under way, it makes no call and holds no timer that could make one."""
    import threading

    app = make_app(config, platform)
    calls = []  # whether the screen was shown at each call of the platform
    held = threading.Event()  # set: calls go through; clear: a call waits for it (a poll under way)
    held.set()
    original = platform.cluster.workloads
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ClusterScreen)

        def workloads():
            calls.append(screen._visible)
            assert held.wait(60)
            return original()

        platform.cluster.workloads = workloads
        timers = []  # every timer the screen sets from now on
        for name in ("set_timer", "set_interval"):
            def scheduling(*args, _set=getattr(screen, name), **kwargs):
                timers.append(timer := _set(*args, **kwargs))
                return timer
            setattr(screen, name, scheduling)

        def hidden_and_idle() -> None:
            assert screen._poll_timer is None and not screen._visible
            pending = [t for t in timers if t._task is not None and not t._task.done()]
            assert pending == [], "a hidden screen holds a timer that would poll"

        # hidden while its next poll is set
        await wait_for(pilot, lambda: screen._poll_timer in timers and not screen._polling, what="a poll set by a timer")
        await pilot.press("2")
        await wait_for(pilot, lambda: not screen._visible and not screen._polling, what="the screen hidden")
        hidden_and_idle()
        shown = len(calls)
        await pilot.press("1")
        await wait_for(pilot, lambda: len(calls) > shown, what="polling again once shown")

        # hidden while a poll is under way: its end sets no next poll
        held.clear()
        await wait_for(pilot, lambda: len(calls) > shown + 1 and screen._polling, what="a poll under way")
        await pilot.press("2")
        await wait_for(pilot, lambda: not screen._visible, what="the screen hidden")
        held.set()
        await wait_for(pilot, lambda: not screen._polling, what="the poll under way to end")
        hidden_and_idle()
        shown = len(calls)
        await pilot.press("1")
        await wait_for(pilot, lambda: len(calls) > shown, what="polling again once shown")
    held.set()
    assert all(calls), f"a call while hidden: {calls}"


async def test_a_dead_cluster_shows_a_sentence_not_a_crash(home, monkeypatch):
    from dlptui.config import load_config

    monkeypatch.setenv("KUBECONFIG", str(home / "no-such-kubeconfig"))
    monkeypatch.setenv("PACHD_ADDRESS", "grpc://127.0.0.1:9")
    monkeypatch.setenv("DET_MASTER", "http://127.0.0.1:9")
    app = make_app(load_config(profile="cluster"))
    async with app.run_test(size=SIZE) as pilot:
        state = app.screen.query_one("#state")
        await wait_for(pilot, lambda: str(state.render()).strip(), timeout=90, what="the state line")
        sentence = str(state.render())
        assert "Traceback" not in sentence and sentence.rstrip().endswith((".", ")"))
        assert "─ Pods of the platform ─" in drawn(app)[0]  # the pane's title, as drawn
        assert app.is_running
