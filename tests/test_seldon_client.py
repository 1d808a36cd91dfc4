"""The Seldon client's POSTs (platform/seldon_protocol.py): a prediction and a feedback message to an endpoint that
does not answer, or answers too late, are one sentence naming the endpoint (Unreachable, exit 5)."""

from __future__ import annotations

import socket

import pytest

from dlptui.errors import Unreachable
from dlptui.platform.seldon_protocol import SeldonClient, feedback_body


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_or_silent_endpoint_is_one_sentence_naming_it():
    client = SeldonClient(timeout=1.0)
    silent = socket.socket()  # listens, never answers: the client waits out its timeout
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    dead_base, silent_base = f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        for base, said in ((dead_base, "does not answer (ConnectError); check the deployment."),
                           (silent_base, "did not answer within 1 s; check the deployment.")):
            url = f"{base}/api/v1.0/predictions"
            with pytest.raises(Unreachable) as e:
                client.predict(url, b"\xff\xd8\xff")
            assert str(e.value) == f"The prediction endpoint {url} {said}" and e.value.exit_code == 5
            url = f"{base}/api/v1.0/feedback"
            with pytest.raises(Unreachable) as e:
                client.feedback(url, feedback_body("42", "cat", None))
            assert str(e.value) == f"The feedback endpoint {url} {said}" and e.value.exit_code == 5
    finally:
        client.close()
        silent.close()
