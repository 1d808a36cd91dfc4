"""A corpus of bad requests against the live Seldon microservice (through the deployment's gateway).

Every one must be answered with a 4xx and a sentence saying what is wrong, and the server must
go on answering good images afterwards.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib

import httpx
import pytest

from tests.fixtures.serving import DEPLOYMENT, image_bytes



def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height pixels, with a tiny pixel stream (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _big_jpeg() -> bytes:
    from PIL import Image

    import io

    buf = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _corpus() -> dict[str, tuple[bytes, str]]:
    """name -> (raw HTTP body, content type)."""
    jpeg = _big_jpeg()

    def js(obj) -> tuple[bytes, str]:
        return json.dumps(obj).encode(), "application/json"

    return {
        "not an image": js({"binData": _b64(b"these are not the pixels you are looking for" * 10)}),
        "truncated jpeg": js({"binData": _b64(jpeg[: len(jpeg) // 2])}),
        "empty body": (b"", "application/json"),
        "bad json": (b'{"binData": "abc', "application/json"),
        "base64 that does not decode": js({"binData": "this is *not* base64!!"}),
        "empty binData": js({"binData": ""}),
        "binData not a string": js({"binData": 12345}),
        "decompression bomb": js({"binData": _b64(_png_header_only(100_000, 100_000))}),
        "huge image over the pixel limit": js({"binData": _b64(_png_header_only(9_000, 9_000))}),
        "gif, not jpeg or png": js({"binData": _b64(image_bytes(fmt="GIF", mode="P", color=3))}),
        "tensor values do not match its shape": js({"data": {"tensor": {"shape": [4, 4, 3], "values": [1, 2, 3]}}}),
        "tensor shape not numbers": js({"data": {"tensor": {"shape": ["a"], "values": [1]}}}),
        "array of the wrong rank": js({"data": {"ndarray": [1, 2, 3]}}),
        "array with 5 channels": js({"data": {"ndarray": [[[0, 0, 0, 0, 0]]]}}),
        "ragged array": js({"data": {"ndarray": [[[1, 2, 3]], [[1, 2]]]}}),
        "text in an array": js({"data": {"ndarray": [[["a", "b", "c"]]]}}),
        "pixel values out of range": js({"data": {"ndarray": [[[300, -4, 1]]]}}),
        "a batch of two images": js({"data": {"ndarray": [[[[1, 2, 3]]], [[[1, 2, 3]]]]}}),
        "json array, not an object": js([1, 2, 3]),
        "no image at all": js({"strData": "a cat, trust me"}),
    }


CORPUS = _corpus()


@pytest.fixture(scope="module")
def endpoint(served) -> str:
    return served.serving.get_deployment(DEPLOYMENT).endpoint


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def image_request():
    """serving/image_request.py, imported as the model server imports it (no torch, no server)."""
    import importlib.util

    from tests.fixtures.serving import REPO

    spec = importlib.util.spec_from_file_location("image_request", REPO / "serving" / "image_request.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRAPPER_KINDS = {"empty body", "bad json"}  # refused by Seldon's wrapper before the model sees them


@pytest.mark.parametrize("kind", sorted(set(CORPUS) - WRAPPER_KINDS))
def test_request_decoding_refuses_each_bad_kind_with_a_sentence(kind, image_request):
    message = json.loads(CORPUS[kind][0])
    with pytest.raises(image_request.BadRequest) as refused:
        image_request.image_from_message(message)
    assert 400 <= refused.value.status < 500
    assert refused.value.message.endswith(".") and len(refused.value.message) > 10


def test_transparent_and_grey_images_become_rgb(image_request):
    from PIL import Image

    rgba = image_request.decode_image(image_bytes(mode="RGBA", color=(0, 0, 0, 0), fmt="PNG"))
    assert rgba.mode == "RGB" and rgba.getpixel((0, 0)) == (255, 255, 255), "transparent parts on white"
    grey = image_request.decode_image(image_bytes(mode="L", color=77))
    assert grey.mode == "RGB" and grey.getpixel((0, 0))[0] == grey.getpixel((0, 0))[2]
    deep = Image.new("I;16", (4, 4), 4000)
    import io

    buf = io.BytesIO()
    deep.save(buf, "PNG")
    assert image_request.decode_image(buf.getvalue()).mode == "RGB"


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CORPUS))
def test_bad_request_gets_4xx_with_a_sentence_and_server_keeps_serving(kind, endpoint, http):
    body, content_type = CORPUS[kind]
    response = http.post(endpoint, content=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, (kind, response.status_code, response.text)
    info = response.json()["status"]["info"]
    assert isinstance(info, str) and len(info) > 10, info

    good = http.post(endpoint, json={"binData": _b64(image_bytes())})
    assert good.status_code == 200, good.text
    assert good.json()["jsonData"]["label"] in ("cat", "dog")


@pytest.mark.slow
def test_pixel_limits_answer_413(endpoint, http):
    body, content_type = CORPUS["decompression bomb"]
    response = http.post(endpoint, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 413
    assert "pixels" in response.json()["status"]["info"]


@pytest.mark.slow
def test_greyscale_rgba_and_png_are_accepted(endpoint, http):
    for data in (
        image_bytes(mode="L", color=120),
        image_bytes(mode="RGBA", color=(10, 200, 30, 128), fmt="PNG"),
        image_bytes(fmt="PNG"),
    ):
        response = http.post(endpoint, json={"binData": _b64(data)})
        assert response.status_code == 200, response.text
        probabilities = response.json()["jsonData"]["probabilities"]
        assert set(probabilities) == {"cat", "dog"}
        assert abs(sum(probabilities.values()) - 1.0) < 1e-4


@pytest.mark.slow
def test_decoded_image_as_ndarray_and_tensor_is_accepted(endpoint, http):
    pixels = [[[200, 30, 30]] * 8] * 6
    flat = [v for row in pixels for px in row for v in px]
    for data in ({"ndarray": pixels}, {"ndarray": [pixels]}, {"tensor": {"shape": [6, 8, 3], "values": flat}}):
        response = http.post(endpoint, json={"data": data})
        assert response.status_code == 200, response.text
        assert response.json()["jsonData"]["label"] in ("cat", "dog")


@pytest.mark.slow
def test_platform_predict_turns_a_bad_image_into_an_error_not_an_exception(served):
    prediction = served.serving.predict(DEPLOYMENT, b"GIF89a but not really", "fake.gif")
    assert prediction.label is None
    assert prediction.error and "image" in prediction.error
    assert prediction.image == "fake.gif"


@pytest.mark.slow
def test_the_gateway_refuses_a_body_over_its_limit_without_reading_it(endpoint, http):
    import socket

    host, port = endpoint.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000000000\r\n\r\n{"
        )
        chunks = []
        while chunk := sock.recv(65536):  # headers and body may come in separate segments
            chunks.append(chunk)
        answer = b"".join(chunks).decode()
    assert answer.startswith("HTTP/1.1 413"), answer[:80]
    assert "at most" in answer
    assert http.post(endpoint, json={"binData": _b64(image_bytes())}).status_code == 200
