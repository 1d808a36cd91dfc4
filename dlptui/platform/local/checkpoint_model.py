"""A model version's checkpoint run in this process: where it looks in an image (a saliency map) and the overlay.

    saliency = explain(Path(checkpoint_folder), image_bytes, "cat.1.jpg", what="dogcat-model@1")
    saliency.overlay.save("out.png")          # the image at its own size, the map drawn over what the model saw

The model is the one the model server loads: the shipped trial's `model_def.load_model` on the
checkpoint folder and its `eval_transform` (`dlptui.resources.trial_dir()`, as the local model
servers have it on their path), with the map from the trial's `saliency.py` (Grad-CAM, captum). The
trial's modules are imported here, the first time, under their own names for the length of the
import only, so `settings` and `data` never stay in this process's module table. Loaded models are
kept (two at most) by folder and the state file's time, so a second explanation of the same
version costs one forward and one backward pass.

Everything heavy (torch, torchvision, captum, Determined's trial classes) is imported by the first
call, in the caller's thread: the console calls this from a worker, never at start. Every failure a
person can meet (no torch here, a checkpoint that cannot be read, an image that cannot be decoded) is
a `dlptui.errors` exception with one sentence.
"""

from __future__ import annotations

import importlib
import io
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlptui import resources
from dlptui.errors import InvalidInput, NotAvailable, NotFound

FORMATS = ("JPEG", "PNG")  # the parsers the model server lets a request reach (serving/image_request.py)
MAX_PIXELS = 40_000_000  # the model server's limit
TRIAL_MODULES = ("settings", "data", "model_def", "saliency")  # the trial's own top-level names
KEEP_MODELS = 2
ALPHA = (0.2, 0.75)  # how much of the colour covers the picture where the map is 0 and where it is 1
DIM = 0.45  # what is left of the brightness outside the crop the model saw
# a blue-to-red ramp (value, (r, g, b)): cold is dark blue, hot is red
RAMP = ((0.0, (20, 30, 140)), (0.3, (0, 150, 255)), (0.55, (60, 230, 120)), (0.8, (255, 215, 0)), (1.0, (230, 25, 25)))

_lock = threading.Lock()  # one explanation at a time: captum hooks the model while it runs
_trials: dict[str, tuple[Any, Any]] = {}  # trial folder -> (model_def, saliency)
_models: OrderedDict[tuple[str, int, str], tuple[Any, Any, tuple[str, ...]]] = OrderedDict()


@dataclass(frozen=True)
class Saliency:
    """Where the model looked, for one class."""

    label: str  # the class explained
    probabilities: dict[str, float]  # what the model says about the image
    heat: Any  # numpy float32 array of the crop the model saw (rows x columns), 0..1, 1 = brightest
    box: tuple[int, int, int, int]  # that crop in the image's pixels: left, top, right, bottom
    overlay: Any = field(repr=False)  # PIL RGB image of the image's own size, the map drawn over the crop
    method: str = "Grad-CAM"
    seconds: float = 0.0  # decoding, loading (when not kept), computing and drawing

    @property
    def empty(self) -> bool:
        """Nothing in the image raised the class (the map is zero everywhere)."""
        return not float(self.heat.max()) > 0

    def peak(self) -> tuple[int, int]:
        """(x, y) of the map's brightest point, in the image's pixels."""
        import numpy as np

        row, column = np.unravel_index(int(np.argmax(self.heat)), self.heat.shape)
        left, top, right, bottom = self.box
        rows, columns = self.heat.shape
        return (int(left + (column + 0.5) * (right - left) / columns), int(top + (row + 0.5) * (bottom - top) / rows))


def explain(checkpoint: Path, image: bytes, filename: str, what: str, label: str | None = None) -> Saliency:
    """The saliency map of `image` (JPEG or PNG bytes, named `filename` in sentences) for class `label` (default:
    the class the model gives the most), from the checkpoint folder of `what` (e.g. "dogcat-model@1")."""
    start = time.perf_counter()
    picture = decode(image, filename)
    with _lock:
        model, transform, classes, saliency = _model(checkpoint, what)
        if label is not None and label not in classes:
            raise InvalidInput(f"{what} knows the classes {', '.join(classes)}, not {label!r}; explain one of those.")
        try:
            batch = transform(picture).unsqueeze(0)
            heat, probabilities = saliency.grad_cam(model, batch, None if label is None else classes.index(label))
        except Exception as e:  # a model the map cannot be drawn for (no convolutional block, another kind of output)
            said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise NotAvailable(f"{what} cannot be explained ({said[:200]}); explain a version of the shipped trial's model.") from None
    said = dict(zip(classes, probabilities))
    explained = label or max(said, key=said.get)
    box = crop_box(transform, picture.size)
    overlay = draw_overlay(picture, heat, box)
    return Saliency(explained, said, heat, box, overlay, saliency.METHOD, time.perf_counter() - start)


def classify(checkpoint: Path, images: list[tuple[bytes, str]], what: str) -> list[dict[str, float]]:
    """The probabilities the checkpoint folder of `what` gives each of `images` ((bytes, name in sentences)), as its
    model server answers (the same decoding, eval transform and softmax, rounded the same): `replay` runs it here."""
    import torch

    pictures = [decode(image, name) for image, name in images]
    out = []
    with _lock:
        model, transform, classes, _ = _model(checkpoint, what)
        with torch.inference_mode():
            for start in range(0, len(pictures), 16):
                batch = torch.stack([transform(p) for p in pictures[start:start + 16]])
                for row in torch.softmax(model(batch).float(), dim=1).tolist():
                    out.append({name: round(p, 6) for name, p in zip(classes, row)})
    return out


def decode(image: bytes, filename: str) -> Any:
    """The RGB picture as the model server decodes it (JPEG and PNG parsers only, its pixel limit,
    transparency on white), or InvalidInput with one sentence naming the file."""
    from PIL import Image, UnidentifiedImageError

    if not image:
        raise InvalidInput(f"{filename} is empty; pick a JPEG or PNG image.")
    try:
        picture = Image.open(io.BytesIO(image), formats=FORMATS)
        width, height = picture.size
        if width * height > MAX_PIXELS:
            raise InvalidInput(f"{filename} is {width}x{height} pixels, over the model server's limit; pick a smaller image.")
        picture.load()
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InvalidInput(f"{filename} is not a JPEG or PNG image the model reads; pick a JPEG or PNG file.") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidInput(f"{filename} is damaged and cannot be decoded ({e}); pick another file.") from None
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return picture.convert("RGB")


def crop_box(transform: Any, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The part of an image of `size` (width, height) that the eval transform hands the model (a Resize,
    then a CenterCrop, as torchvision computes them), in the image's pixels: left, top, right, bottom."""
    from torchvision import transforms

    width, height = size
    resized, cropped = (width, height), (width, height)
    for step in getattr(transform, "transforms", []):
        if isinstance(step, transforms.Resize):
            if isinstance(step.size, int) or len(step.size) == 1:  # the shorter side to this, the longer in proportion
                short = step.size if isinstance(step.size, int) else step.size[0]
                resized = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
            else:
                resized = (step.size[1], step.size[0])
        elif isinstance(step, transforms.CenterCrop):
            cropped = (step.size[1], step.size[0])
    sx, sy = resized[0] / width, resized[1] / height
    left, top = int(round((resized[0] - cropped[0]) / 2.0)), int(round((resized[1] - cropped[1]) / 2.0))
    box = (left / sx, top / sy, (left + cropped[0]) / sx, (top + cropped[1]) / sy)
    return max(0, round(box[0])), max(0, round(box[1])), min(width, round(box[2])), min(height, round(box[3]))


def draw_overlay(picture: Any, heat: Any, box: tuple[int, int, int, int]) -> Any:
    """`picture` with the map coloured over `box` (more colour where it is brighter) and the rest dimmed."""
    import numpy as np
    from PIL import Image, ImageEnhance

    left, top, right, bottom = box
    levels = np.linspace(0.0, 1.0, 256)
    stops = [s for s, _ in RAMP]
    lut = [np.interp(levels, stops, [c[i] for _, c in RAMP]).round().astype(int).tolist() for i in range(3)]
    alpha = np.interp(levels, [0.0, 1.0], [255 * ALPHA[0], 255 * ALPHA[1]]).round().astype(int).tolist()
    level = Image.fromarray((np.clip(heat, 0.0, 1.0) * 255).round().astype(np.uint8), "L")
    level = level.resize((max(1, right - left), max(1, bottom - top)), Image.Resampling.BILINEAR)
    colour = Image.merge("RGB", [level.point(table) for table in lut])
    out = ImageEnhance.Brightness(picture).enhance(DIM)
    seen = picture.crop(box)
    out.paste(Image.composite(colour, seen, level.point(alpha)), (left, top))
    return out


def _model(checkpoint: Path, what: str) -> tuple[Any, Any, tuple[str, ...], Any]:
    """(model in eval mode, eval transform, classes, the trial's saliency module) of a checkpoint folder, kept."""
    state = checkpoint / "state_dict.pth"
    try:
        stamp = state.stat().st_mtime_ns
    except FileNotFoundError:
        raise NotFound(f"The checkpoint of {what} is not on this machine ({checkpoint} holds no state_dict.pth); "
                       "register a version whose checkpoint exists.") from None
    except OSError as e:
        raise NotAvailable(f"The checkpoint of {what} cannot be read ({e.strerror or e}); check {checkpoint}.") from None
    model_def, saliency = trial_code(resources.trial_dir())
    key = (str(checkpoint.resolve()), stamp, str(Path(model_def.__file__).resolve()))
    if key in _models:
        _models.move_to_end(key)
        return (*_models[key], saliency)
    try:
        model, hparams = model_def.load_model(checkpoint)
        transform = model_def.eval_transform(hparams)
    except Exception as e:  # a damaged file, a refused pickle, weights of another model, settings of another trial
        said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if getattr(e, "user_facing", False):
            raise NotAvailable(f"The checkpoint of {what} cannot be loaded: {said}") from None
        raise NotAvailable(f"The checkpoint of {what} ({checkpoint}) cannot be read ({said[:200]}); "
                           "explain a version whose checkpoint is intact.") from None
    classes = tuple(getattr(model_def, "CLASSES", ("cat", "dog")))
    _models[key] = (model, transform, classes)
    while len(_models) > KEEP_MODELS:
        _models.popitem(last=False)
    return model, transform, classes, saliency


def prewarm() -> None:
    """Import what `explain` runs on (torch, torchvision, captum), where they are installed."""
    try:
        import captum.attr  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        pass


def trial_code(folder: Path) -> tuple[Any, Any]:
    """The trial's `model_def` and `saliency` modules from `folder`, imported once per folder. For the length of
    the import the folder leads `sys.path` and the trial's names are its own; afterwards every name the
    trial uses is what it was before (the modules keep their own references)."""
    key = str(folder.resolve())
    if key in _trials:
        return _trials[key]
    try:
        import torch  # noqa: F401  (before the trial, for the sentence below)
        import captum  # noqa: F401
    except ImportError as e:
        raise NotAvailable(f"Explanations run the model here and need {e.name or 'torch'}; install dlptui[local].") from None
    stash = {name: sys.modules.pop(name) for name in TRIAL_MODULES if name in sys.modules}
    sys.path.insert(0, key)
    try:
        model_def = importlib.import_module("model_def")
        saliency = importlib.import_module("saliency")
    except ImportError as e:
        raise NotAvailable(f"The trial in {folder} cannot be imported ({e}); reinstall dlptui or set DLPTUI_TRIAL_DIR.") from None
    finally:
        sys.path.remove(key)
        for name in TRIAL_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(stash)
    _trials[key] = (model_def, saliency)
    return model_def, saliency
