"""The loop closed with the gate in it (issue 20 item 5): a data commit is split, trained on, registered, made a gated
canary of the deployment that serves the model and promoted by the gate, with no person; lineage shows every step."""

from __future__ import annotations

import json
import time

import pytest

from dlptui.actions import loop
from dlptui.platform import deployment_policy as policy
from tests.helpers import run, run_json

POLICY = """\
alpha = 0.05
steps = [50, 100]
min_requests = 10
[guard]
error_rate = 0.2
"""
LOOP_S = 600.0  # a safety net for two pipelines and a tiny training on a loaded machine, not a measure of speed


def _until(what: str, found, timeout: float = LOOP_S):
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s"
        time.sleep(0.3)


def _canary_job(platform, retrain_commit: str):
    """The canary pipeline's job on the retrain pipeline's output of `retrain_commit` (a split commit), once ended."""
    from dlptui.actions.pipelines import wait_for_input

    retrain = wait_for_input(platform.pipelines, "dogs-and-cats-retrain", f"dogs-and-cats@{retrain_commit}", timeout_s=LOOP_S)
    assert retrain.output_commit is not None, retrain.reason
    return wait_for_input(platform.pipelines, loop.CANARY_PIPELINE, str(retrain.output_commit), timeout_s=LOOP_S)


def test_the_loop_is_off_by_default_and_one_command_turns_it_on_and_off(platform, capsys):
    try:
        code, out, _ = run(capsys, "pipeline", "loop", "status")
        assert code == 0 and out.startswith("The loop is off")
        code, _, err = run(capsys, "pipeline", "loop", "on")  # before there is a split to train on
        assert code == 3 and "Input repo 'dogs-and-cats' of pipeline 'dogs-and-cats-retrain' does not exist" in err
        assert platform.pipelines.list_pipelines() == []
        platform.data.create_repo("dogs-and-cats")
        code, out, _ = run(capsys, "pipeline", "loop", "on")
        assert code == 0 and "created dogs-and-cats-retrain; created dogs-and-cats-canary" in out
        names = {p.name: p for p in platform.pipelines.list_pipelines()}
        assert names[loop.CANARY_PIPELINE].inputs[0].startswith("dogs-and-cats-retrain") and loop.is_on(platform.pipelines)
        assert run_json(capsys, "pipeline", "loop", "status")["on"] is True
        code, out, _ = run(capsys, "pipeline", "loop", "off")
        assert code == 0 and out.startswith("The loop is off: dogs-and-cats-canary is stopped")
        assert not loop.is_on(platform.pipelines) and platform.pipelines.inspect_pipeline("dogs-and-cats-retrain").state == "running"
        code, out, _ = run(capsys, "pipeline", "loop", "on")
        assert code == 0 and "started dogs-and-cats-canary" in out and "dogs-and-cats-retrain runs already" in out
    finally:
        for p in platform.pipelines.list_pipelines():
            platform.pipelines.stop_pipeline(p.name)


def test_canary_refuses_what_it_cannot_release_in_one_sentence(platform, capsys):
    code, _, err = run(capsys, "canary", "nosuch")
    assert code == 3 and "nosuch" in err and "Traceback" not in err
    code, _, err = run(capsys, "canary", "nosuch", "--gate", "off")
    assert code == 2 and err.strip() == "dlptui: A released version is always gated: give --gate auto or a policy file, not off."
    code, _, err = run(capsys, "canary", "nosuch", "--traffic", "100")
    assert code == 2 and "1 and 99 percent" in err


@pytest.mark.slow
def test_the_loop_from_a_data_commit_to_a_promoted_version_runs_with_no_person(platform, tmp_path, capsys):
    from dlptui.actions.datasets import import_sample
    from dlptui.actions.serving import deploy, wait_until_settled
    from dlptui.platform import gate_runner
    from tests.fixtures.serving import image_bytes
    from tests.fixtures.training import TINY

    gate_file = tmp_path / "gate.toml"
    gate_file.write_text(POLICY)
    env = {"TRAIN_CONFIG": str(TINY), "GATE_POLICY": str(gate_file), "CANARY_TRAFFIC": "50", "DLPTUI_GATE_INTERVAL": "0.3"}
    serving = platform.serving
    try:
        # the first commit, then the loop turned on: a model is trained and registered; nothing serves it, so no canary
        first = import_sample(platform.data, repo="dogs-and-cats", count=20, size=16, pipelines=platform.pipelines)
        assert "created dogs-and-cats-canary" in loop.turn_on(platform.pipelines, env=env)
        job = _canary_job(platform, first.ref.commit)
        said = json.loads(platform.data.get_file(loop.CANARY_PIPELINE, "master", "/canary.json"))
        assert job.state.value == "success" and said["version"] == 1 and said["deployment"] is None, (job.reason, said)
        assert "no deployment serves dogcat-model" in said["sentence"]
        assert platform.registry.get_version("dogcat-model", 1).notes == f"registered by pipeline job {job.id} ({loop.CANARY_PIPELINE})"

        # a person deploys it once; from here on the loop needs nobody
        deploy(platform, "dogcat-deploy", "dogcat-model", 1)
        assert wait_until_settled(platform, "dogcat-deploy", 240).state.value == "available"
        second = import_sample(platform.data, repo="dogs-and-cats", count=24, size=16, pipelines=platform.pipelines)
        job = _canary_job(platform, second.ref.commit)
        assert job.state.value == "success", job.reason
        d = serving.get_deployment("dogcat-deploy")
        assert (d.version, d.canary_version, d.canary_traffic) == (1, 2, 50) and d.gate["guard"] == {"error_rate": 0.2}
        made = [h for h in serving.history("dogcat-deploy") if h.by == loop.LOOP]
        assert [h.change for h in made] == ["canary"] and f"(pipeline job {job.id})" in made[0].reason

        # users ask; the gate promotes the canary, with no person
        wait_until_settled(platform, "dogcat-deploy", 240)
        for i in range(100):
            if serving.get_deployment("dogcat-deploy").canary_version is None:
                break
            assert serving.predict("dogcat-deploy", image_bytes((i * 7 % 256, 120, 255 - i * 2))).error is None
        promoted = _until("the promotion", lambda: next((h for h in serving.history("dogcat-deploy")
                                                          if h.by == policy.GATE and h.change == "promoted"), None), 120)
        assert promoted.to_version == 2 and promoted.reason.startswith("Promote the canary from 50 %: it is no different")

        chain = run_json(capsys, "lineage", "dogcat-model@2")
        kinds = [s["kind"] for s in chain["steps"]]
        assert kinds == ["verdict", "canary", "version", "checkpoint", "experiment", "data commit", "job", "data commit"], kinds
        verdict, canary, experiment = chain["steps"][0], chain["steps"][1], chain["steps"][4]
        assert "promoted by dlptui gate: Promote the canary from 50 %" in verdict["detail"] and "error rate" in verdict["detail"]
        assert f"pipeline job {job.id}" in canary["detail"] and experiment["id"] in canary["detail"]
        assert "started by pipeline job" in experiment["detail"] and chain["steps"][-1]["id"].startswith("dogs-and-cats-raw@")
    finally:
        for p in platform.pipelines.list_pipelines():
            platform.pipelines.stop_pipeline(p.name)
        gate_runner.stop(platform.config)
        for d in serving.list_deployments():
            serving.undeploy(d.name)
