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
    """Two model servers (stand-ins on their Unix sockets), one gone: every request still answers."""
    from dlptui.platform.local import processes
    from tests.fixtures.serving import UnixModelServer, start_envoy

    dead = {"id": "dead", "version": 1, "socket": str(tmp_path / "run" / "dead.sock")}  # nothing listens there
    with UnixModelServer(tmp_path / "run" / "alive.sock", "alive", 2) as alive:
        port, record = start_envoy(tmp_path, [dead, alive.backend], canary=alive.backend, share=50)
        try:
            with httpx.Client(timeout=10) as http:
                answers = [http.post(f"http://127.0.0.1:{port}/api/v1.0/predictions", json={"binData": "x"}) for _ in range(20)]
            assert [a.status_code for a in answers] == [200] * 20
            assert {a.json()["jsonData"]["server"] for a in answers} == {"alive"}
        finally:
            processes.stop_tree(record)


def test_a_request_that_breaks_its_model_server_is_not_sent_to_the_next(tmp_path):
    """A request of death (its server resets the connection once it has it) is answered 503, not retried onto
    the canary or the next server: it reaches one server once."""
    import socket as sockets

    from dlptui.platform.local import processes
    from tests.fixtures.serving import UnixModelServer, start_envoy

    def reset(handler):  # read the request, then drop the connection with a reset, as a crashing worker does
        handler.connection.setsockopt(sockets.SOL_SOCKET, sockets.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        handler.close_connection = True

    with UnixModelServer(tmp_path / "run" / "a.sock", "a", 1, answer=reset) as a, \
            UnixModelServer(tmp_path / "run" / "b.sock", "b", 2, answer=reset) as b:
        port, record = start_envoy(tmp_path, [a.backend, b.backend], canary=b.backend, share=50)
        try:
            with httpx.Client(timeout=10) as http:
                answer = http.post(f"http://127.0.0.1:{port}/api/v1.0/predictions", json={"binData": "x"})
            assert answer.status_code == 503, answer.text
            assert a.requests + b.requests == 1, f"sent {a.requests + b.requests} times"
        finally:
            processes.stop_tree(record)


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
    from dlptui.platform.local import envoy_config, processes
    from tests.fixtures.serving import start_envoy

    monkeypatch.setattr(envoy_config, "MAX_CONNECTIONS", 3)
    port, record = start_envoy(tmp_path, [{"id": "none", "version": 1, "socket": str(tmp_path / "run" / "none.sock")}])
    held = []
    try:
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


def test_bodies_over_the_small_size_are_held_a_few_at_a_time_so_memory_stays_bounded(tmp_path):
    """Sixteen clients that each send 29 MiB of a 30 MiB prediction and hold the rest: Envoy holds
    LARGE_AT_ONCE of them whole and lets the others wait under flow control (before: all sixteen held,
    about 500 MiB); its memory grows by less than the stated bound."""
    import psutil

    from dlptui.platform.local import envoy, envoy_config, processes
    from tests.fixtures.serving import UnixModelServer, start_envoy

    size, sent_each = 30 << 20, 29 << 20
    with UnixModelServer(tmp_path / "run" / "m.sock", "m") as server:
        port, record = start_envoy(tmp_path, [server.backend])
        admin = envoy.Admin(tmp_path, record)
        clients = []
        try:
            before = psutil.Process(record.pid).memory_info().rss
            for _ in range(16):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(f"POST /api/v1.0/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {size}\r\n\r\n".encode())
                sock.setblocking(False)
                clients.append([sock, sent_each])
            chunk = bytes(1 << 20)

            def held() -> int:  # bytes the `large` listener has read: the bodies it holds
                return admin.stats_matching("^http\\.large\\.downstream_cx_rx_bytes_total$")

            deadline = time.monotonic() + 120
            while held() < envoy_config.LARGE_AT_ONCE * sent_each:
                assert time.monotonic() < deadline, f"Envoy took {held()} bytes in 120 s"
                for client in clients:
                    try:
                        client[1] -= client[0].send(chunk[: min(len(chunk), client[1])]) if client[1] else 0
                    except BlockingIOError:  # flow control: Envoy reads no more of it for now
                        pass
            growth = psutil.Process(record.pid).memory_info().rss - before
            assert growth < envoy_config.MEMORY_BOUND, f"Envoy grew by {growth >> 20} MiB"
            assert growth < 6 * sent_each, f"Envoy grew by {growth >> 20} MiB: it holds more than {envoy_config.LARGE_AT_ONCE} bodies"
        finally:
            for sock, _ in clients:
                sock.close()
            processes.stop_tree(record)


def test_no_cross_origin_allowance_reaches_a_client(tmp_path):
    """The model server (Seldon's Flask-CORS) allows every origin; Envoy removes that, and answers a
    preflight with a 405 that allows nothing."""
    from dlptui.platform.local import processes
    from tests.fixtures.serving import UnixModelServer, start_envoy

    with UnixModelServer(tmp_path / "run" / "m.sock", "m") as server:
        port, record = start_envoy(tmp_path, [server.backend])
        try:
            url = f"http://127.0.0.1:{port}/api/v1.0/predictions"
            evil = {"Origin": "https://evil.example"}
            with httpx.Client(timeout=10) as http:
                answer = http.post(url, json={"binData": "x"}, headers=evil)
                preflight = http.options(url, headers={**evil, "Access-Control-Request-Method": "POST",
                                                      "Access-Control-Request-Headers": "content-type"})
            assert answer.status_code == 200 and server.requests == 1
            assert preflight.status_code == 405
            for response in (answer, preflight):
                assert not [h for h in response.headers if h.lower().startswith("access-control-")], response.headers
        finally:
            processes.stop_tree(record)
