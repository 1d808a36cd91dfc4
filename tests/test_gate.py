"""The gate (issue 20 item 3): a deployment's canary aborted, stepped or promoted by its policy with no person, each
action a history entry with its reason and numbers; bad policies refused in one sentence before any change."""

from __future__ import annotations

import time

import pytest

from dlptui.platform import deployment_policy as policy
from tests.helpers import run, run_json

POLICY = """\
alpha = 0.05
steps = [50, 100]
min_requests = 10
[guard]
error_rate = 0.2
accuracy = 0.3
"""


def test_a_bad_policy_or_an_unknown_deployment_is_one_sentence_and_changes_nothing(platform, tmp_path, capsys):
    bad = tmp_path / "gate.toml"
    bad.write_text('alpha = 0.05\nguards = { error_rate = 0.01 }\n')
    code, out, err = run(capsys, "deployment", "gate", "nosuch", str(bad))
    assert code == 2 and err.strip() == ("dlptui: gate.toml: unknown field 'guards'; a policy has alpha, guard, "
                                         "min_requests, steps.")
    code, _, err = run(capsys, "deployment", "gate", "nosuch", "auto")
    assert code == 3 and "no deployment named 'nosuch'" in err and "Traceback" not in err
    code, _, err = run(capsys, "deploy", "dogcat-model", "--canary", "2", "--gate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "There is no policy file" in err
    (tmp_path / "gate.yaml").write_text("steps: [50, 20]\n")
    code, _, err = run(capsys, "deploy", "dogcat-model", "--gate", str(tmp_path / "gate.yaml"))
    assert code == 2 and "steps must be rising whole percentages" in err
    assert platform.serving.list_deployments() == []  # refused before the registry or the serving part was asked


def test_the_auto_policy_in_words(platform):
    from dlptui.actions import gate
    from dlptui.analysis import default_policy, parse_policy

    assert gate.summary(default_policy()) == (
        "error rate within ±0.5 points, p50 latency within ±10 %, p95 latency within ±10 %; traffic steps 10 %, 25 %, "
        "50 %, then promotion; 500 canary requests a step; at most 5 % false aborts or promotions")
    assert gate.summary(parse_policy(POLICY, "p.toml")).startswith("error rate within ±20 points, accuracy within ±30 points")


def test_a_step_counts_the_requests_since_the_gate_set_its_share():
    from types import SimpleNamespace

    from dlptui.actions import gate
    from dlptui.platform.model import DeploymentChange

    def change(share, by="me", numbers=None, canary=2):
        return DeploymentChange(0.0, "canary", by, "m", 1, 1, canary=canary, share=share, numbers=numbers)

    def counted(history, requests, traffic):
        platform = SimpleNamespace(serving=SimpleNamespace(history=lambda name: history))
        return gate.step_requests(platform, "d", requests, traffic)

    set_by_hand = [change(0, canary=None), change(10)]
    assert counted(set_by_hand, 700, 10) == 700  # since the canary started
    stepped = [*set_by_hand, change(25, policy.GATE, {"canary_requests": 640, "traffic": 25})]
    assert counted(stepped, 700, 25) == 60  # since the gate stepped it
    assert counted([*stepped, change(25)], 700, 25) == 60  # a later entry (a shadow) keeps the step
    assert counted([*stepped, change(40)], 700, 40) == 700  # a person moved it: since the canary started


@pytest.fixture
def gated_home(served, monkeypatch):
    """The CLI in this process on the session's serving home, and a gate runner that looks every 0.3 s."""
    home = served.config.home
    monkeypatch.setenv("DLPTUI_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("DLPTUI_GATE_INTERVAL", "0.3")
    monkeypatch.delenv("DLPTUI_PROFILE", raising=False)
    monkeypatch.delenv("DLPTUI_CONFIG", raising=False)
    return served


def _gate_entry(serving, name: str, change: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [h for h in serving.history(name) if h.by == policy.GATE and h.change == change]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, [(h.change, h.by, h.reason) for h in serving.history(name)]
        time.sleep(0.2)


@pytest.mark.slow
def test_the_gate_runner_promotes_an_equal_canary_and_aborts_a_worse_one_with_no_person(gated_home, tiny_checkpoints,
                                                                                          tmp_path, capsys):
    """Real model servers behind Envoy, real feedback through the prediction log, the gate runner a process of its
    own. Ground truth is what each version answered (both always right) for the equal canary; for the worse one it
    is the primary's answer and the opposite of the canary's (the canary always wrong)."""
    from dlptui.actions import gate
    from dlptui.platform import gate_runner
    from dlptui.platform.model import Feedback
    from tests.fixtures.serving import image_bytes, version_of, wait_state

    platform, name = gated_home, "gated"
    serving, config = platform.serving, platform.config
    policy_file = tmp_path / "gate.toml"
    policy_file.write_text(POLICY)
    images = [image_bytes((17 * i % 256, 90 + 3 * i % 160, 200 - 5 * i % 180)) for i in range(120)]
    serving.deploy(name, version_of(tiny_checkpoints[0], 1))
    try:
        wait_state(serving, name)
        said = run_json(capsys, "deployment", "gate", name, str(policy_file))
        assert said["gate"]["guard"] == {"error_rate": 0.2, "accuracy": 0.3} and said["next"] is None
        assert not gate_runner.running(config)  # a gate with no canary needs no runner

        # the equal canary: both versions right on every prediction
        deployment = serving.set_canary(name, version_of(tiny_checkpoints[1], 2), 50)
        assert gate.wake(platform, deployment)
        wait_state(serving, name)
        answers = [serving.predict(name, image) for image in images]
        assert all(a.error is None for a in answers)
        assert min(sum(a.version == v for a in answers) for v in (1, 2)) >= 40  # about half each
        code, out, _ = run(capsys, "deployment", "describe", name)
        assert code == 0 and "Gate: error rate within ±20 points, accuracy within ±30 points" in out
        assert serving.get_deployment(name).canary_version == 2  # no feedback yet: accuracy has no verdict, no move
        from dlptui.actions import background

        runner = [r for r in background.listing(platform) if r.part == "gate"]
        assert [r.serves for r in runner] == ["the gate runner of this home (it judges gated canaries)"]  # dlptui status
        serving.feedback(name, [Feedback(a.id, label=a.label) for a in answers])
        promoted = _gate_entry(serving, name, "promoted")
        assert promoted.to_version == 2 and promoted.canary is None and promoted.from_version == 1
        assert promoted.reason.startswith("Promote the canary from 50 %: it is no different after ")
        assert "accuracy" in promoted.reason and promoted.numbers["action"] == "promote"
        assert promoted.numbers["canary_requests"] == sum(a.version == 2 for a in answers)
        assert promoted.numbers["judgement"]["verdict"] == "no difference"
        d = serving.get_deployment(name)
        assert (d.version, d.canary_version) == (2, None)

        # the worse canary: version 1 again, now wrong on every prediction
        deployment = serving.set_canary(name, version_of(tiny_checkpoints[0], 1), 50)
        gate.wake(platform, deployment)
        wait_state(serving, name)
        answers = [serving.predict(name, image) for image in images[:60]]
        flip = {"cat": "dog", "dog": "cat"}
        serving.feedback(name, [Feedback(a.id, label=a.label if a.version == 2 else flip[a.label]) for a in answers])
        aborted = _gate_entry(serving, name, "canary removed")
        assert aborted.reason.startswith("Abort the canary at 50 %: accuracy") and aborted.to_version == 2
        assert aborted.numbers["judgement"]["verdict"] == "worse"
        d = serving.get_deployment(name)
        assert (d.version, d.canary_version) == (2, None)

        # the history says why, in words; the runner ends once no gated canary is left
        code, out, _ = run(capsys, "deployment", "history", name)
        assert code == 0 and "dlptui gate" in out and "Abort the canary at 50 %" in out
        rows = run_json(capsys, "deployment", "history", name)
        assert [r["change"] for r in rows if r["by"] == policy.GATE] == ["promoted", "canary removed"]
        deadline = time.monotonic() + 30
        while gate_runner.running(config):
            assert time.monotonic() < deadline, (gate_runner.root(config) / gate_runner.LOG).read_text()
            time.sleep(0.2)
        log = (gate_runner.root(config) / gate_runner.LOG).read_text()
        assert f"{name}: Promote the canary from 50 %" in log and "no gated canary is left" in log
    finally:
        gate_runner.stop(config)
        serving.undeploy(name)


def test_on_the_cluster_the_gate_aborts_a_canary_through_the_seldondeployment(cluster_config):
    """The real kube-apiserver, Seldon's metrics in the Prometheus stand-in: 6 % errors against 1 % is worse; one look
    removes the canary from the SeldonDeployment and keeps the reason in its history annotation."""
    from dlptui.actions import gate
    from tests.fixtures.kube_cluster import judged_cluster, stored_version as version

    with judged_cluster(cluster_config, "gated") as (platform, name, _):
        serving = platform.serving
        serving.deploy(name, version(1))
        serving.set_gate(name, {"alpha": 0.05, "steps": [10, 50, 100], "min_requests": 500, "guard": {"error_rate": 0.005}})
        serving.set_canary(name, version(2), 10)
        assert serving.get_deployment(name).gate["guard"] == {"error_rate": 0.005}
        assert gate.look(platform, name, act=False).action.kind == "abort"  # read-only: judged, nothing changed
        assert serving.get_deployment(name).canary_version == 2
        from dlptui.platform import Platform

        bare = Platform(cluster_config)  # without prometheus_url: no numbers; the gate says so, and moves nothing
        try:
            assert gate.look(bare, name) is None
            said = gate.lines(bare, name)
            assert said[1].startswith("  The gate cannot judge the canary yet: ") and "prometheus_url" in said[1]
        finally:
            bare.close()
        taken = gate.look(platform, name)
        assert taken.acted and taken.action.kind == "abort"
        d = serving.get_deployment(name)
        assert (d.version, d.canary_version) == (1, None) and d.gate is not None  # the gate stays for the next one
        last = serving.history(name)[-1]
        assert (last.change, last.by) == ("canary removed", policy.GATE)
        assert last.reason.startswith("Abort the canary at 10 %: error rate") and last.numbers["canary_requests"] == 1000
        assert gate.look(platform, name) is None  # nothing left to gate
        serving.set_gate(name, None)
        assert serving.get_deployment(name).gate is None
        assert [h.change for h in serving.history(name)][-1] == "gate removed"


async def test_the_console_shows_the_gate_starts_its_runner_and_tells_what_it_did(cluster_config, monkeypatch):
    """On the cluster profile (the real kube-apiserver, Seldon's metrics in the Prometheus stand-in): the Deployments
    screen shows the gate's policy and next action beside the verdicts; the console's look starts the gate runner (a
    process of its own, with the profile's environment), which aborts the worse canary through the SeldonDeployment;
    the console tells it in a notification."""
    from dlptui.platform import gate_runner
    from dlptui.tui.widgets.verdict_lines import VerdictLines
    from tests.fixtures.kube_cluster import judged_cluster, stored_version as version
    from tests.fixtures.tui import SIZE, drawn, make_app, wait_for

    with judged_cluster(cluster_config, "watched") as (platform, name, prom):
        monkeypatch.setenv("DLPTUI_PROMETHEUS_URL", prom.url)  # what the runner's own config reads
        monkeypatch.setenv("DLPTUI_GATE_INTERVAL", "0.3")
        config = platform.config
        try:
            serving = platform.serving
            serving.deploy(name, version(1))
            serving.set_gate(name, {"alpha": 0.05, "steps": [10, 50, 100], "min_requests": 500, "guard": {"error_rate": 0.005}})
            serving.set_canary(name, version(2), 10)
            app = make_app(config, platform, start="deployments")
            async with app.run_test(size=SIZE) as pilot:
                table = app.screen.query_one("#deployments")
                await wait_for(pilot, lambda: name in table.all_keys, what="the deployment")
                table.select_key(name)
                widget = app.screen.query_one("#verdicts", VerdictLines)
                # before the console's first look at the gates (every 5 s) starts the runner: the gate's lines, drawn at
                # the end of the verdicts' pane (a person tabs to it and presses End)
                await wait_for(pilot, lambda: "Next: Abort the canary at 10 %" in str(widget.content), what="the gate's lines")
                app.screen.query_one("#analysis").focus()
                await pilot.press("end")
                await wait_for(pilot, lambda: "Next: Abort the canary at 10 %: error rate" in drawn(app)[0], what="the lines drawn")
                assert "Gate: error rate within ±0.5 points; traffic steps 10 %, 50 %, then promotion" in str(widget.content)
                words = drawn(app)[0]  # in a pane of their own that scrolls, so the server log keeps its room
                assert f"Verdicts, gate and drift of {name}" in words and f"Server log of {name}" in words
                await wait_for(pilot, lambda: any(n.message.startswith(f"{name}: Abort the canary at 10 %: error rate")
                                                  for n in app._notifications), timeout=60, what="the gate's notification")
                last = serving.history(name)[-1]
                assert (last.change, last.by) == ("canary removed", policy.GATE) and serving.get_deployment(name).canary_version is None
                await wait_for(pilot, lambda: "No canary to judge; the gate guards the next one" in drawn(app)[0],
                               what="the gate waiting for the next canary")
        finally:
            gate_runner.stop(config)


@pytest.mark.slow
def test_a_canary_trained_on_swapped_labels_is_aborted_on_the_accuracy_its_feedback_shows(trained_platform, sample_dir,
                                                                                             tmp_path, monkeypatch):
    """The demo trained twice on the synthetic sample, the second time with every cat named a dog and every dog a
    cat; both served for real, the second as a gated canary; ground truth is what each image really shows (the
    sample draws cats and dogs apart). The gate aborts the canary on accuracy and says so with the numbers."""
    import shutil

    from dlptui.actions import gate
    from dlptui.actions.datasets import import_kaggle
    from dlptui.actions.sample import draw
    from dlptui.platform import gate_runner
    from dlptui.platform.model import DataRef, ExperimentState, Feedback
    from tests.fixtures.serving import wait_state
    from tests.fixtures.training import TINY, wait_for

    platform = trained_platform
    monkeypatch.setenv("DLPTUI_GATE_INTERVAL", "0.3")
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for image in sample_dir.glob("*.jpg"):
        label, rest = image.name.split(".", 1)
        shutil.copy(image, swapped / f"{'dog' if label == 'cat' else 'cat'}.{rest}")
    ref = import_kaggle(platform.data, swapped, repo="swapped").ref
    [right] = platform.training.list_experiments()
    wrong = wait_for(platform.training, platform.training.create_experiment(TINY, DataRef("swapped", ref.commit)).id)
    assert wrong.state is ExperimentState.COMPLETED, wrong.error
    platform.registry.register("dogcat-model", right.id)
    platform.registry.register("dogcat-model", wrong.id)
    policy_file = tmp_path / "gate.toml"
    policy_file.write_text('steps = [50, 100]\nmin_requests = 20\n[guard]\nerror_rate = 0.2\naccuracy = 0.1\n')
    serving, name = platform.serving, "swapped-canary"
    serving.deploy(name, platform.registry.get_version("dogcat-model", 1))
    try:
        wait_state(serving, name)
        gate.attach(platform, name, str(policy_file))
        deployment = serving.set_canary(name, platform.registry.get_version("dogcat-model", 2), 50)
        assert gate.wake(platform, deployment)
        wait_state(serving, name)
        truth = {}
        for seed in range(160):  # new drawings the models never saw, half cats, half dogs
            label = ("cat", "dog")[seed % 2]
            answer = serving.predict(name, draw(label, 9000 + seed, size=96))
            assert answer.error is None, answer.error
            truth[answer.id] = (label, answer)
            if len(truth) % 20 == 0:
                serving.feedback(name, [Feedback(i, label=t) for i, (t, _) in list(truth.items())[-20:]])
            if serving.get_deployment(name).canary_version is None:
                break
        aborted = _gate_entry(serving, name, "canary removed", timeout=60)
        assert aborted.reason.startswith("Abort the canary at 50 %: accuracy worse"), aborted.reason
        metrics = {m["metric"]: m for m in aborted.numbers["judgement"]["metrics"]}
        assert metrics["accuracy"]["canary"] < metrics["accuracy"]["primary"]
        answered = [a for _, a in truth.values()]
        right_share = lambda v: (sum(t == a.label for t, a in truth.values() if a.version == v)  # noqa: E731
                                 / max(1, sum(a.version == v for a in answered)))
        assert right_share(2) < 0.5 < right_share(1)  # what the prediction log's truth says, too
    finally:
        gate_runner.stop(platform.config)
        serving.undeploy(name)
