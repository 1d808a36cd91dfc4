"""The model server trusts no checkpoint it did not download itself: a private cache folder, and a
manifest of what it downloaded checked before a cached checkpoint is used again."""

from __future__ import annotations

import importlib.util
import os

import pytest

from dlptui import resources


@pytest.fixture
def model_module(monkeypatch):
    monkeypatch.syspath_prepend(str(resources.serving_dir()))
    monkeypatch.syspath_prepend(str(resources.trial_dir()))
    spec = importlib.util.spec_from_file_location("dogcat_model_under_test", resources.serving_dir() / "dogcat_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_shared_cache_folder_is_refused(model_module, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("DLPTUI_CHECKPOINT_CACHE", str(shared))
    with pytest.raises(RuntimeError, match="is not private"):
        model_module.private_cache()


def test_the_default_cache_is_this_users_own(model_module, tmp_path, monkeypatch):
    monkeypatch.delenv("DLPTUI_CHECKPOINT_CACHE", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    root = model_module.private_cache()
    assert root.parent == tmp_path and root.stat().st_uid == os.getuid() and not root.stat().st_mode & 0o077


def test_a_planted_or_changed_checkpoint_is_not_trusted(model_module, tmp_path):
    folder = tmp_path / "dogcat-model-3"
    folder.mkdir()
    (folder / "state_dict.pth").write_bytes(b"weights")
    assert not model_module.manifest_matches(folder)  # planted: no manifest
    model_module.write_manifest(folder)
    assert model_module.manifest_matches(folder)
    (folder / "state_dict.pth").write_bytes(b"other weights")
    assert not model_module.manifest_matches(folder)  # changed after the download


def test_the_model_server_runs_only_the_jpeg_and_png_parsers(monkeypatch):
    import io

    from PIL import Image

    monkeypatch.syspath_prepend(str(resources.serving_dir()))
    spec = importlib.util.spec_from_file_location("image_request_under_test", resources.serving_dir() / "image_request.py")
    image_request = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(image_request)
    for fmt in ("TIFF", "BMP", "GIF"):
        data = io.BytesIO()
        Image.new("RGB", (8, 8)).save(data, fmt)
        with pytest.raises(image_request.BadRequest) as refused:
            image_request.decode_image(data.getvalue())
        assert 400 <= refused.value.status < 500 and "JPEG or PNG" in refused.value.message
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(image_request.BadRequest):
        image_request.decode_image(eps)
    camera = io.BytesIO()
    Image.new("RGB", (8, 8)).save(camera, "MPO", save_all=True, append_images=[Image.new("RGB", (8, 8))])
    assert image_request.decode_image(camera.getvalue()).size == (8, 8)
