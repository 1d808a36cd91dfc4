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
