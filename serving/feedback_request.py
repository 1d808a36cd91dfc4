"""Seldon's feedback message (`/api/v1.0/feedback`) as what the prediction log records, or a clear 4xx.

A `Feedback` is a SeldonMessage pair, `request` and `response`, with `truth` (a SeldonMessage) and/or
`reward` (a number). The prediction it answers is named by `meta.puid` (the request's or the response's:
the client's own puid when it sent one with the prediction, else the id the answer gave it in `meta.puid`),
else by the image itself (`request.binData`: the newest answer to that image). The true label travels as
`truth.jsonData.label`, `truth.strData` or a one-string `truth.data.ndarray`.

Seldon's message is protobuf: a `reward` of 0 cannot be told from none, so a feedback of 0 with no truth
is refused as empty. No torch here, and no dlptui import (this runs inside the model server).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from image_request import BadRequest, decode_base64


@dataclass(frozen=True)
class FeedbackRequest:
    puid: str
    image_sha256: str
    truth: str | None
    reward: float | None


def parse_feedback(message) -> FeedbackRequest:
    """What a feedback message says, or BadRequest (400) with one sentence."""
    if not isinstance(message, dict):
        raise BadRequest("Feedback must be a JSON object with request (or response) and truth and/or reward.")
    request = message.get("request") if isinstance(message.get("request"), dict) else {}
    response = message.get("response") if isinstance(message.get("response"), dict) else {}
    puid = _puid(request) or _puid(response)
    image_sha256 = ""
    if not puid and request.get("binData"):
        image_sha256 = hashlib.sha256(decode_base64(request["binData"])).hexdigest()
    if not puid and not image_sha256:
        raise BadRequest("The feedback names no prediction; send the prediction's id as request.meta.puid, or its image as request.binData.")
    truth = _truth(message.get("truth"))
    reward = message.get("reward")
    if reward is not None:
        if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
            raise BadRequest("The feedback's reward must be a number.")
        reward = float(reward)
    if truth is None and not reward:
        raise BadRequest("The feedback carries neither a truth (the right label) nor a reward.")
    return FeedbackRequest(puid, image_sha256, truth, reward)


def image_sha256(message) -> str | None:
    """The sha256 of a prediction request's image bytes (binData), None for any other request."""
    if isinstance(message, dict) and isinstance(message.get("binData"), (str, bytes)):
        try:
            return hashlib.sha256(decode_base64(message["binData"])).hexdigest()
        except BadRequest:
            return None
    return None


def request_puid(message) -> str | None:
    """The client's own meta.puid of a prediction request, if it sent one."""
    return (_puid(message) or None) if isinstance(message, dict) else None


def _puid(message: dict) -> str:
    meta = message.get("meta")
    puid = meta.get("puid") if isinstance(meta, dict) else None
    return str(puid).strip() if isinstance(puid, (str, int)) and not isinstance(puid, bool) else ""


def _truth(truth) -> str | None:
    if truth is None:
        return None
    label = None
    if isinstance(truth, dict):
        if isinstance(truth.get("jsonData"), dict):
            label = truth["jsonData"].get("label")
        elif "strData" in truth:
            label = truth["strData"]
        elif isinstance(truth.get("data"), dict):
            values = truth["data"].get("ndarray")
            while isinstance(values, list) and len(values) == 1:
                values = values[0]
            label = values
    if not isinstance(label, str) or not label.strip():
        raise BadRequest("The feedback's truth must carry one label: truth.jsonData.label, truth.strData or truth.data.ndarray.")
    return label.strip()
