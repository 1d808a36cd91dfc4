"""A stand-in for the Istio ingress gateway in front of Seldon, for tests only.

It plays what infra/istio/serving-auth.yaml makes of the gateway: a POST under /seldon/ whose token header
(`x-dlptui-token` unless told otherwise) holds the serving token goes on to the deployment, anything else gets
Envoy's 403 "RBAC: access denied". `seen` keeps that header of every request as it arrived (None when absent).
Plain HTTP, or HTTPS with a certificate and key: then a request that fails the TLS handshake never reaches the
handler, and so is not in `seen`.

Behind the gateway, for `/seldon/<namespace>/<name>/...`:
- a deployment in `down` has no pod that is ready (its model server crashed, its image cannot be pulled): the
  gateway's Envoy has no endpoint for the route and answers 503 "no healthy upstream", as text;
- any other deployment answers as its model container does through Seldon's executor (v1.17: the executor passes
  a model's error status and body through, `executor/api/rest/server.go` respondWithError): the request is
  checked by the project's own `serving/image_request.py`, the code the model server runs first, and a request it
  refuses gets its status (400, 413, 415) with seldon-core's error JSON (`{"status": {"status": 1, "info":
  <the sentence>, "code": -1, "reason": "MICROSERVICE_BAD_DATA"}}`, SeldonMicroserviceException.to_dict); an
  image gets `PREDICTION` (no model runs), with a `meta.puid` as the executor gives every answer. `predicted`
  keeps the path of every request that reached a model;
- a feedback (`.../api/v1.0/feedback`) is checked by `serving/feedback_request.py` as the model server checks it
  (400 with its sentence), then answered as the cluster's model server answers it, keeping no prediction log: 501
  with its sentence. `feedback` keeps the path and the message of each that reached the model.
"""

from __future__ import annotations

import importlib.util
import json
import ssl
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREDICTION = {"jsonData": {"label": "cat", "probabilities": {"cat": 0.9, "dog": 0.1}, "version": 1}}
ENDPOINT_PATH = "/seldon/seldon/dogcat-deploy/api/v1.0/predictions"
NO_HEALTHY_UPSTREAM = b"no healthy upstream"  # Envoy's body for a route with no ready endpoint


NO_LOG = "This model server keeps no prediction log to record feedback in."  # serving/dogcat_model.py's 501


def _serving_module(name: str, **imports):
    """serving/NAME.py as the model server imports it (a module of its own folder, no torch); `imports`: the modules
    of that folder it imports by name, given as loaded here."""
    spec = importlib.util.spec_from_file_location(f"standin_{name}", Path(__file__).resolve().parents[2] / "serving" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass of the module looks itself up there
    saved = {k: sys.modules.get(k) for k in imports}
    sys.modules.update(imports)
    try:
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module


def _image_request():
    return _serving_module("image_request")


class _Handler(BaseHTTPRequestHandler):
    gateway: GatewayStandin  # set on the subclass the server makes

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        given = self.headers.get(self.gateway.header)
        self.gateway.seen.append(given)
        if not (self.path.startswith("/seldon/") and given == self.gateway.token):
            self._answer(403, b"RBAC: access denied", "text/plain")
            return
        parts = self.path.split("/")  # "", "seldon", namespace, name, ...
        if len(parts) > 3 and parts[3] in self.gateway.down:
            self._answer(503, NO_HEALTHY_UPSTREAM, "text/plain")
            return
        if self.path.rstrip("/").endswith("/feedback"):
            self._feedback(raw)
            return
        self.gateway.predicted.append(self.path)
        checks = self.gateway.checks
        try:
            checks.image_from_message(json.loads(raw or b"null"))
        except ValueError:
            refused = (400, "The request body is not JSON.")
        except checks.BadRequest as e:
            refused = (e.status, e.message)
        else:
            answer = {**PREDICTION, "meta": {"puid": uuid.uuid4().hex}}  # the executor names every answer
            self._answer(200, json.dumps(answer).encode(), "application/json")
            return
        self._error(*refused)

    def _error(self, status: int, info: str) -> None:
        error = {"status": {"status": 1, "info": info, "code": -1, "reason": "MICROSERVICE_BAD_DATA"}}
        self._answer(status, json.dumps(error).encode(), "application/json")

    def _feedback(self, raw: bytes) -> None:
        try:
            message = json.loads(raw or b"null")
            self.gateway.feedback_checks.parse_feedback(message)
        except ValueError:
            self._error(400, "The request body is not JSON.")
            return
        except self.gateway.checks.BadRequest as e:
            self._error(e.status, e.message)
            return
        self.gateway.feedback.append((self.path, message))
        self._error(501, NO_LOG)


class GatewayStandin:
    """The stand-in gateway on 127.0.0.1 with a free port, serving from a thread; HTTPS when given `tls`
    (the server's certificate and key files). `url` is its base, `endpoint` the predictions URL of
    dogcat-deploy in the namespace seldon; `down` the names of deployments with no ready pod."""

    def __init__(self, token: str, header: str = "x-dlptui-token", tls: tuple[Path, Path] | None = None) -> None:
        self.token = token
        self.header = header
        self.seen: list[str | None] = []
        self.predicted: list[str] = []
        self.feedback: list[tuple[str, dict]] = []
        self.down: set[str] = set()
        self.checks = _image_request()
        self.feedback_checks = _serving_module("feedback_request", image_request=self.checks)
        handler = type("StandinGatewayHandler", (_Handler,), {"gateway": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            # the handshake runs in accept(): a failed one is an OSError that the server drops
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self.endpoint = self.url + ENDPOINT_PATH

    def start(self) -> GatewayStandin:
        threading.Thread(target=self._server.serve_forever, name="gateway-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()  # returns once serve_forever has, so its thread is done
        self._server.server_close()
