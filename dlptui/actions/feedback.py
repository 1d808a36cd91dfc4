"""Ground truth for logged predictions: `dlptui feedback DEPLOYMENT#ID --label L` and `DEPLOYMENT --file labels.csv`,
and the console's right/wrong on a logged prediction.

A labels file is CSV with two columns, the prediction (its id in the log, the client's puid, or the sha256 of its
image) and the right label, with an optional header row (`prediction,label`). Every row is read and checked (here,
then each against the prediction log by the serving port) before any is recorded: a file with a bad row records
nothing, and says which row in one sentence.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dlptui.actions.user_files import read_user_file
from dlptui.errors import InvalidInput, PlatformError
from dlptui.platform.model import Feedback, LoggedPrediction, PredictionRef

HEADER_WORDS = {"prediction", "id", "prediction_id", "puid", "image_sha256", "sha256", "image"}
MAX_ROWS = 100_000


def parse_target(target: str) -> tuple[str, str | None]:
    """(deployment, prediction id or None) of DEPLOYMENT or DEPLOYMENT#ID."""
    if "#" not in target:
        if not target.strip():
            raise InvalidInput("Name a deployment (DEPLOYMENT --file labels.csv) or a prediction (DEPLOYMENT#ID --label LABEL).")
        return target.strip(), None
    try:
        ref = PredictionRef(target.strip())
    except ValueError:
        raise InvalidInput(f"{target!r} names no prediction; write DEPLOYMENT#ID, e.g. dogcat-deploy#42.") from None
    return ref.deployment, ref.id


def read_labels(path: str | Path) -> list[Feedback]:
    """The rows of a labels file, or one sentence naming the first bad row (nothing read half)."""
    data = read_user_file(path, "file", text=False,
                          give="give a labels file (CSV: prediction id or image sha256, label)")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a text file; give a CSV of prediction id (or image sha256) and label.") from None
    items: list[Feedback] = []
    seen: dict[str, int] = {}
    try:
        rows = list(csv.reader(io.StringIO(content)))
    except csv.Error as e:
        raise InvalidInput(f"{path} is not valid CSV ({e}).") from None
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if number == 1 and cells[0].lower() in HEADER_WORDS:
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise InvalidInput(f"{path} line {number} has {len([c for c in cells if c])} values; each row is a prediction "
                               f"id (or image sha256) and a label, nothing was recorded.")
        if cells[0] in seen:
            raise InvalidInput(f"{path} line {number} names the prediction {cells[0]} again (first on line "
                               f"{seen[cells[0]]}); give each prediction once, nothing was recorded.")
        seen[cells[0]] = number
        items.append(Feedback(cells[0], label=cells[1]))
        if len(items) > MAX_ROWS:
            raise InvalidInput(f"{path} has more than {MAX_ROWS} rows; split it, nothing was recorded.")
    if not items:
        raise InvalidInput(f"{path} has no rows; give a CSV of prediction id (or image sha256) and label.")
    return items


def record(platform, deployment: str, items: list[Feedback], source: str | None = None) -> list[LoggedPrediction]:
    """Record the items (all checked first, by the serving port); a refusal keeps its kind and names `source`."""
    try:
        return platform.serving.feedback(deployment, items)
    except PlatformError as e:
        if source is None:
            raise
        said = str(e).rstrip(".")
        raise type(e)(f"{source}: {said}; nothing was recorded.") from None


def other_label(prediction: LoggedPrediction) -> str | None:
    """The right answer when `prediction` was wrong and its model has two labels: the other one; else None."""
    labels = sorted(prediction.probabilities)
    if len(labels) == 2 and prediction.label in labels:
        return labels[1 - labels.index(prediction.label)]
    return None


def sentence(deployment: str, recorded: list[LoggedPrediction]) -> str:
    """What was recorded, in one sentence."""
    if len(recorded) == 1:
        p = recorded[0]
        parts = []
        if p.truth is not None:
            parts.append(f"the right label is {p.truth}; the model said {p.label} ({'right' if p.right else 'wrong'})")
        if p.reward is not None:
            parts.append(f"reward {p.reward:g}")
        return f"Recorded for {deployment}#{p.id}: {', '.join(parts)}."
    right = sum(p.right is True for p in recorded)
    wrong = sum(p.right is False for p in recorded)
    return f"Recorded feedback for {len(recorded)} predictions of {deployment}: {right} right, {wrong} wrong."


def as_json(deployment: str, p: LoggedPrediction) -> dict:
    return {"prediction": str(PredictionRef.of(deployment, p.id)), "id": p.id, "version": p.version, "label": p.label,
            "truth": p.truth, "reward": p.reward, "right": p.right, "time": p.feedback_time}
