"""The cluster's serving client presents the serving token that the Istio gateway's AuthorizationPolicy
(infra/istio/serving-auth.yaml) asks for: from DLPTUI_SERVING_TOKEN, else from the Kubernetes Secret;
tested against the gateway stand-in (tests/standins/gateway.py) and a real kube-apiserver."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
import yaml

from dlptui.errors import NotAvailable
from dlptui.platform.cluster.seldon_serving import SeldonServing
from dlptui.platform.model import CheckpointStorage, ModelVersion
from tests.helpers import INFRA
from tests.fixtures.serving import image_bytes
from tests.standins.gateway import GatewayStandin

TOKEN = "0f" * 20
JPEG = image_bytes()  # what the model behind the gateway reads; other bytes it refuses (400)
POLICY = yaml.safe_load((INFRA / "istio" / "serving-auth.yaml").read_text())
[HEADER] = {c["key"].removeprefix("request.headers[").removesuffix("]") for r in POLICY["spec"]["rules"] for c in r.get("when", [])}


@pytest.fixture
def gateway():
    """The Istio gateway on 127.0.0.1 over plain HTTP, asking for the header the shipped policy names."""
    g = GatewayStandin(TOKEN, header=HEADER).start()
    yield g
    g.stop()


@pytest.fixture
def serving(cluster_config, namespace, gateway, monkeypatch):
    monkeypatch.delenv("DLPTUI_SERVING_TOKEN", raising=False)
    settings = replace(cluster_config.cluster, seldon_namespace=namespace, serving_image="registry.example/s:1",
                       istio_ingress=gateway.url)
    part = SeldonServing(replace(cluster_config, cluster=settings))
    part.deploy("dogcat-deploy", ModelVersion("dogcat-model", 1, "u", 0.0, checkpoint_storage=CheckpointStorage("gcs", "u", bucket="b")))
    yield part
    part.close()


def put_secret(kube_api, namespace: str, token: bytes) -> None:
    kube_api[1].create_namespaced_secret(namespace, {"metadata": {"name": "dlptui-serving-token"},
                                                     "data": {"token": base64.b64encode(token).decode()}})


def test_the_header_is_the_one_the_shipped_policy_asks_for():
    from dlptui.platform.cluster.seldon_token import TOKEN_HEADER

    assert TOKEN_HEADER.lower() == HEADER


def test_the_token_from_the_environment_reaches_the_gateway(serving, gateway, monkeypatch):
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", TOKEN)
    first = serving.predict("dogcat-deploy", JPEG, "a.jpg")
    second = serving.predict("dogcat-deploy", JPEG, "b.jpg")
    assert (first.label, first.error, second.label) == ("cat", None, "cat")
    assert gateway.seen == [TOKEN, TOKEN]


def test_the_token_from_the_kubernetes_secret_reaches_the_gateway(serving, gateway, kube_api, namespace):
    put_secret(kube_api, namespace, TOKEN.encode() + b"\n")  # as `kubectl create secret --from-env-file` may leave it
    prediction = serving.predict("dogcat-deploy", JPEG, "a.jpg")
    assert prediction.label == "cat" and gateway.seen == [TOKEN]


def test_no_token_anywhere_is_one_sentence_and_nothing_is_sent(serving, gateway, namespace):
    with pytest.raises(NotAvailable) as caught:
        serving.predict("dogcat-deploy", JPEG)
    assert str(caught.value) == (
        f"Predictions on the cluster need the serving token, and there is neither DLPTUI_SERVING_TOKEN nor the Secret "
        f"{namespace}/dlptui-serving-token (key token); set the variable, or create the Secret with "
        "infra/secrets/create-secrets.sh."
    )
    assert gateway.seen == []


def test_a_refused_token_is_one_sentence_without_it_and_is_read_again(serving, gateway, monkeypatch, namespace, caplog):
    wrong = "1a" * 20
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", wrong)
    with pytest.raises(NotAvailable) as caught:
        serving.predict("dogcat-deploy", JPEG)
    assert str(caught.value) == (
        "The Istio gateway refused the prediction (HTTP 403 Forbidden): the serving token is missing or wrong; "
        f"check DLPTUI_SERVING_TOKEN or the Secret {namespace}/dlptui-serving-token (key token)."
    )
    assert wrong not in caplog.text
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", TOKEN)  # put right: the next prediction takes it
    assert serving.predict("dogcat-deploy", JPEG).label == "cat"
    assert gateway.seen == [wrong, TOKEN]


@pytest.mark.parametrize("stored", [b"", b"two words and more than thirty-two characters", b"\x00bin\xff"])
def test_a_secret_without_a_usable_token_is_one_sentence(serving, gateway, kube_api, namespace, stored):
    put_secret(kube_api, namespace, stored)
    with pytest.raises(NotAvailable) as caught:
        serving.predict("dogcat-deploy", JPEG)
    assert str(caught.value) == (
        f"The serving token from the Secret {namespace}/dlptui-serving-token (key token) is empty or holds spaces or "
        "line breaks; set it again (infra/secrets/secrets.env.template says how)."
    )
    assert gateway.seen == []
