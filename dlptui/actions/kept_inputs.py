"""Keeping a deployment's inputs, in words both faces use: `N|off`, a cap such as 256MiB, what is held.

    keep, cap = parse_keep("1000"), parse_cap("64MiB")
    kept = platform.serving.set_keep_inputs("dogcat-deploy", keep, cap)
    sentence(kept)   # "dogcat-deploy keeps the images of its last 1,000 predictions (12 held, 1.2 MiB of 64.0 MiB)."

Off by default. The images lie in the deployment's folder inside the home (0700 folders, 0600 files), go with
the prediction log's retention and with the deployment; `dlptui replay` sends them to another version.
"""

from __future__ import annotations

import re

from dlptui import text
from dlptui.errors import InvalidInput
from dlptui.platform.model import KeptInputs

UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
         "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
TURN_ON = 1000  # what the sentences suggest


def parse_keep(value: str | int) -> int:
    """`off` (or 0) -> 0; a whole number of predictions -> it."""
    word = str(value).strip().lower()
    if word in ("off", "none", "no", "0"):
        return 0
    if not word.isdigit():
        raise InvalidInput(f"Keep the inputs of a number of predictions (e.g. {TURN_ON}) or 'off', not {value!r}.")
    return int(word)


def parse_cap(value: str | None) -> int | None:
    """`256MiB`, `1GB`, `500000000` -> bytes; None -> None (the platform's default cap)."""
    if value is None:
        return None
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = found.group(2).lower() if found else ""
    if not found or unit not in UNITS:
        raise InvalidInput(f"--cap takes a size such as 256MiB, 1GB or a number of bytes, not {value!r}.")
    return int(float(found.group(1)) * UNITS[unit])


def sentence(kept: KeptInputs) -> str:
    if not kept.on:
        return (f"{kept.deployment} keeps no inputs (turn keeping on with "
                f"`dlptui deployment keep-inputs {kept.deployment} {TURN_ON}`).")
    return (f"{kept.deployment} keeps the images of its last {kept.keep:,} predictions "
            f"({text.plural(kept.images, 'image')} held, {text.size(kept.bytes)} of {text.size(kept.cap_bytes)}).")


def to_json(kept: KeptInputs) -> dict:
    return {"keep": kept.keep, "cap_bytes": kept.cap_bytes, "images": kept.images, "bytes": kept.bytes}


def picture(platform, deployment: str, prediction_id: int):
    """The kept image of a logged prediction decoded for a preview (a PIL image, scaled down), or one sentence: how
    to keep inputs where the deployment keeps none, that it is no longer kept, gone or damaged. Runs in a thread."""
    from dlptui.platform.local.checkpoint_model import decode

    data = platform.serving.kept_input(deployment, prediction_id)
    image = decode(data, f"the kept image of {deployment}#{prediction_id}")
    size = image.size
    image.thumbnail((512, 512))
    image.info["original_size"] = size
    return image
