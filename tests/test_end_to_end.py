"""The reference workflow on the local profile, end to end:

sample data -> train (tiny, in `trained_home`) -> register -> promote -> deploy -> predict over
HTTP (Seldon's own client and the project's) -> switch versions under continuous traffic.
"""

from __future__ import annotations

import sys

import httpx
import pytest

from dlptui.actions.lineage import trace
from dlptui.platform.model import DeploymentState
from tests.fixtures.serving import REPO, Traffic, wait_state

pytestmark = pytest.mark.slow
NAME = "dogcat-deploy"


def in_process_probabilities(checkpoint: str, image: bytes) -> list[float]:
    """What the checkpoint says about the image in this process, with the trial's own code."""
    import io

    import torch
    from PIL import Image

    sys.path.insert(0, str(REPO / "trial"))
    try:
        import model_def
    finally:
        sys.path.remove(str(REPO / "trial"))
    net, hparams = model_def.load_model(checkpoint)
    batch = model_def.eval_transform(hparams)(Image.open(io.BytesIO(image)).convert("RGB")).unsqueeze(0)
    with torch.inference_mode():
        return torch.softmax(net(batch), dim=1)[0].tolist()


def test_sample_to_prediction_and_a_version_switch_without_a_failed_request(trained_platform, sample_dir):
    platform = trained_platform
    [experiment] = platform.training.list_experiments()
    head = platform.data.inspect_commit("dogs-and-cats", "master")
    assert experiment.data_commit == head.id, "the experiment trained on the sample's commit"

    # register: the best checkpoint, then the other one; promote the best to production
    best = platform.registry.register("dogcat-model", experiment.id)
    other = next(c for c in platform.training.checkpoints(experiment.id) if c.uuid != best.checkpoint_uuid)
    second = platform.registry.register("dogcat-model", experiment.id, other.uuid)
    platform.registry.promote("dogcat-model", best.version, "production")
    production = platform.registry.get_version("dogcat-model", "production")
    assert production.version == best.version

    platform.serving.deploy(NAME, production)
    try:
        deployment = wait_state(platform.serving, NAME)
        assert deployment.state is DeploymentState.AVAILABLE, deployment.detail
        image_path = sorted(sample_dir.rglob("cat.*.jpg"))[0]
        image = image_path.read_bytes()

        # the project's own client, through the platform
        ours = platform.serving.predict(NAME, image, image_path.name)
        assert ours.error is None and ours.version == best.version
        expected = in_process_probabilities(best.checkpoint_location, image)
        served = [ours.probabilities["cat"], ours.probabilities["dog"]]
        assert served == pytest.approx(expected, abs=1e-4), "the server runs the registered checkpoint in eval mode"

        # Seldon's protocol as a client other than ours sends it: a JSON SeldonMessage with binData
        # (Seldon's own client in microservice mode posts a form instead, which the endpoint refuses
        # as it refuses any cross-site form: tests/test_serving.py)
        import base64

        answer = httpx.post(deployment.endpoint, json={"binData": base64.b64encode(image).decode()}, timeout=60)
        assert answer.status_code == 200, answer.text
        theirs = answer.json()["jsonData"]
        assert theirs["label"] == ours.label
        assert theirs["probabilities"]["cat"] == pytest.approx(ours.probabilities["cat"], abs=1e-6)

        # promote the second version and switch to it while requests keep coming
        platform.registry.promote("dogcat-model", second.version, "production")
        traffic = Traffic(deployment.endpoint)
        traffic.start()
        try:
            traffic.wait_answers(3, "answers before the switch")
            switched = platform.serving.update(NAME, platform.registry.get_version("dogcat-model", "production"))
            traffic.wait_answers(len(traffic.results) + 3, "answers after the switch")  # the last one sent after it
        finally:
            traffic.stop.set()
            traffic.join()
        assert switched.version == second.version and switched.endpoint == deployment.endpoint
        failures = [r for r in traffic.results if r[0] != 200]
        assert len(traffic.results) > 5 and not failures, failures[:5]
        seen = [version for _, version in traffic.results]
        assert seen[0] == best.version and seen[-1] == second.version

        chain = trace(platform, NAME)
        assert [s.id for s in chain.steps][:2] == [NAME, f"dogcat-model@{second.version}"]
        assert chain.steps[-1].id == f"dogs-and-cats@{head.id}"
    finally:
        platform.serving.undeploy(NAME)
    assert platform.serving.list_deployments() == []
