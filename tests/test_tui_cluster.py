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
    app = make_app(config, platform)
    calls = []
    original = platform.cluster.workloads
    platform.cluster.workloads = lambda: calls.append(1) or original()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(calls) >= 1, what="the first poll")
        screen = app.screen
        assert isinstance(screen, ClusterScreen)
        await pilot.press("2")
        await wait_for(pilot, lambda: not screen._polling, what="the poll in flight to end")
        assert screen._poll_timer is None and not screen._visible
        hidden = len(calls)
        await pilot.pause(2.5)  # longer than the poll period
        assert len(calls) == hidden
        await pilot.press("1")
        await wait_for(pilot, lambda: len(calls) > hidden, what="polling again once shown")


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
