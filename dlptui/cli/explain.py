"""`dlptui predict IMAGE --explain OUT.png`: the prediction, then where the model looked, drawn over the image.

The served answer comes first (as `predict` gives it); then the version that answered is run here, on its
checkpoint, for the class it answered (`dlptui.actions.explain`), and the overlay is written as a PNG of
the image's size. `--json` adds an `explanation` object to the image's entry.
"""

from __future__ import annotations

from pathlib import Path

from dlptui.actions import explain as explaining
from dlptui.errors import InvalidInput
from dlptui.platform.model import Prediction


def add_argument(parser) -> None:
    parser.add_argument("--explain", metavar="OUT.png",
                        help="also write where the model looked (Grad-CAM over the image, for the class it answered) to this PNG; "
                             "one image only, run here on the version's checkpoint")


def target(args) -> Path | None:
    """The overlay's path, checked before anything is sent; None without --explain."""
    if not getattr(args, "explain", None):
        return None
    if len(args.images) != 1:
        raise InvalidInput(f"--explain draws the overlay of one image; give one IMAGE, not {len(args.images)}.")
    return explaining.overlay_target(args.explain)


def explain(platform, deployment: str, prediction: Prediction, image: str, out: Path) -> tuple[explaining.Explanation, Path]:
    """The explanation of the answer `prediction` gave for `image`, written to `out`."""
    found = explaining.explain_file(platform, deployment, image, version=prediction.version, label=prediction.label)
    return found, explaining.write_overlay(found, out)


def line(found: explaining.Explanation, written: Path) -> str:
    return f"Wrote {written}: {explaining.caption(found)} (peak at x={found.saliency.peak()[0]}, y={found.saliency.peak()[1]})."


def as_json(found: explaining.Explanation, written: Path) -> dict:
    return explaining.explanation_json(found, written)
