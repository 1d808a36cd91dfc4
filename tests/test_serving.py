"""The local Serving part against the real seldon-core-microservice: predict, restart, update, canary, failure."""

from __future__ import annotations

import base64
import os
import signal
import time

import httpx
import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound, Unreachable
from dlptui.platform.model import DeploymentState
from tests.fixtures.serving import DEPLOYMENT, Traffic, image_bytes, version_of, wait_state

pytestmark = pytest.mark.slow


def test_predict_through_the_projects_client(served):
    prediction = served.serving.predict(DEPLOYMENT, image_bytes(), "red.jpg")
    assert prediction.error is None
    assert prediction.image == "red.jpg"
    assert prediction.label in ("cat", "dog")
    assert set(prediction.probabilities) == {"cat", "dog"}
    assert abs(sum(prediction.probabilities.values()) - 1.0) < 1e-4
    assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
    assert prediction.latency_ms is not None and prediction.latency_ms > 0
    assert prediction.version == served.serving.get_deployment(DEPLOYMENT).version


def test_seldon_clients_form_encoded_request_is_refused_by_envoy_as_a_cross_site_form_would_be(served):
    """Seldon's own client posts `json=` form-encoded in microservice mode: a request any web page can send
    cross-site without asking. The endpoint takes JSON bodies only, so it says so (415) in one sentence."""
    from seldon_core.seldon_client import SeldonClient

    endpoint = served.serving.get_deployment(DEPLOYMENT).endpoint
    host_port = endpoint.removeprefix("http://").split("/")[0]
    result = SeldonClient(microservice_endpoint=host_port).microservice(method="predict", bin_data=image_bytes())
    assert not result.success
    answer = httpx.post(endpoint, data={"json": '{"binData": ""}'})
    assert answer.status_code == 415 and "JSON" in answer.json()["status"]["info"]


def test_deployment_listing_and_logs(served):
    [deployment] = [d for d in served.serving.list_deployments() if d.name == DEPLOYMENT]
    assert deployment.state is DeploymentState.AVAILABLE
    assert deployment.model == "dogcat-model"
    assert deployment.endpoint.startswith("http://127.0.0.1:")
    assert deployment.log_tail, "the model server's log should not be empty"
    assert any("model" in line.lower() for line in served.serving.logs(DEPLOYMENT, 200))


def test_found_again_by_a_fresh_platform(served):
    """A console restart: a new Platform over the same home finds the running deployment."""
    from dlptui.platform import Platform

    before = served.serving.get_deployment(DEPLOYMENT)
    fresh = Platform(served.config)
    try:
        again = fresh.serving.get_deployment(DEPLOYMENT)
        assert again.state is DeploymentState.AVAILABLE
        assert again.endpoint == before.endpoint
        assert fresh.serving.predict(DEPLOYMENT, image_bytes()).label in ("cat", "dog")
    finally:
        fresh.close()


def test_unknown_and_bad_names(served):
    with pytest.raises(NotFound, match="no deployment named"):
        served.serving.get_deployment("nope")
    with pytest.raises(NotFound):
        served.serving.predict("nope", image_bytes())
    with pytest.raises(InvalidInput):
        served.serving.get_deployment("../etc")


def test_deploying_an_existing_name_is_a_conflict(served, tiny_checkpoints):
    with pytest.raises(Conflict, match="exists"):
        served.serving.deploy(DEPLOYMENT, version_of(tiny_checkpoints[1], 2))


def test_a_missing_checkpoint_is_refused_before_anything_starts(served, tmp_path):
    with pytest.raises(NotFound, match="not on this machine"):
        served.serving.deploy("no-checkpoint", version_of(tmp_path / "gone", 9))
    assert "no-checkpoint" not in [d.name for d in served.serving.list_deployments()]


def restore_served(serving, tiny_checkpoints) -> None:
    """The shared deployment back to what the `served` fixture made: version 1 alone."""
    if serving.get_deployment(DEPLOYMENT).canary_version is not None:
        serving.set_canary(DEPLOYMENT, None, 0)
    if serving.get_deployment(DEPLOYMENT).version != 1:
        serving.update(DEPLOYMENT, version_of(tiny_checkpoints[0], 1))
    assert wait_state(serving, DEPLOYMENT).version == 1


def test_update_and_canary_without_a_failed_request(served, tiny_checkpoints):
    serving = served.serving
    try:
        endpoint = serving.get_deployment(DEPLOYMENT).endpoint
        traffic = Traffic(endpoint)
        traffic.start()
        try:
            traffic.wait_answers(3, "answers before the switch")
            updated = serving.update(DEPLOYMENT, version_of(tiny_checkpoints[1], 2))
            traffic.wait_answers(len(traffic.results) + 3, "answers after the switch")  # the last one sent after it
        finally:
            traffic.stop.set()
            traffic.join()
        assert updated.version == 2 and updated.endpoint == endpoint
        statuses = [s for s, _ in traffic.results]
        assert statuses and all(s == 200 for s in statuses), [r for r in traffic.results if r[0] != 200][:5]
        versions = [v for _, v in traffic.results]
        assert versions[0] == 1 and versions[-1] == 2, "the switch should be seen by the running traffic"
        assert versions == sorted(versions), "once switched, no request goes back to the old version"

        # a canary of version 1 taking 30 % of the requests
        canary = serving.set_canary(DEPLOYMENT, version_of(tiny_checkpoints[0], 1), 30)
        assert canary.canary_version == 1 and canary.canary_traffic == 30
        answered = [serving.predict(DEPLOYMENT, image_bytes()).version for _ in range(100)]
        share = answered.count(1)
        assert answered.count(1) + answered.count(2) == 100
        assert 15 <= share <= 45, f"the canary took {share} of 100 requests"

        removed = serving.set_canary(DEPLOYMENT, None, 0)
        assert removed.canary_version is None
        assert {serving.predict(DEPLOYMENT, image_bytes()).version for _ in range(10)} == {2}
        assert serving.update(DEPLOYMENT, version_of(tiny_checkpoints[0], 1)).version == 1
    finally:  # the session's deployment as its fixture made it, whatever failed above: version 1, no canary
        restore_served(serving, tiny_checkpoints)


def test_a_killed_model_server_shows_as_failed(serving_platform, tiny_checkpoints):
    serving = serving_platform.serving
    serving.deploy("kill-me", version_of(tiny_checkpoints[0], 1))
    try:
        assert wait_state(serving, "kill-me").state is DeploymentState.AVAILABLE
        import json

        state = json.loads((serving.root / "kill-me" / "state.json").read_text())
        os.kill(state["primary"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while serving.get_deployment("kill-me").state is not DeploymentState.FAILED and time.monotonic() < deadline:
            time.sleep(0.1)
        failed = serving.get_deployment("kill-me")
        assert failed.state is DeploymentState.FAILED
        assert "exited" in failed.detail and str(state["primary"]["pid"]) in failed.detail
        assert "kill-me" in [d.name for d in serving.list_deployments()]
        with pytest.raises(Unreachable, match="has failed"):
            serving.predict("kill-me", image_bytes())

        again = serving.deploy("kill-me", version_of(tiny_checkpoints[1], 2))  # a failed one may be redeployed
        assert again.endpoint == failed.endpoint, "on the same endpoint"
        assert wait_state(serving, "kill-me").state is DeploymentState.AVAILABLE
        assert serving.predict("kill-me", image_bytes()).version == 2
    finally:
        serving.undeploy("kill-me")
    from dlptui.platform.local.processes import ProcessRecord, members

    assert not members(ProcessRecord(state["primary"]["pid"], state["primary"]["started"])), "orphans left behind"
    assert "kill-me" not in [d.name for d in serving.list_deployments()]
    assert not (serving.root / "kill-me").exists()


def test_envoy_with_no_live_model_server_is_unreachable_not_an_image_error(tmp_path):
    from dlptui.platform.local import processes
    from dlptui.platform.seldon_protocol import SeldonClient
    from tests.fixtures.serving import start_envoy

    port, record = start_envoy(tmp_path, [{"id": "dead", "version": 1, "socket": str(tmp_path / "run" / "dead.sock")}])
    client = SeldonClient()
    try:
        with pytest.raises(Unreachable, match="no model server that answers"):
            client.predict(f"http://127.0.0.1:{port}/api/v1.0/predictions", image_bytes())
    finally:
        client.close()
        processes.stop_tree(record)
    assert not processes.alive(record)


@pytest.fixture
def model_class(monkeypatch):
    """serving/dogcat_model.DogCatModel imported in this process, as the wrapper imports it."""
    from tests.fixtures.serving import REPO

    monkeypatch.syspath_prepend(str(REPO / "trial"))
    monkeypatch.syspath_prepend(str(REPO / "serving"))
    import dogcat_model

    return dogcat_model.DogCatModel


def _health_after_loading(model, give_up_s: float = 120.0):
    """health_status() once the loader thread has finished (its answer, or the exception it raises)."""
    import threading

    deadline = time.monotonic() + give_up_s
    while any(t.name == "model-loader" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        return model.health_status()
    except Exception as e:  # noqa: BLE001 - the Seldon exception is what the test looks at
        return e


def test_model_class_reports_ready_only_once_loaded_and_answers_grpc_messages(model_class, tiny_checkpoints):
    from seldon_core.flask_utils import SeldonMicroserviceException
    from seldon_core.proto import prediction_pb2
    from seldon_core.utils import seldon_message_to_json

    model = model_class(checkpoint_dir=str(tiny_checkpoints[0]), version=4)
    with pytest.raises(SeldonMicroserviceException) as before:
        model.health_status()
    assert before.value.status_code == 503 and before.value.reason == "MODEL_LOADING"
    model.load()
    assert _health_after_loading(model) == {"status": "ready", "model": "dogcat-model", "version": 4}
    assert model._net.training is False, "the served network is in eval mode"

    answer = model.predict_raw(prediction_pb2.SeldonMessage(binData=image_bytes()))
    result = seldon_message_to_json(answer)["jsonData"]
    assert result["label"] in ("cat", "dog") and result["version"] == 4
    with pytest.raises(SeldonMicroserviceException) as bad:
        model.predict_raw(prediction_pb2.SeldonMessage(binData=b"not an image"))
    assert bad.value.status_code == 400


def test_model_class_reports_why_loading_failed(model_class, tmp_path, monkeypatch, dead_address):
    from seldon_core.flask_utils import SeldonMicroserviceException

    missing = model_class(checkpoint_dir=str(tmp_path / "gone"), load_retries=1)
    missing.load()
    error = _health_after_loading(missing)
    assert isinstance(error, SeldonMicroserviceException) and error.reason == "MODEL_LOAD_FAILED"
    assert "not a Determined checkpoint folder" in error.message
    with pytest.raises(SeldonMicroserviceException) as refused:
        missing.predict_raw({"binData": base64.b64encode(image_bytes()).decode()})
    assert refused.value.status_code == 503

    monkeypatch.setenv("DLPTUI_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "read-only-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "read-only-test")
    endpoint = f"http://{dead_address}"  # nothing listens there
    remote = model_class(checkpoint_uri="s3://dlp-checkpoints/checkpoints/uuid-3", storage_endpoint=endpoint, load_retries=1)
    remote.load()
    error = _health_after_loading(remote)
    assert isinstance(error, SeldonMicroserviceException) and error.reason == "MODEL_LOAD_FAILED"
    assert "the checkpoint at s3://dlp-checkpoints/checkpoints/uuid-3 could not be read" in error.message
    assert not any((tmp_path / "cache").glob("*"))


def test_a_checkpoint_that_does_not_load_shows_as_failed_with_the_reason(serving_platform, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "state_dict.pth").write_bytes(b"this is not a torch file")
    (broken / "load_data.json").write_text('{"hparams": {"backbone": "tiny"}}')
    monkeypatch.setenv("DLPTUI_SERVING_LOAD_RETRIES", "1")
    serving = serving_platform.serving
    serving.deploy("broken", version_of(broken, 7))
    try:
        failed = wait_state(serving, "broken")
        assert failed.state is DeploymentState.FAILED
        assert failed.detail.startswith("Version 7 could not be loaded"), failed.detail
    finally:
        serving.undeploy("broken")


