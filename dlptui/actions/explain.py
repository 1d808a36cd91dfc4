"""Why did it say cat: a saliency map of one image, from the model a deployment serves, drawn over the image.

    explanation = explain_file(platform, "dogcat-deploy", "cat.1.jpg")       # in a thread: loads torch the first time
    write_overlay(explanation, Path("out.png"))
    caption(explanation)   # "Grad-CAM for cat (99.4%), dogcat-model@1: the brighter, the more it counted"

The model runs here, in this process (`dlptui.platform.local.checkpoint_model`): the deployment names its
version (the one that answered a prediction, or the one it serves), the registry the version's
checkpoint, and that folder must be on this machine. The served answer and this one come from the
same weights and the same eval transform, so the class explained is the one the deployment gave.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlptui import text
from dlptui.actions.predict import read_image
from dlptui.errors import InvalidInput, NotAvailable, NotFound
from dlptui.platform import rules
from dlptui.platform.model import ModelVersion


@dataclass(frozen=True)
class Explanation:
    image: str  # the file, as given
    deployment: str
    version: ModelVersion
    saliency: Any  # checkpoint_model.Saliency: label, probabilities, heat, box, overlay, method, seconds

    @property
    def label(self) -> str:
        return self.saliency.label

    @property
    def probability(self) -> float:
        return self.saliency.probabilities.get(self.saliency.label, 0.0)


def checkpoint_folder(platform, deployment: str, version: int | None = None) -> tuple[ModelVersion, Path]:
    """The model version the deployment serves (or its `version`) and that version's checkpoint folder here."""
    found = platform.serving.get_deployment(deployment)
    model_version = platform.registry.get_version(found.model, version if version is not None else found.version)
    return model_version, local_checkpoint(platform, model_version)


def local_checkpoint(platform, model_version: ModelVersion, why: str = "explain its answers") -> Path:
    """The checkpoint folder of `model_version` on this machine (the model runs here, for `why`), or one sentence."""
    location = model_version.checkpoint_location
    if not location:
        try:
            location = platform.training.checkpoint(model_version.checkpoint_uuid).location
        except NotFound:
            raise NotFound(f"The checkpoint of {model_version} ({model_version.checkpoint_uuid}) is no longer recorded; "
                           f"pick a version whose checkpoint exists to {why}.") from None
    if "://" in location:
        raise NotAvailable(f"The checkpoint of {model_version} is at {location}, not on this machine; to {why} the model "
                           "runs here, from a checkpoint folder this machine can read.")
    folder = Path(location)
    if not folder.is_dir():
        raise NotFound(f"The checkpoint of {model_version} is not on this machine ({location} is gone); "
                       f"pick a version whose checkpoint exists to {why}.")
    return folder


def prewarm() -> None:
    """Import what an explanation runs on (torch, torchvision, captum: 3 to 6 s on this machine), so that the first
    `E` of a console session waits for the model only. Nothing when they are not installed (E then says so)."""
    from dlptui.platform.local import checkpoint_model

    checkpoint_model.prewarm()


def explain_file(platform, deployment: str, path: str | Path, version: int | None = None,
                 label: str | None = None) -> Explanation:
    """The saliency map of the image file at `path` for `label` (default: the class the model gives the most),
    from the model `deployment` serves (or its `version`). Runs in a thread (torch, the first time)."""
    data = read_image(path)
    if isinstance(data, str):
        raise InvalidInput(data)
    return explain_bytes(platform, deployment, data, Path(path).name, version, label)


def explain_bytes(platform, deployment: str, image: bytes, name: str, version: int | None = None,
                  label: str | None = None) -> Explanation:
    from dlptui.platform.local import checkpoint_model

    model_version, folder = checkpoint_folder(platform, deployment, version)
    saliency = checkpoint_model.explain(folder, image, name, str(model_version), label)
    return Explanation(name, deployment, model_version, saliency)


def caption(explanation: Explanation) -> str:
    """One line saying which class the map explains, by which method, for which version."""
    how = "no part of the image raised it" if explanation.saliency.empty else "the redder, the more that part raised it"
    return (f"{explanation.saliency.method} for {explanation.label} ({explanation.probability:.1%}), "
            f"{text.model_ref(explanation.version.model, explanation.version.version)}: {how}")


def overlay_target(out: str | Path) -> Path:
    """Where `write_overlay` will write, checked before any work is done: a .png name in a folder that exists."""
    target = Path(out).expanduser()
    if target.suffix.lower() != ".png":
        raise InvalidInput(f"The overlay is written as a PNG; give a file name ending in .png, not {str(out)!r}.")
    if target.is_dir():
        raise InvalidInput(f"{out} is a folder; give the name of the PNG file to write.")
    if not target.parent.is_dir():
        raise NotFound(f"There is no folder {target.parent} to write {target.name} in; create it or pick another path.")
    return target


def write_overlay(explanation: Explanation, out: str | Path) -> Path:
    """The overlay as a PNG at `out` (whole or not at all: written beside it, then renamed); one sentence when it cannot be."""
    target = overlay_target(out)
    temporary = None
    try:
        name = str(target.parent / f".{target.name}.{secrets.token_hex(4)}.part")
        handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the user's umask decides, as for any file
        temporary = name
        with os.fdopen(handle, "wb") as file:
            explanation.saliency.overlay.save(file, "PNG")
        os.replace(temporary, target)  # only a whole file takes the name
        temporary = None
    except OSError as e:
        if e.errno in rules.NO_SPACE:
            raise rules.disk_full(target.parent.resolve()) from None
        raise InvalidInput(f"Cannot write {target} ({e.strerror or e}); check the folder is writable or pick another path.") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return target


def explanation_json(explanation: Explanation, file: Path | None = None) -> dict:
    s = explanation.saliency
    found = {
        "image": explanation.image,
        "deployment": explanation.deployment,
        "model": explanation.version.model,
        "version": explanation.version.version,
        "method": s.method,
        "label": s.label,
        "probability": round(explanation.probability, 6),
        "peak": list(s.peak()),
        "crop": list(s.box),
        "seconds": round(s.seconds, 3),
    }
    if file is not None:
        found["overlay"] = str(file)
    return found
