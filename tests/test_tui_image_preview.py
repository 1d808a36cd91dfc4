"""The console's image preview opens JPEG and PNG only, refuses a decompression bomb before decoding,
and says in one sentence what it cannot show."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from dlptui.errors import InvalidInput
from dlptui.tui.widgets.image_preview import MAX_SIDE, open_image


def save(path, fmt, size=(64, 48)):
    Image.new("RGB", size, (200, 30, 30)).save(path, fmt)
    return path


@pytest.mark.parametrize("fmt, suffix", [("JPEG", "jpg"), ("PNG", "png")])
def test_jpeg_and_png_open(tmp_path, fmt, suffix):
    picture = open_image(save(tmp_path / f"a.{suffix}", fmt))
    assert picture.info["original_size"] == (64, 48) and picture.mode == "RGB"


def test_a_big_jpeg_is_decoded_small(tmp_path):
    picture = open_image(save(tmp_path / "big.jpg", "JPEG", (4000, 3000)))
    assert picture.info["original_size"] == (4000, 3000) and max(picture.size) <= MAX_SIDE


@pytest.mark.parametrize("fmt, suffix", [("TIFF", "tif"), ("BMP", "bmp"), ("GIF", "gif")])
def test_other_formats_are_not_parsed(tmp_path, fmt, suffix):
    with pytest.raises(InvalidInput, match="is not an image the preview reads"):
        open_image(save(tmp_path / f"a.{suffix}", fmt))


def test_an_eps_file_never_reaches_ghostscript(tmp_path):
    eps = tmp_path / "a.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(InvalidInput, match="is not an image the preview reads"):
        open_image(eps)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    # a valid PNG header that claims 30000 x 30000 pixels over a few bytes of data
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png)
    with pytest.raises(InvalidInput) as refused:
        open_image(bomb)
    assert "bomb.png" in str(refused.value) and "pixels" in str(refused.value)


def test_a_damaged_file_is_one_sentence(tmp_path):
    broken = tmp_path / "cut.jpg"
    data = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(data, "JPEG")
    broken.write_bytes(data.getvalue()[:200])
    with pytest.raises(InvalidInput, match="cut.jpg"):
        open_image(broken)


def test_a_camera_mpo_jpeg_opens(tmp_path):
    first, second = Image.new("RGB", (32, 24), (10, 200, 10)), Image.new("RGB", (32, 24), (10, 10, 200))
    mpo = tmp_path / "camera.jpg"
    first.save(mpo, "MPO", save_all=True, append_images=[second])
    assert Image.open(mpo).format == "MPO"
    assert open_image(mpo).info["original_size"] == (32, 24)
