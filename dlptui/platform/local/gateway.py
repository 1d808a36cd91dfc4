"""The stable endpoint of one local deployment: a small HTTP proxy on 127.0.0.1.

    python -m dlptui.platform.local.gateway --port PORT --routes ROUTES_JSON

It plays the part Istio plays on the cluster: clients always POST to the same URL, and the
gateway forwards each request to one of the deployment's model servers, chosen by weight
(a canary takes its percent). The routes live in a JSON file written atomically by the
Serving part; the gateway re-reads it when it changes, so switching versions is: start
the new server, wait until it is ready, rewrite the routes, wait until the old server has
no request in flight (`GET /-/gateway`), stop it. A request whose backend refuses the
connection (it was just stopped, or its keep-alive connection went stale) is sent again
to a current backend: a prediction has no side effect.

Only the standard library: the gateway starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FORWARDED = ("/api/v1.0/predictions", "/api/v0.1/predictions", "/predict", "/health/status", "/health/ping", "/metadata")
CONTROL = "/-/gateway"
VERSION_HEADER = "X-Dlptui-Version"
ATTEMPTS = 4
MAX_BODY = 32 << 20  # a base64 JPEG of a 40-megapixel photo fits; anything larger is refused unread
BACKEND_TIMEOUT_S = 60.0


class Routes:
    """The backends of the deployment, re-read from the routes file when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.stamp: tuple[int, int] | None = None
        self.generation = 0
        self.backends: list[dict] = []
        self.inflight: dict[str, int] = {}

    def _reload(self, force: bool = False) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self.stamp and not force:
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # a torn read cannot happen (atomic replace), but never serve from garbage
        self.stamp = stamp
        self.generation = int(data.get("generation", 0))
        self.backends = [b for b in data.get("backends", []) if b.get("weight", 0) > 0]

    def acquire(self, avoid: set[str], primary: bool = False) -> dict | None:
        """Pick a backend by weight (or the heaviest one) and count it as in flight."""
        with self.lock:
            self._reload()
            choices = [b for b in self.backends if b["url"] not in avoid] or self.backends
            if not choices:
                return None
            if primary:
                backend = max(choices, key=lambda b: b["weight"])
            else:
                backend = random.choices(choices, weights=[b["weight"] for b in choices])[0]
            self.inflight[backend["url"]] = self.inflight.get(backend["url"], 0) + 1
            return backend

    def release(self, backend: dict) -> None:
        with self.lock:
            self.inflight[backend["url"]] -= 1

    def snapshot(self) -> dict:
        with self.lock:
            self._reload(force=True)  # the Serving part calls this after each switch: never miss one
            return {
                "generation": self.generation,
                "backends": self.backends,
                "inflight": {k: v for k, v in self.inflight.items() if v},
                "pid": os.getpid(),
            }


class Connections(threading.local):
    """Keep-alive connections to the backends, one set per gateway thread."""

    def get(self, url: str) -> http.client.HTTPConnection:
        pool = self.__dict__.setdefault("pool", {})
        if url not in pool:
            host, port = url.removeprefix("http://").rsplit(":", 1)
            pool[url] = http.client.HTTPConnection(host, int(port), timeout=BACKEND_TIMEOUT_S)
        return pool[url]

    def drop(self, url: str) -> None:
        conn = self.__dict__.get("pool", {}).pop(url, None)
        if conn is not None:
            conn.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dlptui-gateway"
    disable_nagle_algorithm = True  # headers and body go out as two writes: never wait for a delayed ACK
    routes: Routes
    connections = Connections()

    def log_message(self, format: str, *args) -> None:  # quiet: one line per request is noise
        pass

    def do_GET(self) -> None:
        if self.path == CONTROL:
            self._reply(200, json.dumps(self.routes.snapshot()).encode(), "application/json")
        else:
            self._forward(b"")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            self._error(413 if length > MAX_BODY else 400, f"The request body must have a Content-Length of at most {MAX_BODY} bytes.")
            self._lingering_close()
            return
        self._forward(self.rfile.read(length) if length else b"")

    def _forward(self, body: bytes) -> None:
        path = self.path.split("?", 1)[0]
        if path not in FORWARDED:
            self._error(404, f"The gateway forwards {', '.join(FORWARDED)}; {path} is not one of them.")
            return
        headers = {"Content-Type": self.headers.get("Content-Type") or "application/json"}
        tried: set[str] = set()
        last_error = "no model server is running"
        for attempt in range(ATTEMPTS):
            backend = self.routes.acquire(tried, primary=self.command == "GET")
            if backend is None:
                break
            url = backend["url"]
            try:
                conn = self.connections.get(url)
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                self.connections.drop(url)
                tried.add(url)
                last_error = f"{url} did not answer ({type(e).__name__})"
                time.sleep(0.05 * attempt)
                continue
            finally:
                self.routes.release(backend)
            extra = {VERSION_HEADER: str(backend.get("version", ""))}
            self._reply(response.status, data, response.getheader("Content-Type") or "application/json", extra)
            return
        self._error(503, f"The deployment has no model server that answers: {last_error}.")

    def _lingering_close(self, limit: int = 1 << 20, seconds: float = 1.0) -> None:
        """Send FIN, then drop what the client still sends (bounded) before closing: closing with
        unread input sends a reset, and a reset can make the client's kernel discard our answer."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(seconds)
            dropped = 0
            while dropped < limit and (chunk := self.connection.recv(65536)):
                dropped += len(chunk)
        except OSError:
            pass

    def _error(self, status: int, message: str) -> None:
        body = {"status": {"status": 1, "code": -1, "info": message, "reason": "GATEWAY_ERROR"}}
        self._reply(status, json.dumps(body).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def serve(port: int, routes_path: Path) -> None:
    handler = type("RoutedHandler", (Handler,), {"routes": Routes(routes_path)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(f"gateway listening on http://127.0.0.1:{server.server_address[1]} routes {routes_path}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The stable HTTP endpoint of one local deployment.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--routes", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.port, args.routes)


if __name__ == "__main__":
    main()
