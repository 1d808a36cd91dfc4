"""Verdicts shown (issue 20 item 2): a canary's verdict per metric against its primary and a shadow's agreement,
counted from the prediction log since the canary (or shadow) started, in `deployment describe` (and --json) and on
the Deployments screen."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dlptui.platform import deployment_policy as policy
from dlptui.platform.model import DeploymentChange, Disagreement

REPO = Path(__file__).resolve().parents[1]


def _change(t: float, primary: int, canary: int | None = None, share: int = 0, shadow: int | None = None) -> DeploymentChange:
    return DeploymentChange(t, "x", "me", "m", None, primary, canary=canary, share=share, shadow=shadow)


def test_a_canary_starts_at_the_first_entry_of_its_present_run():
    history = [_change(1, 1), _change(2, 1, canary=2, share=10), _change(3, 1, canary=2, share=25),
               _change(4, 1, canary=2, share=25, shadow=3)]
    assert policy.started(history, "canary", 2, 1) == 2  # traffic steps and a shadow do not restart it
    assert policy.started(history, "shadow", 3, 1) == 4
    again = [*history, _change(5, 1), _change(6, 1, canary=2, share=10)]
    assert policy.started(again, "canary", 2, 1) == 6  # removed and set again: a new run
    assert policy.started([*history, _change(5, 2, canary=2)], "canary", 2, 1) is None  # not what the last entry left


def test_compare_counts_both_versions_since_the_start_with_feedback_and_shadow_pairs(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "serving"))
    import prediction_log as writer

    from dlptui.platform.local import prediction_log as reader

    path = tmp_path / "predictions.sqlite"
    log = writer.PredictionLog(str(path))

    def record(version: int, role: str, label: str | None, status: int = 200, request: str = "", latency: float = 5.0) -> int:
        return log.record(model="m", version=version, role=role, request_id=request, input_sha256="0" * 64, input_bytes=1,
                          label=label, probabilities={"cat": 0.5, "dog": 0.5} if label else {}, latency_ms=latency, status=status)

    before = record(1, "primary", "cat")
    ids = [record(1, "primary", "cat", request="r1", latency=4.0), record(1, "primary", None, status=500, request="r2"),
           record(2, "canary", "dog", request="r3", latency=9.0), record(2, "shadow", "cat", request="r1"),
           record(2, "shadow", "dog", request="r3")]
    first, second = reader.get(path, "d", before).time, reader.get(path, "d", ids[0]).time
    assert first < second  # a commit and a read apart
    since = (first + second) / 2
    log.record_feedback(ids[0], "cat", None)  # right
    log.record_feedback(ids[2], "cat", None)  # wrong

    primary, canary, *_ = reader.compare(path, since, 1, 2, "canary")
    assert (primary.requests, primary.errors, primary.latencies_ms, primary.right, primary.judged) == (2, 1, (4.0,), 1, 1)
    assert (canary.requests, canary.errors, canary.latencies_ms, canary.right, canary.judged) == (1, 0, (9.0,), 0, 1)
    log.record_feedback(ids[2], "dog", None)  # replaced: the remembered result is read again
    assert reader.compare(path, since, 1, 2, "canary")[1].right == 1
    asked, answered = record(1, "primary", "dog", request="r4"), record(2, "shadow", "cat", request="r4")
    _, shadow, agreed, paired, disagreements = reader.compare(path, since, 1, 2, "shadow")
    assert (shadow.requests, agreed, paired) == (3, 1, 2)  # r1 agreed, r4 not; r3 was the canary's, not the primary's
    assert disagreements == (Disagreement(asked, "dog", answered, "cat"),)
    assert reader.compare(path, 0.0, 1, 2, "canary")[0].requests == 4  # from the start, the first one too


@pytest.fixture
def cli_on(served, monkeypatch):
    """The CLI in this process on the session's serving home."""
    home = served.config.home
    monkeypatch.setenv("DLPTUI_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("DLPTUI_PROFILE", raising=False)
    monkeypatch.delenv("DLPTUI_CONFIG", raising=False)
    return served


@pytest.mark.slow
async def test_a_canarys_verdicts_and_a_shadows_agreement_in_describe_and_on_the_screen(cli_on, tiny_checkpoints, capsys):
    from dlptui.platform.model import Feedback
    from dlptui.tui.widgets.verdict_lines import VerdictLines
    from tests.fixtures.serving import image_bytes, version_of, wait_state
    from tests.fixtures.tui import SIZE, make_app, wait_for
    from tests.helpers import run, run_json

    serving, name = cli_on.serving, "verdicts"
    serving.deploy(name, version_of(tiny_checkpoints[0], 1))
    try:
        wait_state(serving, name)
        code, out, _ = run(capsys, "deployment", "describe", name)
        assert code == 0 and "Canary" not in out and run_json(capsys, "deployment", name)["verdicts"]["canary"] is None
        for i in range(3):  # before the canary: not counted in its verdicts
            serving.predict(name, image_bytes((i * 40, 90, 90)))
        serving.set_canary(name, version_of(tiny_checkpoints[1], 2), 50)
        wait_state(serving, name)
        answers = [serving.predict(name, image_bytes((10 + i * 8, 200 - i * 5, 60))) for i in range(24)]
        serving.feedback(name, [Feedback(p.id, label="cat") for p in answers])
        [entry] = [h for h in serving.history(name) if h.change == "canary"]

        judged = run_json(capsys, "deployment", name)["verdicts"]["canary"]
        assert (judged["version"], judged["primary"], judged["since"], judged["traffic"]) == (2, 1, entry.time, 50)
        metrics = {m["metric"]: m for m in judged["metrics"]}
        assert set(metrics) == {"error_rate", "p50_latency", "p95_latency", "accuracy"}
        by_version = {v: [p for p in answers if p.version == v] for v in (1, 2)}
        assert (metrics["error_rate"]["primary_n"], metrics["error_rate"]["canary_n"]) == (len(by_version[1]), len(by_version[2]))
        assert metrics["accuracy"]["guarded"] is False and metrics["accuracy"]["canary_n"] == len(by_version[2])
        assert metrics["accuracy"]["canary"] == pytest.approx(sum(p.label == "cat" for p in by_version[2]) / len(by_version[2]))
        assert judged["verdict"] == "not yet" and judged["canary_requests"] == len(by_version[2])  # 24 requests prove nothing

        code, out, _ = run(capsys, "deployment", "describe", name)
        lines = out.splitlines()
        head = next(line for line in lines if line.startswith("Canary v2 against v1 since "))
        assert "Not yet:" in head
        assert any(line.startswith("  error rate: not yet") for line in lines)
        assert any(line.startswith("  accuracy: ") and "predictions with feedback" in line for line in lines)

        app = make_app(cli_on.config, cli_on, start="deployments")
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#deployments")
            await wait_for(pilot, lambda: name in table.all_keys, what="the deployment")
            table.select_key(name)
            widget = app.screen.query_one("#verdicts", VerdictLines)
            await wait_for(pilot, lambda: "Canary v2 against v1" in str(widget.content), what="the verdicts")
            drawn = widget.content
            assert "error rate: not yet" in str(drawn) and "p95 latency" in str(drawn)
            styles = {str(span.style) for span in drawn.spans}
            assert "yellow" in styles  # not yet, coloured

        serving.set_canary(name, None, 0)
        serving.set_shadow(name, version_of(tiny_checkpoints[1], 2))
        wait_state(serving, name)
        for i in range(5):
            serving.predict(name, image_bytes((200, 10 + i * 30, 10)))
        deadline = time.monotonic() + 30
        while (shadow := run_json(capsys, "deployment", name)["verdicts"]["shadow"])["paired"] < 5:
            assert time.monotonic() < deadline, shadow  # a mirrored request is logged after the primary's answer
            time.sleep(0.1)
        assert (shadow["version"], shadow["primary"], shadow["paired"]) == (2, 1, 5)
        assert len(shadow["disagreements"]) == 5 - shadow["agreed"]  # every pair it answered otherwise, both ids
        assert all(d["primary_label"] != d["shadow_label"] for d in shadow["disagreements"])
        assert run_json(capsys, "deployment", name)["verdicts"]["canary"] is None
        code, out, _ = run(capsys, "deployment", "describe", name)
        assert "Shadow v2 against v1 since " in out and "of 5 paired predictions" in out
    finally:
        serving.undeploy(name)


def test_on_the_cluster_a_canary_is_judged_on_seldons_metrics_in_prometheus(cluster_config):
    """SeldonDeployments on the real kube-apiserver, Seldon's executor histogram in the Prometheus stand-in: the
    canary's verdicts count from its history entry (the window asked of Prometheus), the shadow says what the cluster
    cannot pair; without prometheus_url, one sentence."""
    from dlptui.actions import verdicts
    from dlptui.platform import Platform
    from tests.fixtures.kube_cluster import judged_cluster, stored_version as version

    with judged_cluster(cluster_config, "judged") as (platform, name, prom):
        serving = platform.serving
        serving.deploy(name, version(1))
        assert verdicts.judge(platform, name).lines() == []  # neither canary nor shadow: nothing to say
        serving.set_canary(name, version(2), 10)
        serving.set_shadow(name, version(3))
        [entry] = [h for h in serving.history(name) if h.change == "canary"]
        report = verdicts.judge(platform, name)
        judged = report.to_json()["canary"]
        assert (judged["version"], judged["primary"], judged["since"], judged["traffic"]) == (2, 1, entry.time, 10)
        metrics = {m["metric"]: m for m in judged["metrics"]}
        assert set(metrics) == {"error_rate", "p50_latency", "p95_latency"}  # no feedback in Seldon's metrics
        assert (metrics["error_rate"]["primary_n"], metrics["error_rate"]["canary_n"]) == (9000, 1000)
        assert metrics["error_rate"]["verdict"] == "worse" and judged["verdict"] == "worse"  # 6 % against 1 %
        assert metrics["p50_latency"]["canary_n"] == 1000
        window = int(prom.queries[0].split("[")[1].split("s]")[0])
        assert abs(window - (time.time() - entry.time)) < 5  # since the canary's entry
        lines = report.lines()
        assert lines[0][0].startswith("Canary v2 against v1 since ") and lines[0][1] == "worse"
        assert lines[-1][0].startswith("Shadow v3 against v1") and "not known on the cluster" in lines[-1][0]

        bare = Platform(cluster_config)
        try:
            said = verdicts.judge(bare, name)
            assert said.canary is None and "prometheus_url" in said.note
        finally:
            bare.close()
