"""Turn a Seldon prediction request into one RGB image, or refuse it with a clear 4xx.

The wrapper hands `predict_raw` the parsed JSON message (REST) or a SeldonMessage (gRPC).
Everything a client can get wrong is checked here, before any tensor is built, so a bad
request never reaches the model and never costs the server more than its pixel limit:

- `binData`: base64 of an encoded JPEG or PNG (the way to send an image: a few KB);
- `data.ndarray` / `data.tensor`: a decoded image as numbers 0..255, height x width x
  channels (1, 3 or 4), optionally with a leading batch axis of 1 (what the reference
  example sent).

No torch here: this module is what the bad-input tests exercise without a model.
"""

from __future__ import annotations

import base64
import binascii
import io
import math

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000  # about 6300 x 6300; far above any photo a camera takes
FORMATS = ("JPEG", "PNG")


class BadRequest(Exception):
    """A request the client must fix; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def image_from_message(message, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The RGB image a request carries, or BadRequest with one sentence."""
    if not isinstance(message, dict):
        raise BadRequest("The request must be a JSON object with binData (a base64 JPEG or PNG) or data.ndarray.")
    if "binData" in message:
        return decode_image(decode_base64(message["binData"]), max_pixels)
    data = message.get("data")
    if isinstance(data, dict):
        if "ndarray" in data:
            return array_image(_numbers(data["ndarray"], "data.ndarray"), "data.ndarray", max_pixels)
        if "tensor" in data:
            return array_image(tensor_array(data["tensor"], max_pixels), "data.tensor", max_pixels)
    raise BadRequest(
        "The request carries no image; send binData (a base64 JPEG or PNG), data.ndarray or data.tensor."
    )


def decode_base64(value) -> bytes:
    if isinstance(value, (bytes, bytearray)):  # a gRPC message holds the raw bytes already
        raw = bytes(value)
    elif isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("binData is not valid base64; encode the image file's bytes with base64.") from None
    else:
        raise BadRequest("binData must be a base64 string of the image file's bytes.")
    if not raw:
        raise BadRequest("binData is empty; send the bytes of a JPEG or PNG image.")
    return raw


def decode_image(raw: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode JPEG/PNG bytes to RGB; the size is checked from the header, before any pixel is decoded."""
    try:  # only the JPEG and PNG parsers ever see a request's bytes (no TIFF, no EPS and its Ghostscript)
        image = Image.open(io.BytesIO(raw), formats=FORMATS)  # a camera's MPO opens as JPEG
    except Image.DecompressionBombError:
        raise BadRequest(f"The image has more than {max_pixels} pixels; send a smaller image.", 413) from None
    except UnidentifiedImageError:
        raise BadRequest("binData is not an image the model reads; send the bytes of a JPEG or PNG file.") from None
    except Exception:
        raise BadRequest("binData is not an image; send the bytes of a JPEG or PNG file.") from None
    if image.format not in (*FORMATS, "MPO"):
        raise BadRequest(f"The image is a {image.format} file; send a JPEG or PNG.", 415)
    width, height = image.size
    if width * height > max_pixels:
        raise BadRequest(
            f"The image is {width}x{height} pixels, over the limit of {max_pixels}; send a smaller image.", 413
        )
    if width == 0 or height == 0:
        raise BadRequest("The image has no pixels; send a real JPEG or PNG.")
    try:
        image.load()
    except Exception as e:  # truncated files, broken chunks, bad Huffman tables, ...
        raise BadRequest(f"The {image.format} image cannot be decoded ({_reason(e)}); send the whole, intact file.") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Greyscale, palette and alpha images become RGB (transparent parts on white)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array * (255.0 / top)).astype(np.uint8), "L")
    return image.convert("RGB")


def tensor_array(tensor, max_pixels: int) -> np.ndarray:
    if not isinstance(tensor, dict) or "shape" not in tensor or "values" not in tensor:
        raise BadRequest("data.tensor must be an object with shape and values.")
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise BadRequest("data.tensor.shape must be a list of non-negative whole numbers.")
    needed = math.prod(shape)
    if needed > max_pixels * 4:
        raise BadRequest(f"data.tensor of shape {shape} is over the limit of {max_pixels} pixels.", 413)
    values = _numbers(tensor["values"], "data.tensor.values")
    if values.ndim != 1:
        raise BadRequest("data.tensor.values must be a flat list of numbers.")
    if values.size != needed:
        raise BadRequest(f"data.tensor has {values.size} values but its shape {shape} needs {needed}.")
    return values.reshape(shape)


def array_image(array: np.ndarray, what: str, max_pixels: int) -> Image.Image:
    """A height x width x channels array of 0..255 (a leading batch axis of 1 allowed) as an RGB image."""
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise BadRequest(f"{what} holds {array.shape[0]} images; send one image per request.")
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise BadRequest(
            f"{what} has shape {list(array.shape)}; send one image as height x width x channels (1, 3 or 4)."
        )
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise BadRequest(f"{what} has no pixels.")
    if height * width > max_pixels:
        raise BadRequest(f"{what} is {width}x{height} pixels, over the limit of {max_pixels}.", 413)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise BadRequest(f"{what} must hold pixel values from 0 to 255.")
    pixels = np.rint(array).astype(np.uint8)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    image = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode)
    return to_rgb(image)


def _numbers(value, what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise BadRequest(f"{what} is not a regular array of numbers (ragged rows or text).") from None
    if array.size > 0 and array.dtype == object:
        raise BadRequest(f"{what} is not a regular array of numbers.")
    return array


def _reason(error: Exception) -> str:
    text = str(error).strip().rstrip(".")
    return text or type(error).__name__
