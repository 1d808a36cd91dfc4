"""Predicting files: read each image with one sentence for what cannot be read, send the rest."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dlptui.platform.model import Prediction


def read_image(path: str | Path) -> bytes | str:
    """The file's bytes, or one sentence on why it cannot be read."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return f"There is no file {path}."
    except IsADirectoryError:
        return f"{path} is a folder, not an image file."
    except PermissionError:
        return f"{path} cannot be read (permission denied)."
    except OSError as e:
        return f"{path} cannot be read ({e.strerror or e})."
    return data if data else f"{path} is empty."


def predict_files(platform, deployment: str, paths: Iterable[str | Path]) -> list[Prediction]:
    """One Prediction per file, in order; an unknown deployment fails once, before any file."""
    serving = platform.serving
    serving.get_deployment(deployment)
    results: list[Prediction] = []
    for path in paths:
        data = read_image(path)
        if isinstance(data, str):
            results.append(Prediction(image=str(path), error=data))
        else:
            results.append(serving.predict(deployment, data, str(path)))
    return results


def prediction_json(p: Prediction) -> dict:
    if p.error:
        return {"image": p.image, "error": p.error}
    return {
        "image": p.image,
        "label": p.label,
        "probabilities": p.probabilities,
        "latency_ms": round(p.latency_ms, 2) if p.latency_ms is not None else None,
        "version": p.version,
    }


def logged(platform, deployment: str, since: float | None = None, limit: int = 1000):
    """The deployment's prediction log, oldest first."""
    return platform.serving.predictions(deployment, since=since, limit=limit)


def parse_since(text: str) -> float:
    """`--since` as a user gives it: seconds since the epoch, an ISO time, or an age such as 10m, 2h, 1d."""
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
        raise InvalidInput(f"--since takes an age (10m, 2h, 1d), an ISO time or seconds since the epoch, not {text!r}.") from None
    return moment.timestamp()
