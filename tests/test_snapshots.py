"""Snapshots of the six screens at 120x36 (pytest-textual-snapshot), on a real local platform.

The pictures must be the same on every run, so each one shows a state whose text is stable:
the empty platform's first-start view, repos created with fixed names and no commits, a
folder of SYNTHETIC images with fixed names and bytes. What depends on the machine or the
moment (the host's name, load, CPU, memory and GPUs, the temp home's path, the processes that
other tests or sessions left running on the host) is fixed by `steady_readings`, which wraps the
real parts' readings; the parts themselves are the real ones.

Write the baselines with `pytest tests/test_snapshots.py --snapshot-update`; they live in
tests/__snapshots__/test_snapshots/.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dlptui.platform import PARTS
from tests.fixtures.console import write_image_folder
from tests.fixtures.tui import make_app, wait_for

SNAP_SIZE = (120, 36)
GIB = 1 << 30


def steady_readings(platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real parts, with the readings that change from machine to machine or second to second fixed:
    the host's name, load, CPU, memory and GPUs, this process's own usage, and the temp home's path.
    The host view lists every process dlptui started on the host, whichever home: another test's
    deployment or training (a session fixture's, another session's on a shared machine) is left out,
    so the empty platform's picture holds the console alone."""
    cluster, data = platform.cluster, platform.data
    health, context, nodes, workloads = cluster.health, cluster.context, cluster.nodes, cluster.workloads
    data_health = data.health
    home = str(platform.config.home)
    monkeypatch.setattr(cluster, "health", lambda: replace(health(), detail="demo-host: 8 cores, 16.0 GiB memory", version="3.11"))
    monkeypatch.setattr(data, "health", lambda: replace(data_health(), detail=data_health().detail.replace(home, "$DLPTUI_HOME")))
    monkeypatch.setattr(cluster, "context", lambda: {**context(), "host": "demo-host", "load": "0.50 0.40 0.30", "python": "3.11"})
    monkeypatch.setattr(
        cluster,
        "nodes",
        lambda: [
            replace(n, name="demo-host", cpu_capacity=8.0, cpu_allocatable=8.0, cpu_used=2.0, memory_capacity=16 * GIB,
                    memory_allocatable=16 * GIB, memory_used=4 * GIB, gpu_capacity=0, gpu_allocatable=0, gpu_used=None)
            for n in nodes()
        ],
    )
    monkeypatch.setattr(
        cluster,
        "workloads",
        lambda: [replace(w, node="demo-host", started=None, cpu_percent=1.0, memory_bytes=64 << 20)
                 for w in workloads() if w.namespace == "console"],
    )


@pytest.fixture
def snap_platform(platform, monkeypatch):
    steady_readings(platform, monkeypatch)
    return platform


async def settle(pilot, ready=lambda app: True) -> None:
    """Until the header knows every part, the first-start check is done and the screen shows its data."""
    app = pilot.app
    await wait_for(pilot, lambda: len(app.health.services) == len(PARTS) and app.health.context, what="the health poll")
    await wait_for(
        pilot, lambda: not any(w.group == "first-start" and not w.is_finished for w in app.workers),
        what="the first-start check",
    )
    await wait_for(pilot, lambda: ready(app), what="the screen's data")
    await pilot.pause()
    await pilot.pause()  # a table's column widths follow its new rows one refresh later
    await pilot.wait_for_scheduled_animations()


def state_is(text: str):
    return lambda app: text in str(app.screen.query_one("#state").content)


def test_cluster_screen(snap_compare, snap_platform):
    app = make_app(snap_platform.config, snap_platform, start="models")

    async def run_before(pilot):
        # opened once the parts' health is known, so no column was ever sized for "checking..."
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot, lambda app: app.screen.query_one("#nodes").row_count == 1
                     and app.screen.query_one("#workloads").row_count >= 1)

    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_data_screen(snap_compare, snap_platform):
    snap_platform.data.create_repo("dogs-and-cats", "Dogs-vs-Cats images split into train/ and eval/")
    snap_platform.data.create_repo("scratch", "a place to try things")
    app = make_app(snap_platform.config, snap_platform, start="data")

    async def run_before(pilot):
        await settle(pilot, lambda app: app.screen.query_one("ResourceTable").row_count == 2)

    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_experiments_screen(snap_compare, snap_platform):
    app = make_app(snap_platform.config, snap_platform, start="experiments")

    async def run_before(pilot):
        await settle(pilot, lambda app: app.empty_platform)

    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_models_screen(snap_compare, snap_platform):
    app = make_app(snap_platform.config, snap_platform, start="models")

    async def run_before(pilot):
        await settle(pilot, lambda app: app.empty_platform and state_is("No models yet")(app))

    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_deployments_screen(snap_compare, snap_platform):
    app = make_app(snap_platform.config, snap_platform, start="deployments")

    async def run_before(pilot):
        await settle(pilot, lambda app: app.empty_platform and state_is("Nothing is deployed")(app))

    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)


def test_predict_screen(snap_compare, snap_platform, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(write_image_folder(tmp_path / "images"))
    app = make_app(snap_platform.config, snap_platform, start="predict")

    async def run_before(pilot):
        await wait_for(pilot, lambda: len(pilot.app.screen.query_one("#tree").root.children) == 7,
                       what="the images in the tree")
        await pilot.press("down")  # cat.1.jpg
        await settle(pilot, lambda app: app.empty_platform and app.screen.query_one("#preview").caption == "cat.1.jpg  96x96")

    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=run_before)
