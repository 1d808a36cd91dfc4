"""The cluster's serving client presents the serving token that the Istio gateway's AuthorizationPolicy
(infra/istio/serving-auth.yaml) asks for: from DLPTUI_SERVING_TOKEN, else from the Kubernetes Secret;
tested against a local HTTP server that plays the gateway and a real kube-apiserver."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from dlptui.errors import NotAvailable
from dlptui.platform.cluster.seldon_serving import SeldonServing
from dlptui.platform.model import ModelVersion
from tests.helpers import INFRA

TOKEN = "0f" * 20
POLICY = yaml.safe_load((INFRA / "istio" / "serving-auth.yaml").read_text())
[HEADER] = {c["key"].removeprefix("request.headers[").removesuffix("]") for r in POLICY["spec"]["rules"] for c in r.get("when", [])}


class TokenGateway:
    """An Istio-like gateway on 127.0.0.1: a POST under /seldon/ with the header the policy names and the
    expected token gets a prediction, anything else Envoy's 403 "RBAC: access denied". `seen` keeps the
    header of every request as it arrived (None when absent)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.seen: list[str | None] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                given = self.headers.get(HEADER)
                gateway.seen.append(given)
                if self.path.startswith("/seldon/") and given == gateway.token:
                    status, body, kind = 200, json.dumps({"jsonData": {"label": "cat", "probabilities": {"cat": 0.9, "dog": 0.1},
                                                                       "version": 1}}).encode(), "application/json"
                else:
                    status, body, kind = 403, b"RBAC: access denied", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    g = TokenGateway(TOKEN)
    yield g
    g.close()


@pytest.fixture
def namespace(kube_api):
    name = f"seldon-{uuid.uuid4().hex[:8]}"
    kube_api[1].create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def serving(cluster_config, namespace, gateway, monkeypatch):
    monkeypatch.delenv("DLPTUI_SERVING_TOKEN", raising=False)
    settings = replace(cluster_config.cluster, seldon_namespace=namespace, serving_image="registry.example/s:1",
                       istio_ingress=gateway.url)
    part = SeldonServing(replace(cluster_config, cluster=settings))
    part.deploy("dogcat-deploy", ModelVersion("dogcat-model", 1, "u", 0.0))
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
    first = serving.predict("dogcat-deploy", b"\xff\xd8 jpeg", "a.jpg")
    second = serving.predict("dogcat-deploy", b"\xff\xd8 jpeg", "b.jpg")
    assert (first.label, first.error, second.label) == ("cat", None, "cat")
    assert gateway.seen == [TOKEN, TOKEN]


def test_the_token_from_the_kubernetes_secret_reaches_the_gateway(serving, gateway, kube_api, namespace):
    put_secret(kube_api, namespace, TOKEN.encode() + b"\n")  # as `kubectl create secret --from-env-file` may leave it
    prediction = serving.predict("dogcat-deploy", b"\xff\xd8 jpeg", "a.jpg")
    assert prediction.label == "cat" and gateway.seen == [TOKEN]


def test_no_token_anywhere_is_one_sentence_and_nothing_is_sent(serving, gateway, namespace):
    with pytest.raises(NotAvailable) as caught:
        serving.predict("dogcat-deploy", b"\xff\xd8 jpeg")
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
        serving.predict("dogcat-deploy", b"\xff\xd8 jpeg")
    assert str(caught.value) == (
        "The Istio gateway refused the prediction (HTTP 403 Forbidden): the serving token is missing or wrong; "
        f"check DLPTUI_SERVING_TOKEN or the Secret {namespace}/dlptui-serving-token (key token)."
    )
    assert wrong not in caplog.text
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", TOKEN)  # put right: the next prediction takes it
    assert serving.predict("dogcat-deploy", b"\xff\xd8 jpeg").label == "cat"
    assert gateway.seen == [wrong, TOKEN]


@pytest.mark.parametrize("stored", [b"", b"two words and more than thirty-two characters", b"\x00bin\xff"])
def test_a_secret_without_a_usable_token_is_one_sentence(serving, gateway, kube_api, namespace, stored):
    put_secret(kube_api, namespace, stored)
    with pytest.raises(NotAvailable) as caught:
        serving.predict("dogcat-deploy", b"\xff\xd8 jpeg")
    assert str(caught.value) == (
        f"The serving token from the Secret {namespace}/dlptui-serving-token (key token) is empty or holds spaces or "
        "line breaks; set it again (infra/secrets/secrets.env.template says how)."
    )
    assert gateway.seen == []
