"""The project's own Seldon prediction client: a URL and image bytes in, a Prediction out.

Backend-agnostic: the local gateway and the cluster's Istio gateway speak the same Seldon
protocol. The image travels as its encoded bytes (`binData`, base64 in JSON), never as a
decoded float tensor; the server decodes it. One `httpx.Client` is reused for every
request (a new one per request costs tens of milliseconds of TLS set-up).

A request the server refuses (4xx: not an image, too large, ...) or that fails in the model
(500) comes back as a Prediction with `error`: it is about that image. A deployment that is
not serving raises Unreachable: nothing answers, or the gateway or server says so (502, 503,
504: no model server up, the model still loading). A caller the gateway refuses (401, 403: the
cluster's Istio gateway asks for a token) raises Refused. A server whose TLS certificate the client does
not trust raises Unreachable, with a sentence that says so.
"""

from __future__ import annotations

import base64
import re
import ssl
import threading
import time
from collections.abc import Mapping

import httpx

from dlptui.errors import InvalidInput, NotAvailable, NotFound, Unreachable
from dlptui.platform.model import Prediction

VERSION_HEADER = "X-Dlptui-Version"  # which model version answered, set by the local gateway


def request_body(image: bytes) -> dict:
    return {"binData": base64.b64encode(image).decode("ascii")}


def error_message(response: httpx.Response) -> str:
    """The one sentence a Seldon error response carries (`status.info`), or the HTTP reason."""
    try:
        status = response.json().get("status") or {}
        info = status.get("info")
        if info:
            return str(info)
    except (ValueError, AttributeError):
        pass
    return f"The server answered HTTP {response.status_code} {response.reason_phrase}."


def about_image(info: str, name: str) -> str:
    """A refusal of the model server as a sentence about the user's file: the server speaks of "the image" and of the
    request's `binData` (the protocol, which the user never typed); the client sent the file's bytes there."""
    if re.match(r"The (\w+ )?image\b", info):
        return re.sub(r"^The (\w+ )?image\b", lambda _: name, info, count=1)
    if "binData" not in info:
        return info
    if "is empty" in info:
        return f"{name} is empty; give a JPEG or PNG image."
    if "not an image" in info:
        return f"{name} is not an image the model reads (JPEG or PNG); give a photo as a .jpg or .png file."
    return f"The model server refused {name}: " + info.replace("binData", "the image")


NOT_SERVING = (502, 503, 504)
REFUSED = (401, 403)  # the gateway's authorization, before any model server


class Refused(NotAvailable):
    """The gateway refused the caller (401, 403): its credential is missing or wrong. `status`: "HTTP 403 Forbidden"."""

    def __init__(self, message: str, status: str = "") -> None:
        super().__init__(message)
        self.status = status


class NotServing(Unreachable):
    """The gateway or the server said the deployment is not serving (502, 503, 504). `answer`: what it said, as
    "HTTP 503 Service Unavailable" with its words when it gave some ("no healthy upstream": Envoy with no ready pod)."""

    def __init__(self, message: str, answer: str = "") -> None:
        super().__init__(message)
        self.answer = answer


def _answer(response: httpx.Response) -> str:
    said = error_message(response).rstrip(".")
    if said.startswith("The server answered HTTP"):
        text = response.text.strip() if "json" not in response.headers.get("content-type", "") else ""
        said = f"HTTP {response.status_code} {response.reason_phrase}"
        if text and len(text) <= 200 and text.isprintable():
            said += f' ("{text}")'
    return said


def parse_prediction(name: str, response: httpx.Response, latency_ms: float) -> Prediction:
    if response.status_code in NOT_SERVING:
        answer = _answer(response)
        raise NotServing(f"The deployment is not serving: {answer}.", answer)
    if response.status_code in REFUSED:
        status = f"HTTP {response.status_code} {response.reason_phrase}"
        raise Refused(f"The gateway refused the request ({status}): the credential it asks for is missing or wrong.", status)
    if response.status_code != 200:
        return Prediction(image=name, latency_ms=latency_ms, error=about_image(error_message(response), name))
    try:
        body = response.json()
        result = body["jsonData"]
        probabilities = {str(k): float(v) for k, v in result["probabilities"].items()}
        label = result.get("label") or max(probabilities, key=probabilities.get)
    except (ValueError, KeyError, TypeError, AttributeError):
        return Prediction(image=name, latency_ms=latency_ms, error="The server's answer is not a dlptui prediction.")
    version = result.get("version") or response.headers.get(VERSION_HEADER)
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    puid = meta.get("puid")
    return Prediction(
        image=name,
        label=label,
        probabilities=probabilities,
        latency_ms=latency_ms,
        version=int(version) if str(version or "").isdigit() else None,
        id=str(puid) if isinstance(puid, (str, int)) and str(puid) else None,
    )


def feedback_body(puid: str, label: str | None, reward: float | None) -> dict:
    """Seldon's Feedback message for the prediction with meta.puid `puid`: `truth` the right label, and/or `reward`."""
    body: dict = {"request": {"meta": {"puid": str(puid)}}, "response": {"meta": {"puid": str(puid)}}}
    if label is not None:
        body["truth"] = {"jsonData": {"label": label}}
    if reward is not None:
        body["reward"] = float(reward)
    return body


def parse_feedback_answer(response: httpx.Response, what: str) -> None:
    """Nothing for a recorded feedback; else the sentence: InvalidInput (400, a label the model lacks), NotFound
    (404, no such prediction), NotAvailable (501: the server keeps no log), Refused, NotServing."""
    status = response.status_code
    if status == 200:
        return
    if status in NOT_SERVING:
        answer = _answer(response)
        raise NotServing(f"The deployment is not serving: {answer}.", answer)
    if status in REFUSED:
        said = f"HTTP {status} {response.reason_phrase}"
        raise Refused(f"The gateway refused the feedback ({said}): the credential it asks for is missing or wrong.", said)
    info = error_message(response).rstrip(".")
    if status == 404:
        raise NotFound(f"{what}: {info}.")
    if status in (501, 405):
        raise NotAvailable(f"{what} cannot be recorded: {info}.")
    raise InvalidInput(f"{what}: {info}.")


def untrusted_certificate(e: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check that failed behind an httpx error, if that is what it was."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, ssl.SSLCertVerificationError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def untrusted(url: str, failed: ssl.SSLCertVerificationError) -> Unreachable:
    reason = (failed.verify_message or failed.reason or "certificate verify failed").rstrip(".")
    return Unreachable(f"The prediction endpoint {url} presented a TLS certificate that is not trusted here ({reason}); "
                       "if a private CA signed it, set ca_file (or DLPTUI_CA_FILE) in the cluster profile to that CA's PEM file.")


class SeldonClient:
    """POST images to Seldon prediction URLs over one reused HTTP client (thread-safe).

    `verify`: the TLS context that checks the server's certificate (the cluster's: the system roots and the
    profile's ca_file); None is httpx's default (certifi's roots)."""

    def __init__(self, timeout: float = 30.0, headers: Mapping[str, str] | None = None,
                 verify: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.verify = verify
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                verify = self.verify if self.verify is not None else True
                self._client = httpx.Client(timeout=self.timeout, headers=self.headers, verify=verify)
            return self._client

    def predict(self, url: str, image: bytes, name: str = "image") -> Prediction:
        """One image to `url` (.../api/v1.0/predictions). Raises Unreachable if the deployment is not serving."""
        start = time.perf_counter()
        response = self._post(url, request_body(image), "prediction")
        return parse_prediction(name, response, (time.perf_counter() - start) * 1000.0)

    def feedback(self, url: str, body: dict, what: str = "The feedback") -> None:
        """POST one Seldon Feedback message to `url` (.../api/v1.0/feedback); `what` starts its sentences."""
        parse_feedback_answer(self._post(url, body, "feedback"), what)

    def _post(self, url: str, body: dict, endpoint: str) -> httpx.Response:
        """The answer to a JSON POST; Unreachable naming the `endpoint` ("prediction") when none comes, a sentence
        for a certificate this machine does not trust."""
        try:
            return self.client.post(url, json=body)
        except httpx.TimeoutException:
            raise Unreachable(f"The {endpoint} endpoint {url} did not answer within {self.timeout:.0f} s; "
                              f"check the deployment.") from None
        except httpx.TransportError as e:
            failed = untrusted_certificate(e)
            if failed is not None:
                raise untrusted(url, failed) from None
            raise Unreachable(f"The {endpoint} endpoint {url} does not answer ({type(e).__name__}); "
                              f"check the deployment.") from None

    def get_json(self, url: str) -> tuple[int, dict]:
        """A GET (health, metadata) as (status, JSON body or {}); raises Unreachable if nothing answers."""
        try:
            response = self.client.get(url)
        except httpx.HTTPError as e:
            failed = untrusted_certificate(e)
            if failed is not None:
                raise untrusted(url, failed) from None
            raise Unreachable(f"{url} does not answer ({type(e).__name__}).") from None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {}

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
