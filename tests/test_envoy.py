"""The local data plane: Envoy in front of a real model server refuses what a browser page, a stuck
client or a broken request could do, answers health and metadata, and retries on another server."""

from __future__ import annotations

import base64
import json
import socket
import time

import httpx
import pytest

from tests.fixtures.serving import DEPLOYMENT, image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def endpoint(served) -> str:
    return served.serving.get_deployment(DEPLOYMENT).endpoint


@pytest.fixture(scope="module")
def port(endpoint) -> int:
    return int(endpoint.removeprefix("http://").split("/")[0].split(":")[1])


def _raw(port: int, request: bytes, timeout: float = 15.0) -> bytes:
    """Send bytes as they are, read the answer until the server closes or the first answer is whole."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_chunked_post_with_an_empty_body_is_a_400_and_leaves_nothing_on_the_connection(port):
    request = (b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    body = json.dumps({"binData": base64.b64encode(image_bytes()).decode()}).encode()
    follow = (b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request + follow)  # two requests on one connection: the second must be answered on its own
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert answers[0].startswith(b"400") and b"empty body" in answers[0], data[:300]
    # Envoy closes the connection after its own 400 (or answers the next request whole): nothing of the
    # first request is left on the connection to be read as the start of another one
    assert len(answers) == 1 or (len(answers) == 2 and answers[1].startswith(b"200") and b'"label"' in answers[1]), data


def test_a_chunked_post_with_an_image_is_answered(endpoint, http):
    body = json.dumps({"binData": base64.b64encode(image_bytes()).decode()}).encode()
    response = http.post(endpoint, content=iter([body[:10], body[10:]]), headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json()["jsonData"]["label"] in ("cat", "dog")


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io", "192.168.1.7", "localhost.evil"])
def test_only_127_0_0_1_and_localhost_are_served(endpoint, port, http, host):
    refused = http.post(endpoint, json={"binData": ""}, headers={"host": host})
    assert refused.status_code == 403 and "127.0.0.1 or localhost" in refused.json()["status"]["info"]
    for good in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}"):
        ok = http.post(endpoint, json={"binData": base64.b64encode(image_bytes()).decode()}, headers={"host": good})
        assert ok.status_code == 200, (good, ok.text)


def test_prediction_paths_take_post_with_json_only(endpoint, http, port):
    for method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS"):
        answer = http.request(method, endpoint + "?json=%7B%22binData%22%3A%22x%22%7D")
        assert answer.status_code == 405, (method, answer.status_code)
    form = http.post(endpoint, content=b"binData=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and "JSON" in form.json()["status"]["info"]
    text = http.post(f"http://127.0.0.1:{port}/predict", content=b"{}", headers={"content-type": "text/plain"})
    assert text.status_code == 415
    assert http.get(f"http://127.0.0.1:{port}/nowhere").status_code == 404


def test_health_and_metadata_answer_and_metadata_is_valid(served, port, http):
    assert http.get(f"http://127.0.0.1:{port}/health/status").status_code == 200
    assert http.head(f"http://127.0.0.1:{port}/health/ping").status_code == 200
    meta = http.get(f"http://127.0.0.1:{port}/metadata")
    assert meta.status_code == 200, meta.text
    assert meta.json()["name"] == "dogcat-model"
    assert all(i["messagetype"] in ("tensor", "ndarray", "tftensor") for i in meta.json()["inputs"] + meta.json()["outputs"])
    log = "\n".join(served.serving.logs(DEPLOYMENT, 400))
    assert "Failed to validate metadata" not in log


def test_a_client_that_stops_sending_is_cut_off(port):
    """Slow headers: Envoy's request_headers_timeout closes the connection instead of holding it forever."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert time.monotonic() - start < 29, "the connection should be closed by the server"
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]


def test_a_refused_connection_is_retried_on_another_model_server(tmp_path):
    """Two model servers (stand-ins listening on loopback), one stopped: every request still answers."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from dlptui.platform.local import envoy, processes

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["content-length"]))
            body = json.dumps({"jsonData": {"port": self.server.server_address[1]}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    live = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=live.serve_forever, daemon=True).start()
    dead = {"id": "dead", "version": 1, "http_port": processes.free_port()}  # nothing listens there
    alive = {"id": "alive", "version": 2, "http_port": live.server_address[1]}
    port, admin_port = processes.free_port(), processes.free_port()
    envoy.write_clusters(tmp_path, 1, [dead, alive])
    envoy.write_routes(tmp_path, 1, envoy.routes(port, dead, alive, 50, None))
    record = envoy.start(tmp_path, port, admin_port, tmp_path / "envoy.log")
    try:
        with httpx.Client(timeout=10) as http:
            envoy.Admin(admin_port, record, http).wait(cds="1", rds="1")
            answers = [http.post(f"http://127.0.0.1:{port}/api/v1.0/predictions", json={"binData": "x"}) for _ in range(20)]
        assert [a.status_code for a in answers] == [200] * 20
        assert {a.json()["jsonData"]["port"] for a in answers} == {live.server_address[1]}
    finally:
        processes.stop_tree(record)
        live.shutdown()


def test_a_prediction_right_after_deploy_waits_for_the_model(serving_platform, tiny_checkpoints, monkeypatch):
    from dlptui.platform.local import backends, serving as local_serving
    from tests.fixtures.serving import version_of

    # as long as a start may take (a loaded machine can pass the 60 s a user waits): the wait is the point, not its length
    monkeypatch.setattr(local_serving, "PREDICT_WAIT_S", backends.START_TIMEOUT_S)
    serving = serving_platform.serving
    serving.deploy("fresh", version_of(tiny_checkpoints[0], 1))  # no wait
    try:
        prediction = serving.predict("fresh", image_bytes())
        assert prediction.error is None and prediction.version == 1
    finally:
        serving.undeploy("fresh")


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=30) as client:
        yield client


def test_a_body_of_several_mib_under_the_limit_reaches_the_model_server(endpoint, http):
    big = base64.b64encode(b"\x89PNG" + bytes(6 << 20)).decode()  # 8 MiB of base64: not an image, but under 32 MiB
    answer = http.post(endpoint, json={"binData": big})
    assert answer.status_code == 400, answer.text[:200]
    assert answer.json()["status"]["reason"] != "PAYLOAD_TOO_LARGE"


def test_a_killed_envoy_shows_as_failed_and_a_deploy_brings_it_back_on_the_same_endpoint(serving_platform, tiny_checkpoints):
    import os
    import signal

    from dlptui.errors import Unreachable
    from dlptui.platform.local import processes
    from dlptui.platform.local.processes import ProcessRecord
    from dlptui.platform.model import DeploymentState
    from tests.fixtures.serving import version_of, wait_state

    serving = serving_platform.serving
    serving.deploy("envoy-dies", version_of(tiny_checkpoints[0], 1))
    try:
        before = wait_state(serving, "envoy-dies")
        assert before.state is DeploymentState.AVAILABLE
        state = json.loads((serving.root / "envoy-dies" / "state.json").read_text())
        os.kill(state["gateway"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while processes.alive(ProcessRecord.from_json(state["gateway"])) and time.monotonic() < deadline:
            time.sleep(0.05)
        failed = serving.get_deployment("envoy-dies")
        assert failed.state is DeploymentState.FAILED and "Envoy" in failed.detail
        with pytest.raises(Unreachable, match="Envoy exited"):
            serving.predict("envoy-dies", image_bytes())
        again = serving.deploy("envoy-dies", version_of(tiny_checkpoints[0], 1))
        assert again.endpoint == before.endpoint
        assert wait_state(serving, "envoy-dies").state is DeploymentState.AVAILABLE
        assert serving.predict("envoy-dies", image_bytes()).version == 1
    finally:
        serving.undeploy("envoy-dies")


def test_connections_over_the_limit_are_closed(tmp_path, monkeypatch):
    from dlptui.platform.local import envoy, processes

    monkeypatch.setattr(envoy, "MAX_CONNECTIONS", 3)
    nowhere = {"id": "none", "version": 1, "http_port": processes.free_port()}
    port, admin_port = processes.free_port(), processes.free_port()
    envoy.write_clusters(tmp_path, 1, [nowhere])
    envoy.write_routes(tmp_path, 1, envoy.routes(port, nowhere, None, 0, None))
    record = envoy.start(tmp_path, port, admin_port, tmp_path / "envoy.log")
    held = []
    try:
        with httpx.Client(timeout=10) as http:
            envoy.Admin(admin_port, record, http).wait(cds="1", rds="1")
        for _ in range(3):  # three clients that hold their connections
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 404")
            held.append(sock)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            try:
                extra.sendall(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                answer = extra.recv(65536)
            except ConnectionResetError:  # closed with unread input: a reset instead of a FIN
                answer = b""
            assert answer == b"", "a fourth connection is closed unanswered"
        held.pop().close()
        deadline = time.monotonic() + 30  # Envoy frees the place once it has seen the close: retried, not slept for
        while True:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as again:
                try:
                    again.sendall(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    answer = again.recv(65536)
                except ConnectionResetError:
                    answer = b""
            if answer or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 404"), "a freed place is taken again"
    finally:
        for sock in held:
            sock.close()
        processes.stop_tree(record)
