"""What served when, on a history written by real changes: SeldonDeployments on the real kube-apiserver (the
cluster profile keeps the history in the object's annotation; nothing serves, so this is fast), read back by
`deployment history NAME --at` / `--timeline` and drawn by the Deployments screen's timeline pane at 150 and at 80
columns."""

from __future__ import annotations

import time

import pytest

from dlptui.platform.model import CheckpointStorage, ModelVersion
from dlptui.render import timeline as tl
from dlptui.text import timestamp
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for
from tests.helpers import run, run_json


def version(n: int) -> ModelVersion:
    return ModelVersion(model="dogcat-model", version=n, checkpoint_uuid=f"ckpt-{n}", created=0.0,
                        checkpoint_location="/nowhere", checkpoint_storage=CheckpointStorage("gcs", f"ckpt-{n}", bucket="b"))


@pytest.fixture
def changed(cluster_platform):
    """A deployment through deploy (v1), a canary (v2 at 10 %), a shadow (v3), then the canary at 25 %; its name."""
    name = f"when-{int(time.time() * 1000) % 100000}"
    serving = cluster_platform.serving
    serving.deploy(name, version(1))
    try:
        serving.set_canary(name, version(2), 10)
        serving.set_shadow(name, version(3))
        serving.set_canary(name, version(2), 25)
        yield name
    finally:
        serving.undeploy(name)


def test_history_at_each_entry_and_the_timeline_in_the_cli(cluster_platform, changed, capsys):
    history = cluster_platform.serving.history(changed)
    assert [h.change for h in history][:2] == ["deployed", "canary"]
    shadowed = next(h for h in history if h.shadow == 3)
    code, out, err = run(capsys, "--profile", "cluster", "deployment", "history", changed, "--at", str(shadowed.time))
    assert code == 0, err
    assert out.startswith(f"At {timestamp(shadowed.time)}, {changed} served dogcat-model version 1 on 90% and "
                          f"version 2 (canary) on 10%; version 3 shadowed every request. Set by \"shadow\"")
    now = run_json(capsys, "--profile", "cluster", "deployment", "history", changed, "--at", "0s")
    assert now["routing"] == {"model": "dogcat-model", "primary": 1, "canary": 2, "share": 25, "shadow": 3}
    code, out, _ = run(capsys, "--profile", "cluster", "deployment", "history", changed, "--at", str(history[0].time - 1))
    assert code == 0 and "was not deployed yet" in out
    code, out, err = run(capsys, "--profile", "cluster", "deployment", "history", changed, "--timeline")
    assert code == 0, err
    assert out.startswith(f"What {changed} served when:\n")
    rows = {line[:2]: line for line in out.splitlines() if line[:1] == "v"}
    assert set(rows) == {"v1", "v2", "v3"} and tl.CANARY in rows["v2"] and tl.SHADOW in rows["v3"]
    assert tl.LEGEND in out


async def test_the_deployments_screen_draws_the_timeline_within_the_pane(cluster_platform, changed):
    for size in (SIZE, (80, 40)):
        app = make_app(cluster_platform.config, cluster_platform, start="deployments")
        async with app.run_test(size=size) as pilot:
            table = app.screen.query_one("#deployments")
            await wait_for(pilot, lambda: changed in table.all_keys, what="the deployment")
            table.select_key(changed)
            pane = app.screen.query_one("#timeline")
            await wait_for(pilot, lambda: f"What {changed} served when" in drawn(app)[0], what="the timeline pane")
            await wait_for(pilot, lambda: tl.SHADOW in drawn(app)[0], what="the bands")
            words = drawn(app)[0].splitlines()
            band = next(line for line in words if "│ v2 " in line and tl.CANARY in line)
            assert "25%" in band and len(band.rstrip()) <= size[0]
            assert any("│ v1 " in line and tl.PRIMARY in line and "75%" in line for line in words)
            assert any("│ v3 " in line and tl.SHADOW in line for line in words)
            assert any(line.rstrip("│ ").endswith("now") for line in words)
            styles = {str(span.style) for span in pane.render().spans}  # coloured by role
            assert all(any(colour in style for style in styles) for colour in ("green", "yellow", "cyan"))


async def test_no_history_yet_is_said(cluster_platform, kube_api):
    """A SeldonDeployment whose history annotation is gone (made or edited without dlptui) says it has none."""
    name = f"bare-{int(time.time() * 1000) % 100000}"
    cluster_platform.serving.deploy(name, version(1))
    try:
        namespace = cluster_platform.config.cluster.seldon_namespace
        kube_api[0].patch_namespaced_custom_object("machinelearning.seldon.io", "v1", namespace, "seldondeployments", name,
                                                   {"metadata": {"annotations": {"dlptui.io/history": None}}})
        assert cluster_platform.serving.history(name) == []
        app = make_app(cluster_platform.config, cluster_platform, start="deployments")
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#deployments")
            await wait_for(pilot, lambda: name in table.all_keys, what="the deployment")
            table.select_key(name)
            await wait_for(pilot, lambda: f"What {name} served when" in drawn(app)[0], what="the timeline pane")
            await wait_for(pilot, lambda: tl.NO_HISTORY in drawn(app)[0], what="no history yet")
    finally:
        cluster_platform.serving.undeploy(name)
