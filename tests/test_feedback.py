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
