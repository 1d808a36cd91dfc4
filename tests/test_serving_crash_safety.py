"""A crash in the middle of a deployment change leaves no orphan model server, and one unreadable
state file is one failed deployment in the listing, not a listing that fails."""

from __future__ import annotations

import json

import pytest

from dlptui.errors import PlatformError
from dlptui.platform.local import backends, processes
from dlptui.platform.model import DeploymentState
from tests.fixtures.serving import version_of, wait_state


def test_a_server_started_by_a_deploy_that_crashed_is_stopped_by_the_next(serving_platform, tiny_checkpoints, monkeypatch):
    serving = serving_platform.serving
    started = []
    real = backends.start_backend

    def start_then_crash(version, folder):
        started.append(real(version, folder))
        raise SystemExit("the console died here")  # after the spawn, before anything else is recorded

    monkeypatch.setattr(backends, "start_backend", start_then_crash)
    with pytest.raises(SystemExit):
        serving.deploy("crashes-once", version_of(tiny_checkpoints[0], 1))
    orphan = started[0].record
    assert processes.alive(orphan)
    monkeypatch.setattr(backends, "start_backend", real)
    try:
        serving.deploy("crashes-once", version_of(tiny_checkpoints[0], 1))
        assert not processes.alive(orphan), "the orphan of the crashed deploy still runs"
        assert wait_state(serving, "crashes-once").state is DeploymentState.AVAILABLE
    finally:
        serving.undeploy("crashes-once")
        processes.stop_tree(orphan)


def test_an_unreadable_state_is_one_failed_deployment(serving_platform):
    serving = serving_platform.serving
    broken = serving.root / "broken-state"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "state.json").write_text("{ not json")
    try:
        listed = {d.name: d for d in serving.list_deployments()}
        assert listed["broken-state"].state is DeploymentState.FAILED
        assert "cannot be read" in listed["broken-state"].detail and "\n" not in listed["broken-state"].detail
        with pytest.raises(PlatformError, match="cannot be read"):
            serving.get_deployment("broken-state")
    finally:
        (broken / "state.json").unlink()
        broken.rmdir()


def test_the_state_file_is_written_whole(tmp_path):
    from dlptui.platform.local.serving import _write_json

    path = tmp_path / "state.json"
    _write_json(path, {"a": 1})
    _write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2} and [p.name for p in tmp_path.iterdir()] == ["state.json"]
