"""Predicting files: read each image with one sentence for what cannot be read, send the rest; which deployment
answers when none is named.

The error rules (README): one image that cannot be read or is not an image is one sentence (InvalidInput, exit 2;
a missing file NotFound, exit 3); of several images each one's sentence is its row, and the command fails (exit 2)
when any did. No sentence names the protocol (the image travels as Seldon's binData, which a user never typed).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from dlptui.actions.user_files import read_user_file
from dlptui.errors import InvalidInput, NotFound
from dlptui.platform.model import Deployment, Prediction

IMAGE_FORMATS = ("JPEG", "PNG")  # what the model server decodes (a camera's MPO opens as JPEG)


def read_image(path: str | Path) -> bytes:
    """The file's bytes once they are known to be a JPEG or PNG; NotFound for a missing file, InvalidInput with one
    sentence for anything else that cannot be sent (a folder, no permission, empty, not an image)."""
    data = read_user_file(path, "file", give="give the image files in it", text=False)
    if not data:
        raise InvalidInput(f"{path} is empty; give a JPEG or PNG image.")
    from PIL import Image, UnidentifiedImageError

    try:  # the header only: the model server decodes the pixels (and says so if they are damaged)
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS):
            pass
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidInput(f"{path} is not an image (JPEG or PNG); give a photo as a .jpg or .png file.") from None
    return data


def predict_one(platform, deployment: str, path: str | Path) -> Prediction:
    """One image's prediction, or its one sentence raised: NotFound (no such file), InvalidInput (not an image, or
    the model server refused it). A deployment that does not serve raises its own error (Unreachable)."""
    prediction = platform.serving.predict(deployment, read_image(path), str(path))
    if prediction.error:
        raise InvalidInput(prediction.error)
    return prediction


def predict_files(platform, deployment: str, paths: Iterable[str | Path]) -> list[Prediction]:
    """One Prediction per file, in order, a file that cannot be predicted holding its sentence in `error`; an
    unknown deployment fails once, before any file, and one that stops serving fails the whole run."""
    serving = platform.serving
    serving.get_deployment(deployment)
    results: list[Prediction] = []
    for path in paths:
        try:
            results.append(serving.predict(deployment, read_image(path), str(path)))
        except (InvalidInput, NotFound) as e:
            results.append(Prediction(image=str(path), error=str(e)))
    return results


def candidates(platform) -> list[Deployment]:
    """The deployments a prediction may go to when none is named; NotFound when nothing is deployed."""
    deployments = sorted(platform.serving.list_deployments(), key=lambda d: d.name)
    if not deployments:
        raise NotFound("Nothing is deployed; deploy a model version first (`dlptui deploy dogcat-model@production`).")
    return deployments


def several(deployments: list[Deployment]) -> InvalidInput:
    """The sentence for several deployments and none named, with nobody at a terminal to ask."""
    names = ", ".join(d.name for d in deployments)
    return InvalidInput(f"There are {len(deployments)} deployments ({names}); name one with --deployment NAME.")


def prediction_json(p: Prediction) -> dict:
    if p.error:
        return {"image": p.image, "error": p.error}
    return {
        "id": p.id,  # the prediction's id for `dlptui feedback DEPLOYMENT#ID` (Seldon's meta.puid)
        "image": p.image,
        "label": p.label,
        "probabilities": p.probabilities,
        "latency_ms": round(p.latency_ms, 2) if p.latency_ms is not None else None,
        "version": p.version,
    }


def logged(platform, deployment: str, since: float | None = None, limit: int = 1000):
    """The deployment's prediction log, oldest first."""
    return platform.serving.predictions(deployment, since=since, limit=limit)


def parse_since(text: str, option: str = "--since") -> float:
    """`--since` (or `option`) as a user gives it: seconds since the epoch, an ISO time, or an age such as 10m, 2h,
    1d."""
    import time
    from datetime import datetime

    from dlptui.errors import InvalidInput

    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].replace(".", "", 1).isdigit() and text[-1:] in units:
        return time.time() - float(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} takes an age (10m, 2h, 1d), an ISO time or seconds since the epoch, not {text!r}.") from None
    return moment.timestamp()
