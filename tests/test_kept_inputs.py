"""Kept inputs without a server: the model server's own modules (serving/prediction_log.py, serving/kept_inputs.py)
on a real SQLite log and real files, and the local adapter's side of it (settings, pruning, reading back), and the
words of `keep-inputs` and `replay` for bad input. The served path is tests/test_replay.py."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from dlptui.errors import InvalidInput, NotFound, PlatformError
from tests.helpers import run

SERVING = Path(__file__).resolve().parents[1] / "serving"


@pytest.fixture
def server_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(SERVING))
    import kept_inputs
    import prediction_log

    return prediction_log, kept_inputs


def _predict(log, keeper, data: bytes, status: int = 200) -> int:
    sha = hashlib.sha256(data).hexdigest()
    ident = log.record(model="m", version=1, role="primary", request_id="r", input_sha256="b" * 64, input_bytes=len(data),
                       label="cat", probabilities={"cat": 1.0, "dog": 0.0}, latency_ms=1.0, status=status, image_sha256=sha)
    if status == 200:
        with log.locked() as conn:
            keeper.keep(conn, ident, sha, data)
    return ident


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


def test_off_by_default_then_the_last_n_under_the_cap_private_and_gone_with_retention(server_modules, tmp_path):
    prediction_log, kept_inputs = server_modules
    log = prediction_log.PredictionLog(str(tmp_path / "predictions.sqlite"), keep=6)
    settings, folder = tmp_path / "keep_inputs.json", tmp_path / "inputs"
    keeper = kept_inputs.KeptInputs(str(settings), str(folder))
    umask = os.umask(0o177)  # a model server's (local_microservice.py): the folder must still be usable
    try:
        _predict(log, keeper, b"first image")
        assert not folder.exists()  # off by default: nothing written, not even the folder

        settings.write_text(json.dumps({"keep": 3, "cap_bytes": 10_000}))
        images = [bytes([i]) * 1000 for i in range(5)]
        for image in images:
            _predict(log, keeper, image)
        _predict(log, keeper, images[2])  # sent again: kept once, as its latest
        _predict(log, keeper, b"refused" * 10, status=400)  # an answer that failed keeps nothing
        kept = _files(folder)
        assert kept == {hashlib.sha256(i).hexdigest(): i for i in (images[2], images[3], images[4])}
        assert folder.stat().st_mode & 0o777 == 0o700
        assert {(folder / name).stat().st_mode & 0o777 for name in kept} == {0o600}

        settings.write_text(json.dumps({"keep": 100, "cap_bytes": 2500}))  # the cap: the newest first, 2 of 1,000 B
        _predict(log, keeper, images[0])
        assert set(_files(folder)) == {hashlib.sha256(i).hexdigest() for i in (images[0], images[2])}

        settings.write_text(json.dumps({"keep": 100, "cap_bytes": 10**6}))
        for i in range(10):  # the log keeps 6 rows: an image whose prediction it pruned goes with it
            _predict(log, keeper, f"new {i}".encode())
        with log.locked() as conn:
            first = conn.execute("SELECT MIN(id) FROM predictions").fetchone()[0]
            rows = conn.execute("SELECT sha256, last_id FROM inputs").fetchall()
        assert rows and all(last >= first for _, last in rows)
        assert set(_files(folder)) == {sha for sha, _ in rows}
        assert hashlib.sha256(images[0]).hexdigest() not in _files(folder)
    finally:
        os.umask(umask)


def test_the_adapter_turns_keeping_off_and_reads_back_checked(server_modules, tmp_path, monkeypatch):
    prediction_log, kept_inputs = server_modules
    from dlptui.platform.local import kept_inputs as local

    folder = tmp_path / "dogcat-deploy"
    folder.mkdir()
    log = prediction_log.PredictionLog(str(folder / "predictions.sqlite"))
    keeper = kept_inputs.KeptInputs(str(folder / "keep_inputs.json"), str(folder / "inputs"))

    with pytest.raises(NotFound) as off:
        local.read("dogcat-deploy", folder, _predict(log, keeper, b"before"))
    assert "keeps no inputs; turn keeping on with `dlptui deployment keep-inputs dogcat-deploy 1000`" in str(off.value)

    shown = local.apply("dogcat-deploy", folder, 2, None)
    assert (shown.keep, shown.cap_bytes, shown.images) == (2, 256 * 1024 * 1024, 0)
    assert (folder / "keep_inputs.json").stat().st_mode & 0o777 == 0o600
    ids = [_predict(log, keeper, f"image {i}".encode()) for i in range(3)]
    assert local.describe("dogcat-deploy", folder).images == 2
    assert local.read("dogcat-deploy", folder, ids[2]) == b"image 2"
    assert [p.id for p in local.kept_predictions("dogcat-deploy", folder, None, 100)] == ids[1:]
    with pytest.raises(NotFound) as old:
        local.read("dogcat-deploy", folder, ids[0])
    assert "is no longer kept (dogcat-deploy keeps the images of its last 2 predictions)" in str(old.value)

    assert local.apply("dogcat-deploy", folder, 1, None).images == 1  # fewer: pruned at once, without a prediction
    assert local.read("dogcat-deploy", folder, ids[2]) == b"image 2"  # the newest stays
    kept = folder / "inputs" / hashlib.sha256(b"image 2").hexdigest()
    kept.write_bytes(b"image 3")
    with pytest.raises(PlatformError) as damaged:
        local.read("dogcat-deploy", folder, ids[2])
    assert "is damaged (its bytes no longer match" in str(damaged.value)
    kept.unlink()
    with pytest.raises(NotFound) as gone:
        local.read("dogcat-deploy", folder, ids[2])
    assert f"The kept image of dogcat-deploy#{ids[2]} is gone from {kept}" in str(gone.value)

    off = local.apply("dogcat-deploy", folder, 0, None)
    assert (off.keep, off.images, off.bytes) == (0, 0, 0)
    assert not (folder / "inputs").exists() and not (folder / "keep_inputs.json").exists()
    with log.locked() as conn:
        assert conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 0
    _predict(log, keeper, b"after")
    assert not (folder / "inputs").exists()  # off again: nothing written


@pytest.mark.parametrize("argv, said", [
    (("deployment", "keep-inputs", "dogcat-deploy", "lots"), "Keep the inputs of a number of predictions (e.g. 1000) or 'off', not 'lots'."),
    (("deployment", "keep-inputs", "dogcat-deploy", "10", "--cap", "big"), "--cap takes a size such as 256MiB"),
    (("deployment", "keep-inputs", "dogcat-deploy", "10", "--cap", "10KiB"), "must be at least 1 MiB"),
    (("deployment", "keep-inputs", "nobody", "10"), "There is no deployment named 'nobody'"),
    (("replay", "nobody", "--to", "dogcat-model@1"), "There is no deployment named 'nobody'"),
    (("replay", "dogcat-deploy"), "The following arguments are required: --to"),
])
def test_bad_words_are_one_sentence(argv, said, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DLPTUI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    code, out, err = run(capsys, *argv)
    assert code in (2, 3) and out == "" and said in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_sizes_and_counts_parse():
    from dlptui.actions.kept_inputs import parse_cap, parse_keep

    assert [parse_keep(w) for w in ("off", "0", "250")] == [0, 0, 250]
    assert [parse_cap(w) for w in (None, "64MiB", "1GB", "2000000")] == [None, 64 * 1024**2, 10**9, 2_000_000]
    with pytest.raises(InvalidInput):
        parse_keep("-3")
