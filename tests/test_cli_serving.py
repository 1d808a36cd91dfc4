"""The headless commands of the registry and serving: `models`, `deploy`, `deployments`, `predict`,
`lineage`, `undeploy`, run through `dlptui.cli.main` over a really trained home."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run, run_json

pytestmark = pytest.mark.slow


def test_registry_commands(trained_platform, capsys):
    [experiment] = trained_platform.training.list_experiments()
    checkpoints = sorted(trained_platform.training.checkpoints(experiment.id), key=lambda c: c.batch)

    v1 = run_json(capsys, "models", "register", "--experiment", experiment.id, "--checkpoint", checkpoints[0].uuid)
    assert v1["version"] == 1 and v1["checkpoint_uuid"] == checkpoints[0].uuid
    code, out, _ = run(capsys, "models", "register", "--experiment", experiment.id, "--checkpoint", checkpoints[1].uuid)
    assert code == 0 and "dogcat-model@2" in out

    [model] = run_json(capsys, "models")
    assert model["name"] == "dogcat-model" and model["versions"] == 2

    code, out, _ = run(capsys, "models", "promote", "dogcat-model", "2", "--to", "staging")
    assert code == 0 and "staging moved from no version to version 2" in out
    run(capsys, "models", "promote", "dogcat-model", "1", "--to", "staging")
    versions = run_json(capsys, "models", "versions", "dogcat-model")
    assert [v["aliases"] for v in versions] == [["staging"], []]
    history = run_json(capsys, "models", "history", "dogcat-model")
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 2), (2, 1)]

    code, out, err = run(capsys, "models", "promote", "dogcat-model", "9", "--to", "production")
    assert code == 3 and out == "" and err.startswith("dlptui: ") and "no version 9" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "models", "versions", "ghost")
    assert code == 3 and "no model named 'ghost'" in err
    code, _, err = run(capsys, "--read-only", "models", "promote", "dogcat-model", "2", "--to", "production")
    assert code == 6 and "read-only" in err
    assert "production" not in trained_platform.registry.get_model("dogcat-model").aliases


def test_deploy_predict_lineage_undeploy(trained_platform, sample_dir, tmp_path, capsys):
    [experiment] = trained_platform.training.list_experiments()
    trained_platform.registry.register("dogcat-model", experiment.id)
    trained_platform.registry.promote("dogcat-model", 1, "production")

    code, _, err = run(capsys, "deploy", "ghost@1")
    assert code == 3 and "no model named 'ghost'" in err
    code, _, err = run(capsys, "predict", str(next(sample_dir.rglob("*.jpg"))), "--deployment", "nowhere")
    assert code == 3 and "no deployment named 'nowhere'" in err

    deployment = run_json(capsys, "deploy", "dogcat-model@production", "--wait")
    try:
        assert deployment["state"] == "available", deployment["detail"]
        [listed] = run_json(capsys, "deployments")
        assert {k: listed[k] for k in ("name", "model", "version", "state")} == {
            "name": "dogcat-deploy",
            "model": "dogcat-model",
            "version": 1,
            "state": "available",
        }
        assert listed["endpoint"] == deployment["endpoint"]

        images = sorted(str(p) for p in sample_dir.rglob("*.jpg"))[:2]
        not_image = tmp_path / "notes.txt"
        not_image.write_text("this is not a picture")
        code, out, _ = run(capsys, "predict", *images, str(tmp_path / "missing.jpg"), str(not_image), "--json")
        assert code != 0, "a failed image makes the exit code non-zero"
        results = json.loads(out)
        assert [r["image"] for r in results] == [*images, str(tmp_path / "missing.jpg"), str(not_image)]
        for good in results[:2]:
            assert good["label"] in ("cat", "dog") and "error" not in good
            assert set(good["probabilities"]) == {"cat", "dog"}
            assert good["latency_ms"] > 0
        assert "no file" in results[2]["error"] and "label" not in results[2]
        assert "not an image" in results[3]["error"]
        code, out, _ = run(capsys, "predict", images[0])
        assert code == 0 and "P(CAT)" in out

        chain = run_json(capsys, "lineage", "dogcat-deploy")
        assert [s["kind"] for s in chain["steps"]] == ["deployment", "version", "checkpoint", "experiment", "data commit"]
        assert chain["steps"][1]["id"] == "dogcat-model@1"
        assert chain["steps"][3]["id"] == experiment.id
        assert chain["steps"][4]["id"] == f"dogcat-repo@{experiment.data_commit}".replace("dogcat-repo", experiment.data_repo)
        assert chain["missing"] == ""
        by_version = run_json(capsys, "lineage", "dogcat-model@production")
        assert by_version["steps"] == chain["steps"][1:]

        # a canary of version 2 next to version 1, then gone again
        checkpoints = trained_platform.training.checkpoints(experiment.id)
        other = next(c for c in checkpoints if c.uuid != trained_platform.registry.get_version("dogcat-model", 1).checkpoint_uuid)
        trained_platform.registry.register("dogcat-model", experiment.id, other.uuid)
        canary = run_json(capsys, "deploy", "dogcat-model@production", "--canary", "2", "--traffic", "40", "--wait")
        assert (canary["version"], canary["canary_version"], canary["canary_traffic"]) == (1, 2, 40)
        assert canary["endpoint"] == deployment["endpoint"] and canary["state"] == "available"
        code, out, _ = run(capsys, "deployments")
        assert code == 0 and "v2 40%" in out
        gone = run_json(capsys, "deploy", "dogcat-model@production", "--canary", "2", "--traffic", "0")
        assert gone["canary_version"] is None
    finally:
        code, out, _ = run(capsys, "undeploy", "dogcat-deploy", "--yes")
    assert code == 0 and "Undeployed" in out
    assert run_json(capsys, "deployments") == []
