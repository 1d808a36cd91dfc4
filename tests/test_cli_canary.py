"""Canary analysis, promote and abort, shadow, rollback and the prediction log through the headless
commands, on a real trained home: Envoy in front of real model servers."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import no_repr, run, run_json

pytestmark = pytest.mark.slow


def _two_versions(platform):
    [experiment] = platform.training.list_experiments()
    checkpoints = sorted(platform.training.checkpoints(experiment.id), key=lambda c: c.batch)
    platform.registry.register("dogcat-model", experiment.id, checkpoints[0].uuid)
    platform.registry.register("dogcat-model", experiment.id, checkpoints[-1].uuid)
    return experiment


def test_canary_figures_promote_shadow_rollback_and_the_prediction_log(trained_platform, sample_dir, capsys):
    experiment = _two_versions(trained_platform)
    images = sorted(str(p) for p in sample_dir.rglob("*.jpg"))[:6]
    started = time.time()
    deployment = run_json(capsys, "deploy", "dogcat-model@1", "--name", "cd", "--wait")
    try:
        assert deployment["state"] == "available", deployment["detail"]
        code, out, err = run(capsys, "rollback", "cd")
        assert code == 2 and "nothing to roll back" in err

        # a canary taking half the traffic: figures per version, from Envoy's statistics and the log
        canary = run_json(capsys, "deploy", "dogcat-model@1", "--name", "cd", "--canary", "2", "--traffic", "50", "--wait")
        assert (canary["version"], canary["canary_version"], canary["canary_traffic"]) == (1, 2, 50)
        for _ in range(4):
            assert run(capsys, "predict", *images, "--deployment", "cd")[0] == 0
        described = run_json(capsys, "deployment", "cd")
        figures = {f["role"]: f for f in described["versions"]}
        assert (figures["primary"]["version"], figures["primary"]["traffic"]) == (1, 50)
        assert (figures["canary"]["version"], figures["canary"]["traffic"]) == (2, 50)
        assert figures["primary"]["requests"] + figures["canary"]["requests"] == 24
        assert figures["primary"]["requests"] > 0 and figures["canary"]["requests"] > 0
        assert figures["primary"]["errors"] == 0 and figures["canary"]["errors"] == 0
        for f in figures.values():
            assert sum(f["labels"].values()) == f["requests"] and set(f["labels"]) <= {"cat", "dog"}
            assert f["p50_ms"] is not None and f["p95_ms"] >= f["p50_ms"] > 0
        code, out, _ = run(capsys, "deployment", "describe", "cd")
        assert code == 0 and "canary v2" in out and "P95" in out
        # words, not Python: local times, no None, no tuple of log lines; the log once, without Seldon's config dumps
        assert "canary: version 2 takes 50% of the requests" in no_repr(out) and "log_tail" not in out
        assert "App Config" not in out and "Gunicorn Config" not in out and "MODEL_LOADING" not in out
        assert out.count("loaded (attempt") == 1
        code, logs, _ = run(capsys, "deployment", "logs", "cd", "--lines", "500")
        assert code == 0 and logs.count("Seldon Core version") == 1 and "App Config" not in logs
        assert "App Config" in "".join(run_json(capsys, "deployment", "logs", "cd", "--lines", "500"))  # --json: as written

        # the prediction log: every prediction, JSON Lines, --since
        code, out, _ = run(capsys, "predictions", "cd", "--json")
        rows = [json.loads(line) for line in out.splitlines()]
        assert len(rows) == 24 and [r["id"] for r in rows] == sorted(r["id"] for r in rows)
        assert {r["role"] for r in rows} == {"primary", "canary"}
        assert all(r["status"] == 200 and r["label"] in ("cat", "dog") and len(r["input_sha256"]) == 64 for r in rows)
        assert all(r["time"] >= started and r["input_bytes"] > 0 and r["request_id"] for r in rows)
        assert {(r["role"], r["version"]) for r in rows} == {("primary", 1), ("canary", 2)}
        code, out, _ = run(capsys, "predictions", "cd", "--json", "--since", str(time.time() + 60))
        assert code == 0 and out == ""
        code, out, err = run(capsys, "predictions", "cd", "--since", "yesterday-ish")
        assert code == 2 and "--since" in err

        # lineage from one logged prediction
        chain = run_json(capsys, "lineage", f"cd#{rows[0]['id']}")
        assert [s["kind"] for s in chain["steps"]] == ["prediction", "version", "checkpoint", "experiment", "data commit"]
        assert chain["steps"][1]["id"] == f"dogcat-model@{rows[0]['version']}"
        assert chain["steps"][3]["id"] == experiment.id

        # promote: the canary takes it all; abort has nothing left to remove
        code, out, _ = run(capsys, "deployment", "promote", "cd")
        assert code == 0 and "version 2" in out
        after = run_json(capsys, "deployment", "cd")
        assert (after["version"], after["canary_version"]) == (2, None)
        assert [f["role"] for f in after["versions"]] == ["primary"]
        code, _, err = run(capsys, "deployment", "abort", "cd")
        assert code == 2 and "no canary" in err

        # shadow: version 1 sees every request, answers none, agrees (or not) with the primary
        shadowed = run_json(capsys, "deployment", "shadow", "cd", "1")
        assert (shadowed["version"], shadowed["shadow_version"]) == (2, 1)
        code, out, _ = run(capsys, "predict", *images, "--deployment", "cd", "--json")
        assert {r["version"] for r in json.loads(out)} == {2}, "a shadow's answer is never returned"
        deadline = time.monotonic() + 60  # the shadow's copies are sent beside the answers: waited for, with a bound
        while time.monotonic() < deadline:
            shadow_rows = [json.loads(line) for line in run(capsys, "predictions", "cd", "--json")[1].splitlines()
                           if json.loads(line)["role"] == "shadow"]
            if len(shadow_rows) == len(images):
                break
            time.sleep(0.2)
        assert len(shadow_rows) == len(images) and {r["version"] for r in shadow_rows} == {1}
        figures = {f["role"]: f for f in run_json(capsys, "deployment", "cd")["versions"]}
        assert figures["shadow"]["traffic"] == 100 and 0.0 <= figures["shadow"]["agreement"] <= 1.0
        assert run_json(capsys, "deployment", "shadow", "cd", "none")["shadow_version"] is None

        # rollback: back to the whole routing that served before the promotion (version 1, its canary at 50 %)
        code, out, _ = run(capsys, "rollback", "cd")
        assert code == 0 and "from version 2 to version 1" in out
        back = run_json(capsys, "deployment", "describe", "cd")
        assert (back["version"], back["canary_version"], back["canary_traffic"], back["shadow_version"]) == (1, 2, 50, None)
        history = run_json(capsys, "deployment", "history", "cd")
        assert [(h["change"], h["from_version"], h["to_version"], h["canary"], h["shadow"]) for h in history] == [
            ("deployed", None, 1, None, None), ("canary", 1, 1, 2, None), ("promoted", 1, 2, None, None),
            ("shadow", 2, 2, None, 1), ("shadow removed", 2, 2, None, None), ("rolled back", 2, 1, 2, None)]
        code, out, _ = run(capsys, "predict", images[0], "--deployment", "cd", "--json")
        assert json.loads(out)[0]["version"] in (1, 2)
    finally:
        run(capsys, "undeploy", "cd", "--yes")


def test_predict_right_after_deploy_without_wait_waits_for_the_model(trained_platform, sample_dir, capsys):
    _two_versions(trained_platform)
    image = str(next(sample_dir.rglob("*.jpg")))
    started = run_json(capsys, "deploy", "dogcat-model@1", "--name", "quick")  # no --wait
    try:
        assert started["state"] in ("starting", "available")
        code, out, err = run(capsys, "predict", image, "--deployment", "quick", "--json")
        assert code == 0, err
        [result] = json.loads(out)
        assert result["label"] in ("cat", "dog") and result["version"] == 1
    finally:
        run(capsys, "undeploy", "quick", "--yes")


def test_a_deployment_made_by_an_alias_says_when_the_alias_names_another_version(trained_platform, capsys):
    """deploy dogcat-model@production remembers production; promoting the canary leaves production on the old
    version, which describe says; `promote --move-alias` moves it along."""
    _two_versions(trained_platform)
    assert run(capsys, "model", "promote", "dogcat-model", "1", "--to", "production")[0] == 0
    deployment = run_json(capsys, "deploy", "dogcat-model@production", "--name", "al", "--canary", "2", "--traffic", "50",
                          "--wait")
    try:
        assert (deployment["alias"], deployment["version"], deployment["canary_version"]) == ("production", 1, 2)
        described = run_json(capsys, "deployment", "describe", "al")
        assert described["alias"] == "production" and described["alias_note"] is None

        code, out, _ = run(capsys, "deployment", "promote", "al")
        assert code == 0 and "production names version 1 of dogcat-model, but version 2 serves" in out
        described = run_json(capsys, "deployment", "describe", "al")
        assert described["version"] == 2 and "production names version 1" in described["alias_note"]
        code, out, _ = run(capsys, "deployment", "describe", "al")
        assert "production names version 1 of dogcat-model, but version 2 serves" in out

        run(capsys, "rollback", "al")  # version 1 with its canary again
        code, out, _ = run(capsys, "deployment", "promote", "al", "--move-alias")
        assert code == 0 and "production names version 2 now" in out
        assert trained_platform.registry.get_version("dogcat-model", "production").version == 2
        assert run_json(capsys, "deployment", "describe", "al")["alias_note"] is None
    finally:
        run(capsys, "undeploy", "al", "--yes")
