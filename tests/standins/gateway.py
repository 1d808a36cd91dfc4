"""A stand-in for the Istio ingress gateway in front of Seldon, for tests only.

It plays what infra/istio/serving-auth.yaml makes of the gateway: a POST under /seldon/ whose token header
(`x-dlptui-token` unless told otherwise) holds the serving token gets a Seldon prediction as JSON
(`PREDICTION`), anything else Envoy's 403 "RBAC: access denied". `seen` keeps that header of every request
as it arrived (None when absent). Plain HTTP, or HTTPS with a certificate and key: then a request that fails
the TLS handshake never reaches the handler, and so is not in `seen`.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREDICTION = {"jsonData": {"label": "cat", "probabilities": {"cat": 0.9, "dog": 0.1}, "version": 1}}
ENDPOINT_PATH = "/seldon/seldon/dogcat-deploy/api/v1.0/predictions"


class _Handler(BaseHTTPRequestHandler):
    gateway: GatewayStandin  # set on the subclass the server makes

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        given = self.headers.get(self.gateway.header)
        self.gateway.seen.append(given)
        ok = self.path.startswith("/seldon/") and given == self.gateway.token
        body = json.dumps(PREDICTION).encode() if ok else b"RBAC: access denied"
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json" if ok else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class GatewayStandin:
    """The stand-in gateway on 127.0.0.1 with a free port, serving from a thread; HTTPS when given `tls`
    (the server's certificate and key files). `url` is its base, `endpoint` the predictions URL of
    dogcat-deploy in the namespace seldon."""

    def __init__(self, token: str, header: str = "x-dlptui-token", tls: tuple[Path, Path] | None = None) -> None:
        self.token = token
        self.header = header
        self.seen: list[str | None] = []
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
