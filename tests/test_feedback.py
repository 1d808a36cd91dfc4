"""Ground truth comes back: Seldon's feedback through the local endpoint (Envoy, then the primary's real model
server), recorded in the prediction log against the prediction it answers; the port's `feedback` checks every
item against the log before it records any."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from dlptui.errors import InvalidInput, NotFound
from dlptui.platform.model import Feedback
from tests.fixtures.serving import DEPLOYMENT, image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def port(served) -> int:
    endpoint = served.serving.get_deployment(DEPLOYMENT).endpoint
    return int(endpoint.removeprefix("http://").split("/")[0].split(":")[1])


def _logged(platform, ident: int):
    return next(p for p in platform.serving.predictions(DEPLOYMENT, limit=100_000) if p.id == ident)


def test_a_prediction_says_its_id_and_feedback_for_it_is_recorded_and_replaced(served):
    prediction = served.serving.predict(DEPLOYMENT, image_bytes((10, 200, 30)), "green.jpg")
    assert prediction.error is None and prediction.id and prediction.id.isdigit(), prediction
    logged = _logged(served, int(prediction.id))
    assert logged.label == prediction.label and logged.truth is None
    other = "dog" if prediction.label == "cat" else "cat"

    [after] = served.serving.feedback(DEPLOYMENT, [Feedback(prediction.id, label=other)])
    assert (after.id, after.truth, after.reward, after.right) == (logged.id, other, None, False)
    [again] = served.serving.feedback(DEPLOYMENT, [Feedback(prediction.id, label=prediction.label, reward=1.0)])
    assert (again.truth, again.reward, again.right) == (prediction.label, 1.0, True)  # the second replaced the first
    assert _logged(served, logged.id).truth == prediction.label


def test_feedback_names_a_prediction_by_its_image_sha256(served):
    image = image_bytes((240, 240, 20))
    prediction = served.serving.predict(DEPLOYMENT, image, "yellow.jpg")
    [after] = served.serving.feedback(DEPLOYMENT, [Feedback(hashlib.sha256(image).hexdigest(), label="cat")])
    assert after.id == int(prediction.id) and after.truth == "cat" and after.image_sha256 == hashlib.sha256(image).hexdigest()


def test_bad_feedback_is_one_sentence_and_nothing_of_the_batch_is_recorded(served):
    prediction = served.serving.predict(DEPLOYMENT, image_bytes((90, 10, 160)), "purple.jpg")
    good = Feedback(prediction.id, label="cat")
    with pytest.raises(NotFound) as unknown:
        served.serving.feedback(DEPLOYMENT, [good, Feedback("999999999", label="cat")])
    assert "no answered prediction '999999999'" in str(unknown.value)
    with pytest.raises(InvalidInput) as label:
        served.serving.feedback(DEPLOYMENT, [good, Feedback(prediction.id, label="horse")])
    assert "has no label 'horse'; its labels are cat, dog." in str(label.value)
    assert _logged(served, int(prediction.id)).truth is None  # the good item was not recorded either


def test_seldon_feedback_through_envoy_by_the_clients_puid_or_the_image(served, port):
    url = f"http://127.0.0.1:{port}/api/v1.0"
    image = base64.b64encode(image_bytes((30, 30, 220))).decode()
    with httpx.Client(timeout=30) as http:
        answer = http.post(f"{url}/predictions", json={"binData": image, "meta": {"puid": "client-7"}})
        assert answer.status_code == 200 and answer.json()["meta"]["puid"] == "client-7", answer.text
        recorded = http.post(f"{url}/feedback", json={"request": {"meta": {"puid": "client-7"}},
                                                      "response": answer.json(), "truth": {"strData": "dog"}, "reward": 0.5})
        assert recorded.status_code == 200, recorded.text
        [logged] = [p for p in served.serving.predictions(DEPLOYMENT, limit=100_000) if p.puid == "client-7"]
        assert (logged.truth, logged.reward) == ("dog", 0.5)

        by_image = http.post(f"{url}/feedback", json={"request": {"binData": image}, "truth": {"jsonData": {"label": "cat"}}})
        assert by_image.status_code == 200 and _logged(served, logged.id).truth == "cat", by_image.text

        unknown = http.post(f"{url}/feedback", json={"request": {"meta": {"puid": "nobody"}}, "truth": {"strData": "cat"}})
        assert unknown.status_code == 404 and "No answered prediction with the id 'nobody'" in unknown.json()["status"]["info"]
        horse = http.post(f"{url}/feedback", json={"request": {"meta": {"puid": "client-7"}}, "truth": {"strData": "horse"}})
        assert horse.status_code == 400 and "no label 'horse'" in horse.json()["status"]["info"]
        empty = http.post(f"{url}/feedback", json={"request": {"meta": {"puid": "client-7"}}})
        assert empty.status_code == 400 and "neither a truth" in empty.json()["status"]["info"]
        assert _logged(served, logged.id).truth == "cat"  # what was refused changed nothing


def test_the_feedback_path_keeps_the_prediction_body_rules(port):
    url = f"http://127.0.0.1:{port}/api/v1.0/feedback"
    with httpx.Client(timeout=30) as http:
        assert http.get(url).status_code == 405
        text = http.post(url, content=b"{}", headers={"content-type": "text/plain"})
        assert text.status_code == 415 and "Feedback takes a JSON body" in text.json()["status"]["info"]
        empty = http.post(url, content=b"", headers={"content-type": "application/json"})
        assert empty.status_code == 400
        other = http.post(url, json={"truth": {"strData": "cat"}}, headers={"host": "evil.example"})
        assert other.status_code == 403


@pytest.fixture
def cli_home(served, monkeypatch):
    """The CLI in this process, on the session's serving home (its deployment already up)."""
    home = served.config.home
    monkeypatch.setenv("DLPTUI_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("DLPTUI_PROFILE", raising=False)
    monkeypatch.delenv("DLPTUI_CONFIG", raising=False)
    return home


def test_the_cli_predicts_with_ids_and_takes_feedback_for_one_or_a_file(served, cli_home, capsys, tmp_path):
    from tests.helpers import run, run_json

    first, second = tmp_path / "red.jpg", tmp_path / "blue.png"
    first.write_bytes(image_bytes((220, 20, 20)))
    second.write_bytes(image_bytes((20, 20, 220), fmt="PNG"))
    rows = run_json(capsys, "predict", str(first), str(second), "--deployment", DEPLOYMENT)
    assert [r["image"] for r in rows] == [str(first), str(second)] and all(r["id"].isdigit() for r in rows), rows
    one, two = rows

    code, out, err = run(capsys, "feedback", f"{DEPLOYMENT}#{one['id']}", "--label", "dog")
    right = "right" if one["label"] == "dog" else "wrong"
    assert (code, err) == (0, "") and out == f"Recorded for {DEPLOYMENT}#{one['id']}: the right label is dog; the model said {one['label']} ({right}).\n"

    labels = tmp_path / "labels.csv"
    sha = hashlib.sha256(second.read_bytes()).hexdigest()
    labels.write_text(f"prediction,label\n{one['id']},cat\n{sha},cat\n")
    [a, b] = run_json(capsys, "feedback", DEPLOYMENT, "--file", str(labels))
    assert (a["id"], a["truth"], b["id"], b["truth"]) == (int(one["id"]), "cat", int(two["id"]), "cat"), (a, b)
    code, out, _ = run(capsys, "predictions", DEPLOYMENT, "--limit", "5")
    assert "TRUTH" in out.splitlines()[1] and f"cat ({'right' if one['label'] == 'cat' else 'wrong'})" in out, out


@pytest.mark.parametrize("argv, code, words", [
    (["{d}#999999999", "--label", "cat"], 3, "has no answered prediction '999999999'"),
    (["{d}#{id}", "--label", "horse"], 2, "has no label 'horse'; its labels are cat, dog."),
    (["{d}#{id}"], 2, "--label LABEL"),
    (["{d}#{id}", "--reward", "nan"], 2, "must be a finite number, not nan."),
    (["{d}#{id}", "--label", " "], 2, "gives an empty label."),
    (["nowhere#{id}", "--label", "cat"], 3, "nowhere"),
    (["{d}", "--file", "{tmp}/missing.csv"], 3, "There is no file"),
    (["{d}", "--file", "{tmp}/bad.csv"], 2, "bad.csv line 3 has 1 values"),
    (["{d}", "--file", "{tmp}/unknown.csv"], 3, f"unknown.csv: Deployment {DEPLOYMENT!r} has no answered prediction '999999999'"),
    (["{d}", "--file", "{tmp}/horse.csv"], 2, "horse.csv: The model of"),
])
def test_bad_feedback_on_the_cli_is_one_sentence_and_records_nothing(served, cli_home, capsys, tmp_path, argv, code, words):
    from tests.helpers import run

    prediction = served.serving.predict(DEPLOYMENT, image_bytes((120, 120, 120)), "grey.jpg")
    (tmp_path / "bad.csv").write_text(f"{prediction.id},cat\n\n{prediction.id}\n")
    (tmp_path / "unknown.csv").write_text(f"{prediction.id},cat\n999999999,dog\n")
    (tmp_path / "horse.csv").write_text(f"{prediction.id},horse\n")
    args = [a.format(d=DEPLOYMENT, id=prediction.id, tmp=tmp_path) for a in argv]
    got, out, err = run(capsys, "feedback", *args)
    assert (got, out) == (code, ""), err
    assert err.startswith("dlptui: ") and len(err.splitlines()) == 1 and words in err and "Traceback" not in err, err
    assert _logged(served, int(prediction.id)).truth is None  # nothing recorded, not even the good rows


def test_a_feedback_larger_than_the_endpoint_holds_goes_through_the_large_listener(served, port):
    """A feedback naming its prediction by an image over SMALL_BODY is held by Envoy's `large` listener, as such a
    prediction is, and still reaches the primary's model server."""
    import io

    import numpy as np
    from PIL import Image

    from dlptui.platform.local.envoy_config import SMALL_BODY

    noise = np.random.default_rng(7).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    assert len(image) > SMALL_BODY
    url = f"http://127.0.0.1:{port}/api/v1.0"
    with httpx.Client(timeout=60) as http:
        answer = http.post(f"{url}/predictions", json={"binData": image})
        assert answer.status_code == 200, answer.text
        ident = int(answer.json()["meta"]["puid"])
        recorded = http.post(f"{url}/feedback", json={"request": {"binData": image}, "truth": {"strData": "dog"}})
        assert recorded.status_code == 200, recorded.text
    assert recorded.json()["jsonData"]["prediction"] == ident and _logged(served, ident).truth == "dog"
