"""`dlptui status` lists the home's background processes and `dlptui stop` stops them; the next command that
needs the pipeline runner starts it again, and the pipelines resume. Real runners, datums, trainings, servers."""

from __future__ import annotations

import json
import time

import pytest

from dlptui.errors import InvalidInput, ReadOnlyError
from dlptui.platform.local import processes
from dlptui.platform.local.pipeline_job import PIPELINE_VAR
from tests.helpers import run, run_json

RUNNER_S = 120.0


def wait_until(what, condition, timeout=RUNNER_S):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.05)
    return value


@pytest.fixture
def long_pipeline(home, capsys, tmp_path):
    """Pipeline `upper` over repo `raw`, one datum whose code runs for minutes and counts its runs."""
    runs = tmp_path / "runs"
    run_json(capsys, "data", "create", "raw")
    (tmp_path / "a.txt").write_text("a")
    run_json(capsys, "data", "put", "raw", str(tmp_path / "a.txt"))
    spec = tmp_path / "upper.json"
    spec.write_text(json.dumps({"pipeline": {"name": "upper"}, "input": {"pfs": {"repo": "raw", "glob": "/"}},
                                "transform": {"cmd": ["sh", "-c", f"echo run >> {runs}; sleep 300 & wait"]}}))
    run_json(capsys, "pipeline", "create", "-f", str(spec))
    yield runs
    run(capsys, "pipeline", "stop", "upper")


def datums(home):
    return processes.marked({PIPELINE_VAR: "upper", "DLPTUI_HOME": str(home)})


def test_status_lists_the_runner_and_stop_stops_it_until_the_next_command_needs_it(home, capsys, long_pipeline):
    runs = long_pipeline
    wait_until("the datum did not start", lambda: runs.exists() and datums(home))
    rows = wait_until("status listed no runner", lambda: [r for r in run_json(capsys, "status", "--processes")
                                                           if r["serves"] == "the pipeline runner of this home"])
    record = processes.ProcessRecord.from_json(json.loads((home / "pipelines" / "runner.json").read_text()))
    assert [(r["pid"], r["part"]) for r in rows] == [(record.pid, "pipelines")]
    assert rows[0]["processes"] >= 3 and rows[0]["started"] and rows[0]["memory_bytes"] > 0  # it, its guard, the datum
    code, out, _ = run(capsys, "status")
    assert "background processes of" in out and "the pipeline runner of this home" in out and str(record.pid) in out

    code, _, err = run(capsys, "stop")  # no terminal to ask on
    assert code == InvalidInput.exit_code and "--yes" in err and err.count("\n") == 1
    code, _, err = run(capsys, "--read-only", "stop", "--yes")
    assert code == ReadOnlyError.exit_code and "read-only" in err
    assert processes.alive(record)

    code, out, _ = run(capsys, "stop", "--yes")
    assert code == 0 and f"Stopped the pipeline runner (pid {record.pid})" in out
    assert not processes.alive(record) and datums(home) == []
    assert run_json(capsys, "status", "--processes") == []
    code, out, _ = run(capsys, "status")
    assert "Nothing of" in out and "runs in the background" in out
    assert run_json(capsys, "jobs", "upper")[0]["state"] == "running"  # the job waits for the next runner...

    wait_until("the next command did not start the runner again", lambda: run_json(capsys, "status", "--processes"))
    wait_until("the job did not go on", lambda: runs.read_text().count("run") == 2)  # ...which runs its datum again
    code, out, _ = run(capsys, "stop", "--yes", "--json")
    assert code == 0 and json.loads(out)["running"] == []


def test_stop_on_a_quiet_home_says_so(home, capsys):
    code, out, _ = run(capsys, "stop")
    assert code == 0 and "Nothing of" in out


@pytest.mark.slow
def test_stop_pauses_a_training_and_leaves_deployments_alone_unless_all(tmp_path, monkeypatch, capsys, gate, tiny_checkpoints):
    from dlptui.actions.datasets import import_sample
    from dlptui.config import load_config
    from dlptui.platform import Platform
    from dlptui.platform.model import DeploymentState, ExperimentState
    from tests.fixtures.serving import version_of, wait_state
    from tests.fixtures.training import TINY

    home = tmp_path / "home"
    monkeypatch.setenv("DLPTUI_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("DLPTUI_PROFILE", raising=False)
    platform = Platform(load_config())
    try:
        import_sample(platform.data, repo="dogs-and-cats", count=20, size=16)
        config = gate.folder / "tiny.yaml"
        config.write_text(TINY.read_text())
        gate.close(at=2)
        experiment = platform.training.create_experiment(config)
        gate.wait_held(1, platform.training, experiment.id)
        platform.serving.deploy("stop-test", version_of(tiny_checkpoints[0], 1))
        assert wait_state(platform.serving, "stop-test").state is DeploymentState.AVAILABLE
        rows = run_json(capsys, "status", "--processes")
        assert {r["part"] for r in rows} == {"training", "serving"}, rows
        assert "model server of deployment stop-test (primary, version 1)" in {r["serves"] for r in rows}  # not "python"

        code, out, _ = run(capsys, "stop", "--yes")
        assert code == 0 and f"Paused experiment {experiment.id}" in out and "Deployments keep serving" in out
        assert platform.training.get_experiment(experiment.id).state is ExperimentState.PAUSED
        assert {r["part"] for r in run_json(capsys, "status", "--processes")} == {"serving"}
        assert platform.serving.get_deployment("stop-test").state is DeploymentState.AVAILABLE

        code, out, _ = run(capsys, "stop", "--all", "--yes")
        assert code == 0 and "Envoy of deployment stop-test" in out and "model server of deployment stop-test" in out
        assert run_json(capsys, "status", "--processes") == []
        assert platform.serving.get_deployment("stop-test").state is DeploymentState.FAILED  # until deployed again
    finally:
        gate.open()
        for deployment in platform.serving.list_deployments():
            platform.serving.undeploy(deployment.name)
        for e in platform.training.list_experiments():
            if not e.state.terminal:
                platform.training.kill(e.id)
        platform.close()
