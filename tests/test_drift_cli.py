"""Drift and outliers as a user meets them: deploy a trained version (its reference is computed in the background from
its own training commit), send images like the sample's, then inverted ones; `dlptui drift`, `deployment describe`,
`deployment history` and `predictions --outliers` tell what happened, with a retrain suggestion. And the mistakes:
a version with no recorded training commit, a commit no longer in the store, a version given where a deployment is
asked for, an unknown deployment."""

from __future__ import annotations

import base64
import io
import json
import time

import pytest

from dlptui.actions.sample import draw
from tests.helpers import run, run_json

NAME = "drifty"


def send(endpoint: str, images: list[bytes]) -> None:
    import httpx

    with httpx.Client(timeout=60) as client:
        for image in images:
            answer = client.post(endpoint, json={"binData": base64.b64encode(image).decode()})
            assert answer.status_code == 200, answer.text


def held_back(count: int, start: int = 1000) -> list[bytes]:
    """Images drawn like the sample's (which uses seeds 0 to 149), none of them in it."""
    return [draw("cat" if i % 2 else "dog", start + i) for i in range(count)]


def inverted(count: int) -> list[bytes]:
    from PIL import Image, ImageOps

    out = []
    for image in held_back(count, start=5000):
        buf = io.BytesIO()
        ImageOps.invert(Image.open(io.BytesIO(image)).convert("RGB")).save(buf, "JPEG")
        out.append(buf.getvalue())
    return out


def wait_for_reference(platform, version, give_up_s: float = 300.0):
    from dlptui.platform import references

    deadline = time.monotonic() + give_up_s
    while (found := references.load(platform.config, version)) is None or references.computing(platform.config, version):
        assert time.monotonic() < deadline, f"no reference after {give_up_s:.0f} s: {references.path_of(platform.config, version)}"
        time.sleep(0.5)
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_deployed_version_drifts_on_inverted_images_and_says_what_would_retrain_it(trained_platform, capsys, monkeypatch):
    monkeypatch.setenv("DLPTUI_DRIFT_REFERENCE_ON_DEPLOY", "1")
    [experiment] = trained_platform.training.list_experiments()
    trained_platform.registry.register("dogcat-model", experiment.id)
    deployment = run_json(capsys, "deploy", "dogcat-model@1", "--name", NAME, "--wait")
    try:
        assert deployment["state"] == "available", deployment["detail"]
        reference = wait_for_reference(trained_platform, trained_platform.registry.get_version("dogcat-model", 1))
        assert reference.data == f"{experiment.data_repo}@{experiment.data_commit}"
        assert reference.images == 300 and int(reference.held_out.sum()) == 60  # the sample's eval split, never trained on

        send(deployment["endpoint"], held_back(100))
        report = run_json(capsys, "drift", NAME)
        [version] = report["versions"]
        assert (version["version"], version["role"], version["state"]) == (1, "primary", "stable"), version
        assert version["latest"]["window"] == 100 and version["latest"]["p_value"] >= 0.01
        assert (version["reference"]["images"], version["reference"]["held_out"]) == (300, 60) and len(version["scores"]) == 2
        assert version["latest"]["reference"] == 60  # the drift tests compare with the held-out images alone  # windows ending at 50 and 100
        assert version["outliers"] <= 3 and version["scored"] == 100  # about 1 % of images like the training ones

        send(deployment["endpoint"], inverted(200))
        code, out, err = run(capsys, "deployment", "describe", NAME)
        assert code == 0, err
        drift_line = next(line for line in out.splitlines() if line.startswith("Drift: Version 1 (primary): drifting"))
        assert "over its last 200 predictions against 60 held-out images" in drift_line, drift_line
        suggestion = next(line for line in out.splitlines() if line.startswith("Version 1 drifts from the data it was trained on"))
        assert f"({experiment.data_repo}@{experiment.data_commit[:12]})" in suggestion and "score" in suggestion
        assert f"`dlptui train --data {experiment.data_repo}@master`" in suggestion  # its commit is the newest
        assert suggestion.endswith("Nothing retrains by itself."), suggestion

        described = run_json(capsys, "deployment", "describe", NAME)["drift"]
        [change] = described["changes"]
        assert (change["version"], change["from"], change["to"]) == (1, "stable", "drifting") and change["p_value"] < 0.01
        code, out, _ = run(capsys, "deployment", "history", NAME)
        assert code == 0 and "drift: drifting (p" in out and "drift test" in out

        code, out, err = run(capsys, "predictions", NAME, "--outliers", "--limit", "300", "--json")
        flagged = [json.loads(line) for line in out.splitlines()]
        assert code == 0 and len(flagged) >= 20, err
        assert all(row["outlier"] and row["outlier_score"] > row["outlier_threshold"] for row in flagged)
        assert sum(row["id"] > 100 for row in flagged) >= 0.9 * len(flagged)  # the inverted ones came after the first 100
        code, out, _ = run(capsys, "drift", NAME, "--since", "1h")
        assert code == 0 and "drift of drifty since" in out and "stable -> drifting" in out
    finally:
        run(capsys, "undeploy", NAME, "--yes")


@pytest.mark.slow
def test_a_reference_whose_training_commit_is_gone_is_one_sentence(trained_platform, capsys):
    [experiment] = trained_platform.training.list_experiments()
    trained_platform.registry.register("dogcat-model", experiment.id)
    assert run(capsys, "data", "delete", experiment.data_repo, "--yes")[0] == 0
    code, out, err = run(capsys, "drift", "dogcat-model@1", "--reference")
    assert code == 3 and out == "", err
    [line] = err.strip().splitlines()
    assert line.startswith(f"dlptui: The training data of dogcat-model@1, {experiment.data_repo}@{experiment.data_commit[:12]}, "
                           "is no longer in the data store") and line.endswith("."), line


def test_a_version_with_no_recorded_training_commit_is_one_sentence(platform):
    from dlptui.actions import drift_reference
    from dlptui.errors import NotAvailable
    from dlptui.platform.model import ModelVersion

    with pytest.raises(NotAvailable) as refused:
        drift_reference.training_data(platform, ModelVersion("dogcat-model", 4, "no-such-checkpoint", 0.0))
    sentence = str(refused.value)
    assert sentence.startswith("dogcat-model@4 records no training data commit") and "\n" not in sentence
    assert sentence.endswith(".") and refused.value.exit_code == 6


def test_drift_names_a_deployment_and_a_version_only_with_reference(platform, capsys):
    code, _, err = run(capsys, "drift", "dogcat-model@1")
    assert code == 2 and "give a deployment, not 'dogcat-model@1'" in err
    code, _, err = run(capsys, "drift", "nowhere")
    assert code == 3 and "no deployment named 'nowhere'" in err
    code, _, err = run(capsys, "drift", "dogcat-model@1", "--reference")
    assert code == 3 and err.count("\n") == 1, err  # no such model: the registry's sentence


def test_the_reference_on_deploy_is_a_setting_the_environment_overrides(tmp_path):
    from dlptui.config import load_config
    from dlptui.errors import InvalidInput

    file = tmp_path / "config.toml"
    env = {"DLPTUI_CONFIG": str(file), "DLPTUI_HOME": str(tmp_path / "home")}
    file.write_text("")
    assert load_config(env=env).drift_reference_on_deploy is True
    file.write_text("drift_reference_on_deploy = false\n")
    assert load_config(env=env).drift_reference_on_deploy is False
    assert load_config(env={**env, "DLPTUI_DRIFT_REFERENCE_ON_DEPLOY": "1"}).drift_reference_on_deploy is True
    file.write_text('drift_reference_on_deploy = "sometimes"\n')
    with pytest.raises(InvalidInput) as refused:
        load_config(env=env)
    assert "drift_reference_on_deploy" in str(refused.value) and "true or false" in str(refused.value)
