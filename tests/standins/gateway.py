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
  image gets `PREDICTION` (no model runs). `predicted` keeps the path of every request that reached a model.
"""

from __future__ import annotations

import importlib.util
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREDICTION = {"jsonData": {"label": "cat", "probabilities": {"cat": 0.9, "dog": 0.1}, "version": 1}}
ENDPOINT_PATH = "/seldon/seldon/dogcat-deploy/api/v1.0/predictions"
NO_HEALTHY_UPSTREAM = b"no healthy upstream"  # Envoy's body for a route with no ready endpoint


def _image_request():
    """serving/image_request.py as the model server imports it (a module of its own folder, no torch)."""
    spec = importlib.util.spec_from_file_location(
        "standin_image_request", Path(__file__).resolve().parents[2] / "serving" / "image_request.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        self.gateway.predicted.append(self.path)
        checks = self.gateway.checks
        try:
            checks.image_from_message(json.loads(raw or b"null"))
        except ValueError:
            refused = (400, "The request body is not JSON.")
        except checks.BadRequest as e:
            refused = (e.status, e.message)
        else:
            self._answer(200, json.dumps(PREDICTION).encode(), "application/json")
            return
        status, info = refused
        error = {"status": {"status": 1, "info": info, "code": -1, "reason": "MICROSERVICE_BAD_DATA"}}
        self._answer(status, json.dumps(error).encode(), "application/json")


class GatewayStandin:
    """The stand-in gateway on 127.0.0.1 with a free port, serving from a thread; HTTPS when given `tls`
    (the server's certificate and key files). `url` is its base, `endpoint` the predictions URL of
    dogcat-deploy in the namespace seldon; `down` the names of deployments with no ready pod."""

    def __init__(self, token: str, header: str = "x-dlptui-token", tls: tuple[Path, Path] | None = None) -> None:
        self.token = token
        self.header = header
        self.seen: list[str | None] = []
        self.predicted: list[str] = []
        self.down: set[str] = set()
        self.checks = _image_request()
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
