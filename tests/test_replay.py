"""Inputs kept when asked, served for real: the deployment's real model server keeps the images of its last N
answered predictions (off by default), `dlptui replay` sends them to a version here, offline, and the console
shows one. The server-less rules (the cap, retention, modes, turning off) are tests/test_kept_inputs.py."""

from __future__ import annotations

import hashlib
import json

import pytest

from dlptui.platform.model import Feedback
from tests.fixtures.console import DEPLOYMENT, wait_available
from tests.fixtures.tui import SIZE, drawn, make_app, wait_for
from tests.helpers import run

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(deployed, monkeypatch):
    home = deployed.config.home
    monkeypatch.setenv("DLPTUI_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home.parent / "config"))
    monkeypatch.delenv("DLPTUI_PROFILE", raising=False)
    monkeypatch.delenv("DLPTUI_CONFIG", raising=False)
    try:
        yield deployed
    finally:
        deployed.serving.set_keep_inputs(DEPLOYMENT, 0)


def one_sentence(err: str, said: str) -> None:
    assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_inputs_are_kept_when_asked_and_replayed_on_the_same_and_another_version(cli, capsys, tmp_path):
    from dlptui.actions.sample import draw

    platform = cli
    folder = platform.config.home / "serving" / DEPLOYMENT
    images = [draw(label, seed) for label, seed in (("cat", 11), ("dog", 12), ("cat", 13), ("dog", 14), ("cat", 15), ("dog", 16))]

    platform.serving.predict(DEPLOYMENT, images[0], "first.jpg")
    assert not (folder / "inputs").exists()  # off by default: nothing written
    code, out, err = run(capsys, "replay", DEPLOYMENT, "--to", "dogcat-model@1")
    assert code == 3 and out == ""
    one_sentence(err, f"keeps no inputs to replay; turn keeping on with `dlptui deployment keep-inputs {DEPLOYMENT} 1000`")

    code, out, err = run(capsys, "deployment", "keep-inputs", DEPLOYMENT, "4", "--cap", "64MiB")
    assert code == 0 and out.strip() == f"{DEPLOYMENT} keeps the images of its last 4 predictions (0 images held, 0 B of 64.0 MiB).", err
    answers = [platform.serving.predict(DEPLOYMENT, image, f"{i}.jpg") for i, image in enumerate(images)]
    assert all(a.error is None for a in answers), answers
    kept = {p.name: p for p in (folder / "inputs").iterdir()}
    assert {name: p.read_bytes() for name, p in kept.items()} == {hashlib.sha256(i).hexdigest(): i for i in images[2:]}
    assert (folder / "inputs").stat().st_mode & 0o777 == 0o700 and {p.stat().st_mode & 0o777 for p in kept.values()} == {0o600}
    code, out, _ = run(capsys, "deployment", "describe", DEPLOYMENT, "--json")
    assert json.loads(out)["kept_inputs"] == {"keep": 4, "cap_bytes": 64 * 1024 * 1024, "images": 4,
                                              "bytes": sum(map(len, images[2:]))}

    truth = {answers[2].id: "cat", answers[3].id: "cat", answers[4].id: "cat"}  # one of them wrong whatever it said
    platform.serving.feedback(DEPLOYMENT, [Feedback(ident, label=label) for ident, label in truth.items()])

    code, out, err = run(capsys, "replay", DEPLOYMENT, "--to", "dogcat-model@1", "--json")
    same = json.loads(out)
    assert code == 0 and same["replayed"] == 4 and same["different"] == [], err
    assert (same["agreement"]["agreed"], same["agreement"]["rate"]) == (4, 1.0) and 0 < same["agreement"]["low"] < 1
    logged_right = sum(a.label == truth[a.id] for a in answers[2:5])
    assert same["accuracy"]["judged"] == 3 and same["accuracy"]["logged"]["right"] == same["accuracy"]["replayed"]["right"] == logged_right

    code, out, err = run(capsys, "replay", DEPLOYMENT, "--to", "dogcat-model@2", "--json")
    other = json.loads(out)
    assert code == 0 and other["to"] == {"model": "dogcat-model", "version": 2} and other["replayed"] == 4, err
    rows = {r["id"]: r for r in other["predictions"]}
    assert set(rows) == {int(a.id) for a in answers[2:]} and all(r["logged"] == a.label for r, a in zip(rows.values(), answers[2:]))
    assert other["different"] == [i for i, r in rows.items() if r["replayed"] != r["logged"]]
    assert other["agreement"]["agreed"] == 4 - len(other["different"])
    assert other["accuracy"]["replayed"]["right"] == sum(rows[int(i)]["replayed"] == t for i, t in truth.items())
    code, out, err = run(capsys, "replay", DEPLOYMENT, "--to", "dogcat-model@2", "--since", "1h")
    assert code == 0, err
    assert out.startswith(f"Replayed 4 kept inputs of {DEPLOYMENT} since ") and "on dogcat-model@2 (answered by dogcat-model@1)" in out
    assert "Accuracy on the 3 inputs with feedback: as logged" in out and "Agreement with the logged answers:" in out

    for argv, code_said in ((("--to", "dogcat-model@9"), (3, "dogcat-model")), (("--to", "dogcat-model"), (2, "names no version")),
                            (("--to", "dogcat-model@1", "--since", "yesterday"), (2, "--since takes an age"))):
        code, out, err = run(capsys, "replay", DEPLOYMENT, *argv)
        assert (code, out) == (code_said[0], ""), err
        one_sentence(err, code_said[1])
    newest = kept[hashlib.sha256(images[5]).hexdigest()]
    newest.write_bytes(images[0])  # damaged on disk
    code, out, err = run(capsys, "replay", DEPLOYMENT, "--to", "dogcat-model@1")
    assert code == 1 and out == ""
    one_sentence(err, f"The kept image of {DEPLOYMENT}#{answers[5].id} ({newest}) is damaged")
    newest.unlink()
    code, out, err = run(capsys, "replay", DEPLOYMENT, "--to", "dogcat-model@1")
    assert code == 3 and out == ""
    one_sentence(err, f"The kept image of {DEPLOYMENT}#{answers[5].id} is gone")

    code, out, err = run(capsys, "deployment", "keep-inputs", DEPLOYMENT, "off")
    assert code == 0 and "keeps no inputs" in out and not (folder / "inputs").exists(), err


def test_deploy_keeps_inputs_from_the_start_and_undeploy_takes_them(cli, capsys):
    platform = cli
    code, out, err = run(capsys, "deploy", "dogcat-model@1", "--name", "kept-deploy", "--keep-inputs", "5", "--wait")
    folder = platform.config.home / "serving" / "kept-deploy"
    try:
        assert code == 0 and "kept-deploy keeps the images of its last 5 predictions" in out, err
        wait_available(platform.serving, "kept-deploy")
        from dlptui.actions.sample import draw

        image = draw("dog", 21)
        assert platform.serving.predict("kept-deploy", image, "dog.jpg").error is None
        assert (folder / "inputs" / hashlib.sha256(image).hexdigest()).read_bytes() == image
    finally:
        platform.serving.undeploy("kept-deploy")
    assert not folder.exists()  # the kept inputs went with the deployment


async def test_the_console_shows_the_image_a_logged_prediction_was_sent(deployed):
    from dlptui.tui.dialogs.serving import KeptImageDialog, PredictionsDialog
    from dlptui.tui.screens.deployments import DeploymentsScreen
    from dlptui.tui.widgets.resource_table import ResourceTable
    from tests.fixtures.serving import image_bytes

    platform = deployed
    platform.serving.set_keep_inputs(DEPLOYMENT, 10)
    try:
        answer = platform.serving.predict(DEPLOYMENT, image_bytes((30, 200, 90), (64, 48), "PNG"), "green.png")
        app = make_app(platform.config, platform, start="deployments")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, DeploymentsScreen)
            table = screen.query_one("#deployments", ResourceTable)
            await wait_for(pilot, lambda: DEPLOYMENT in table.all_keys, what="the deployment row")
            table.focus()
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, PredictionsDialog), what="the prediction log")
            assert "i: image" in drawn(app)[0]
            await pilot.press("i")  # the newest first: the green one
            await wait_for(pilot, lambda: isinstance(app.screen, KeptImageDialog), what="the kept image")
            await pilot.pause()
            words, raw = drawn(app)
            assert f"Input of {DEPLOYMENT}#{answer.id}: {answer.label} by dogcat-model@1 (primary)" in words
            assert "64x48" in words and "30;200;90" in raw  # the picture itself, in its colour
    finally:
        platform.serving.set_keep_inputs(DEPLOYMENT, 0)
