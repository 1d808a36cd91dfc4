"""Small parts of serving without a model server: the sparkline, the prediction log's bound and
concurrent writers, --since, the cluster's per-version figures from a Prometheus stand-in."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dlptui.errors import InvalidInput
from dlptui.tui.widgets.sparkline import BLOCKS, Series, sparkline

REPO = Path(__file__).resolve().parents[1]


def test_sparkline_scales_to_the_maximum_and_keeps_the_last_values():
    assert sparkline([]) == ""
    assert sparkline([0, 0, 0]) == BLOCKS[0] * 3
    line = sparkline([0, 5, 10], width=3)
    assert line[0] == BLOCKS[0] and line[-1] == BLOCKS[-1] and line[1] in BLOCKS[3:5]
    assert len(sparkline(range(100), width=16)) == 16
    series = Series(limit=3)
    for total in (10, 12, 20, 20, 3):  # a counter that restarts counts from 0
        series.add_count(total)
    assert list(series.values) == [8, 0, 3]


@pytest.fixture
def writer(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "serving"))
    import prediction_log

    return prediction_log


def _record(log, i: int, role: str = "primary", label: str = "cat", request_id: str | None = None) -> None:
    log.record(model="m", version=1, role=role, request_id=request_id or f"r{i}", input_sha256="0" * 64, input_bytes=10,
               label=label, probabilities={label: 0.9}, latency_ms=float(i % 10 + 1), status=200)


def test_the_prediction_log_keeps_the_last_n_and_takes_concurrent_writers(writer, tmp_path, monkeypatch):
    from dlptui.platform.local import prediction_log as reader

    monkeypatch.setattr(writer, "PRUNE_EVERY", 50)
    path = tmp_path / "predictions.sqlite"
    logs = [writer.PredictionLog(str(path), keep=120) for _ in range(4)]  # four workers, one file

    def work(log, offset: int) -> None:
        for i in range(100):
            _record(log, offset + i)

    threads = [threading.Thread(target=work, args=(log, n * 1000)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = reader.read(path, "d", limit=10_000)
    assert 120 <= len(rows) < 120 + 4 * 50, len(rows)  # bounded, pruned every PRUNE_EVERY rows
    assert rows[-1].id == 400, "no row lost to a concurrent writer"
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert reader.read(path, "d", since=time.time() + 10) == []
    summary = reader.summary(path)
    assert summary[(1, "primary")]["requests"] == len(rows) and summary[(1, "primary")]["labels"] == {"cat": len(rows)}


def test_agreement_pairs_a_shadow_with_the_primary_by_request_id(writer, tmp_path):
    from dlptui.platform.local import prediction_log as reader

    path = tmp_path / "predictions.sqlite"
    log = writer.PredictionLog(str(path))
    for i in range(4):
        _record(log, i, "primary", "cat", f"q{i}")
        _record(log, i, "shadow", "cat" if i < 3 else "dog", f"q{i}")
    assert reader.agreement(path) == 0.75
    assert reader.agreement(tmp_path / "none.sqlite") is None


def test_since_takes_an_age_an_iso_time_or_epoch_seconds():
    from dlptui.actions.predict import parse_since

    assert abs(parse_since("10m") - (time.time() - 600)) < 2
    assert abs(parse_since("2h") - (time.time() - 7200)) < 2
    assert parse_since("1700000000") == 1700000000.0
    assert parse_since("2026-01-02T03:04:05+00:00") == 1767323045.0
    with pytest.raises(InvalidInput, match="--since"):
        parse_since("last tuesday")


class PrometheusStandIn:
    """Answers /api/v1/query as Prometheus' HTTP API does, from canned values by query substring."""

    def __init__(self, answers: dict[str, float]) -> None:
        self.queries: list[str] = []
        queries = self.queries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                query = parse_qs(urlsplit(self.path).query)["query"][0]
                queries.append(query)
                value = next((v for k, v in answers.items() if k in query), None)
                result = [] if value is None else [{"metric": {}, "value": [time.time(), str(value)]}]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_cluster_figures_come_from_prometheus_per_predictor():
    from dlptui.platform.cluster import seldon_metrics

    prom = PrometheusStandIn({'code!~"2.."': 3, "histogram_quantile(0.5": 0.012, "histogram_quantile(0.95": 0.04, "_count": 120})
    try:
        f = seldon_metrics.figures(prom.url, "seldon", "dogcat-deploy", "canary", "canary", 2, 20, 5.0)
    finally:
        prom.server.shutdown()
    assert (f.version, f.role, f.traffic, f.requests, f.errors, f.p50_ms, f.p95_ms) == (2, "canary", 20, 120, 3, 12.0, 40.0)
    assert all('predictor_name="canary"' in q and 'deployment_name="dogcat-deploy"' in q for q in prom.queries)
    dead = seldon_metrics.figures("http://127.0.0.1:9", "seldon", "d", "main", "primary", 1, 100, 1.0)
    assert dead.requests is None and "did not answer" in dead.note


def test_the_model_servers_feedback_hook_records_by_id_puid_or_image_and_refuses_in_one_sentence(writer, tmp_path, monkeypatch):
    """serving/dogcat_model.py's send_feedback_raw (what Seldon's /api/v1.0/feedback calls) on a real prediction log,
    without loading a model; without a log it answers 501 (the cluster's model servers keep none)."""
    import base64
    import hashlib

    from seldon_core.flask_utils import SeldonMicroserviceException

    import dogcat_model

    path = str(tmp_path / "predictions.sqlite")
    model = dogcat_model.DogCatModel(checkpoint_dir=str(tmp_path), prediction_log=path)
    log = writer.PredictionLog(path)
    image = b"\xff\xd8 the bytes of an image"
    probabilities = {"cat": 0.8, "dog": 0.2}
    first = log.record(model="m", version=1, role="primary", request_id="r1", input_sha256="0" * 64, input_bytes=10,
                       label="cat", probabilities=probabilities, latency_ms=1.0, status=200)
    second = log.record(model="m", version=1, role="primary", request_id="r2", input_sha256="0" * 64, input_bytes=10,
                        label="cat", probabilities=probabilities, latency_ms=1.0, status=200, puid="client-1",
                        image_sha256=hashlib.sha256(image).hexdigest())
    shadow = log.record(model="m", version=2, role="shadow", request_id="r2", input_sha256="0" * 64, input_bytes=10,
                        label="dog", probabilities=probabilities, latency_ms=1.0, status=200, puid="client-1")
    assert first < second < shadow

    def truths() -> dict:
        with writer.connect(path) as conn:
            return {row[0]: row[1:] for row in conn.execute("SELECT prediction_id, truth, reward FROM feedback")}

    model.send_feedback_raw({"request": {"meta": {"puid": str(first)}}, "truth": {"strData": "dog"}})
    model.send_feedback_raw({"response": {"meta": {"puid": "client-1"}}, "truth": {"jsonData": {"label": "cat"}}, "reward": 1})
    assert truths() == {first: ("dog", None), second: ("cat", 1.0)}  # the client's puid names the answer, not the shadow's
    model.send_feedback_raw({"request": {"binData": base64.b64encode(image).decode()}, "truth": {"data": {"ndarray": [["dog"]]}}})
    assert truths() == {first: ("dog", None), second: ("dog", None)}  # by the image; the second replaced the first

    for message, status, words in (
        ({"request": {"meta": {"puid": "nobody"}}, "truth": {"strData": "cat"}}, 404, "No answered prediction with the id 'nobody'"),
        ({"request": {"meta": {"puid": str(first)}}, "truth": {"strData": "horse"}}, 400, "no label 'horse'; its labels are cat, dog."),
        ({"request": {"meta": {"puid": str(first)}}}, 400, "neither a truth"),
        ({"truth": {"strData": "cat"}}, 400, "names no prediction"),
        ({"request": {"meta": {"puid": str(first)}}, "truth": {"strData": ""}}, 400, "must carry one label"),
        ({"request": {"meta": {"puid": str(first)}}, "reward": "lots"}, 400, "reward must be a number"),
    ):
        with pytest.raises(SeldonMicroserviceException) as refused:
            model.send_feedback_raw(message)
        assert (refused.value.status_code, words in refused.value.message) == (status, True), refused.value.message
    assert truths() == {first: ("dog", None), second: ("dog", None)}

    without = dogcat_model.DogCatModel(checkpoint_dir=str(tmp_path))
    with pytest.raises(SeldonMicroserviceException) as refused:
        without.send_feedback_raw({"request": {"meta": {"puid": "1"}}, "truth": {"strData": "cat"}})
    assert (refused.value.status_code, refused.value.message) == (501, "This model server keeps no prediction log to record feedback in.")


def test_a_canarys_numbers_since_it_started_come_from_prometheus_increases():
    """The cluster's verdict input: requests, errors and the latency histogram of one predictor as Prometheus'
    increase over the window since the canary started (cumulative buckets made per bucket, seconds made ms)."""
    import math

    from dlptui.errors import Unreachable
    from dlptui.platform.cluster import seldon_metrics
    from tests.standins.prometheus import PrometheusStandin, Series

    buckets = {0.005: 10.1, 0.01: 60.4, 0.05: 99.6, math.inf: 100.2}
    prom = PrometheusStandin({"canary": Series(requests=100.2, errors=2.4, buckets=buckets)}).start()
    try:
        arm = seldon_metrics.arm(prom.url, "seldon", "dogcat-deploy", "canary", "canary", 2, time.time() - 600, 5.0)
    finally:
        prom.stop()
    assert (arm.version, arm.role, arm.requests, arm.errors) == (2, "canary", 100, 2)
    assert arm.bounds_ms == (5.0, 10.0, 50.0, math.inf) and arm.bucket_counts == (10, 50, 40, 0)
    assert len(prom.queries) == 3 and all('predictor_name="canary"' in q and "increase(" in q for q in prom.queries)
    assert all(q.split("[")[1].split("]")[0] in {f"{s}s" for s in range(600, 603)} for q in prom.queries)
    with pytest.raises(Unreachable) as dead:
        seldon_metrics.arm("http://127.0.0.1:9", "seldon", "d", "main", "primary", 1, time.time() - 5, 1.0)
    assert "Prometheus at http://127.0.0.1:9 did not answer" in str(dead.value)
