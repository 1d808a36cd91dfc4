"""The per-request summary on the serving side: the prediction log's columns (and a log written before them), the real
model server keeping each answered request's summary in its log and in the answer's meta.tags, and the reference
computation (serving/reference.py) summarizing an image exactly as the server summarized the same request."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.serving import DEPLOYMENT, image_bytes, version_of

REPO = Path(__file__).resolve().parents[1]
OLD_SCHEMA = """
CREATE TABLE predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, model TEXT NOT NULL,
    version INTEGER NOT NULL, role TEXT NOT NULL, request_id TEXT NOT NULL, input_sha256 TEXT NOT NULL,
    input_bytes INTEGER NOT NULL, label TEXT, probabilities TEXT NOT NULL, latency_ms REAL NOT NULL, status INTEGER NOT NULL);
INSERT INTO predictions (time, model, version, role, request_id, input_sha256, input_bytes, label, probabilities,
    latency_ms, status) VALUES (1.0, 'm', 1, 'primary', 'old', '00', 3, 'cat', '{"cat": 0.9}', 2.0, 200);
"""


@pytest.fixture
def serving_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "serving"))
    import embedding_summary
    import prediction_log

    return prediction_log, embedding_summary


def _record(log, status: int = 200, summary=None) -> None:
    log.record(model="m", version=1, role="primary", request_id="r", input_sha256="0" * 64, input_bytes=10,
               label="cat" if status == 200 else None, probabilities={"cat": 0.9} if status == 200 else {},
               latency_ms=1.0, status=status, summary=summary)


def test_a_summary_is_kept_beside_its_prediction_and_read_back(serving_modules, tmp_path):
    from dlptui.platform.local import prediction_log as reader

    writer, summaries = serving_modules
    import numpy as np

    [summary] = summaries.summarize(np.array([[2.0, -1.0]]), np.arange(64, dtype=np.float32)[None, :])
    path = tmp_path / "predictions.sqlite"
    log = writer.PredictionLog(str(path))
    _record(log, summary=summary)
    _record(log, status=415)  # refused: no summary
    _record(log, summary=None)  # a server with the summary off
    [row] = reader.summaries(path)
    assert len(row.embedding) == summaries.DIMENSIONS == 32 and row.basis == summaries.basis_of(64)
    assert row.embedding == pytest.approx(tuple(np.arange(64) @ summaries.projection(64)), rel=1e-5)
    assert row.confidence == pytest.approx(1 / (1 + np.exp(-3.0)))  # softmax of (2, -1): the top class
    assert (row.id, row.role, row.version) == (1, "primary", 1)
    assert reader.summaries(path, version=2) == [] and len(reader.read(path, "d")) == 3


def test_a_log_written_before_summaries_gets_their_columns_and_keeps_its_rows(serving_modules, tmp_path):
    from dlptui.platform.local import prediction_log as reader

    writer, summaries = serving_modules
    import numpy as np

    path = tmp_path / "predictions.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SCHEMA)
    assert reader.summaries(path) == []  # the reader copes with the old columns
    [summary] = summaries.summarize(np.array([[0.0, 1.0]]), np.ones((1, 64), dtype=np.float32))
    _record(writer.PredictionLog(str(path)), summary=summary)
    rows = reader.read(path, "d")
    assert [r.request_id for r in rows] == ["old", "r"]
    assert [r.id for r in reader.summaries(path)] == [2]


def test_the_projection_is_fixed_and_named_by_its_numbers(serving_modules):
    _, summaries = serving_modules
    first = summaries.projection(1280)
    assert first.shape == (1280, 32) and abs(float(first.std()) - 32 ** -0.5) < 0.01
    assert summaries.basis_of(1280).startswith("rp32x1280-") and summaries.basis_of(64) != summaries.basis_of(1280)
    # numpy's legacy RandomState stream is frozen: these numbers are those of every numpy release
    assert float(first[0, 0]) == pytest.approx(0.04358, abs=1e-5), float(first[0, 0])


@pytest.mark.slow
def test_the_model_server_keeps_each_requests_summary_and_answers_it_in_meta_tags(served, tiny_checkpoints, tmp_path):
    """One request through Envoy to the real model server: its log row holds the summary, the answer carries the same
    in meta.tags, and the reference computation (a child process, serving/reference.py) gives the same numbers for the
    same image with the same checkpoint."""
    import httpx

    from dlptui.config import load_config
    from dlptui.platform import references

    endpoint = served.serving.get_deployment(DEPLOYMENT).endpoint
    image = image_bytes(color=(30, 160, 90))
    answer = httpx.post(endpoint, json={"binData": base64.b64encode(image).decode()}, timeout=60).json()
    tags = answer["meta"]["tags"]
    logged = next(s for s in reversed(served.serving.prediction_summaries(DEPLOYMENT, 1)) if s.basis == tags["dlptui.basis"])
    sent = struct_floats(base64.b64decode(tags["dlptui.embedding"]))
    assert logged.embedding == pytest.approx(sent) and len(sent) == 32
    assert logged.confidence == pytest.approx(tags["dlptui.confidence"])
    assert logged.confidence == pytest.approx(max(answer["jsonData"]["probabilities"].values()), abs=1e-6)

    config = load_config(env={"DLPTUI_HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")})
    made = references.compute(config, version_of(tiny_checkpoints[0], 1), None, {"green.jpg": image}, "repo@commit")
    assert made.images == 1 and made.basis == logged.basis
    assert tuple(made.embeddings[0]) == pytest.approx(logged.embedding, rel=1e-4, abs=1e-5)
    assert made.confidences[0] == pytest.approx(logged.confidence, rel=1e-6)
    assert Path(made.path) == tmp_path / "home" / "registry" / "references" / "dogcat-model" / "1-tiny-1.npz"
    assert json.loads(json.dumps(made.to_json()))["data"] == "repo@commit"


def struct_floats(blob: bytes) -> tuple[float, ...]:
    import struct

    return struct.unpack(f"<{len(blob) // 4}f", blob)
