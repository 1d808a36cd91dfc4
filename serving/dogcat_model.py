"""The Seldon Core model class: `seldon-core-microservice dogcat_model.DogCatModel`.

Parameters (`--parameters` locally, `PREDICTIVE_UNIT_PARAMETERS` on the cluster) name the
checkpoint to serve, where it lies:

- `checkpoint_dir`: a local folder holding a Determined PyTorch checkpoint (the local profile's registry), or
- `checkpoint_uri`: the place Determined's checkpoint storage keeps it, resolved by the deploy step:
  `gs://bucket/prefix/uuid` or `s3://bucket/prefix/uuid` (with `storage_endpoint` for an S3-compatible
  service), read with Determined's own storage managers and the pod's own read-only access (Workload
  Identity, or the AWS_* variables of a read-only Secret); or a folder (`/mnt/checkpoints/...`, a
  shared_fs storage mounted read-only), read where it is.

The model server never talks to the Determined master and needs no Determined credential.

The model loads in a background thread with retries (after the wrapper forks its workers:
`load()` runs in each serving process), is put in `eval()` mode, and `/health/status`
answers 200 only once it is loaded: 503 while loading, 503 with the reason if loading
failed for good. Images are preprocessed with the trial's own eval transform
(`trial/model_def.py`, on the path of the serving process).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from seldon_core.flask_utils import SeldonMicroserviceException

import embedding_summary
import feedback_request
from image_request import DEFAULT_MAX_PIXELS, BadRequest, decode_base64, image_from_message
from kept_inputs import KeptInputs
from prediction_log import PredictionLog

log = logging.getLogger("dogcat_model")
DEFAULT_CLASSES = ("cat", "dog")


MANIFEST = ".dlptui-manifest.json"


def private_cache() -> Path:
    """Where checkpoints read from a bucket are kept: DLPTUI_CHECKPOINT_CACHE, else a folder of this
    process's own (never a shared /tmp path another user could fill first). The folder must belong
    to this user and be writable by nobody else."""
    import tempfile

    given = os.environ.get("DLPTUI_CHECKPOINT_CACHE")
    root = Path(given) if given else Path(tempfile.gettempdir()) / f"dlptui-checkpoints-{os.getuid()}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.lstat()
    if root.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise RuntimeError(f"the checkpoint cache {root} is not private (it must be this user's folder, writable by no one else)")
    return root


def _digests(folder: Path) -> dict[str, str]:
    import hashlib

    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        found[str(path.relative_to(folder))] = digest.hexdigest()
    return found


def write_manifest(folder: Path) -> None:
    (folder / MANIFEST).write_text(json.dumps(_digests(folder)))


def manifest_matches(folder: Path) -> bool:
    try:
        return json.loads((folder / MANIFEST).read_text()) == _digests(folder)
    except (OSError, ValueError):
        return False


class DogCatModel:
    def __init__(
        self,
        checkpoint_dir: str = "",
        checkpoint_uri: str = "",
        storage_endpoint: str = "",
        model_name: str = "dogcat-model",
        version: int = 0,
        torch_threads: int = 0,
        load_retries: int = 5,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        prediction_log: str = "",
        log_keep: int = 100_000,
        prediction_summary: bool = True,
        keep_inputs: str = "",
        inputs_dir: str = "",
    ) -> None:
        if not checkpoint_dir and not checkpoint_uri:
            raise ValueError("Give checkpoint_dir (a local checkpoint folder) or checkpoint_uri (where the storage keeps it).")
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_uri = checkpoint_uri
        self.storage_endpoint = storage_endpoint
        self.model_name = model_name
        self.version = int(version or 0)
        self.torch_threads = int(torch_threads)
        self.load_retries = max(1, int(load_retries))
        self.max_pixels = int(max_pixels)
        self._net = None
        self._transform = None
        self._classes: tuple[str, ...] = DEFAULT_CLASSES
        self._error: str | None = None
        self._loader_pid: int | None = None
        self._lock = threading.Lock()
        self._log = PredictionLog(prediction_log, log_keep) if prediction_log else None
        self.prediction_summary = str(prediction_summary).lower() not in ("false", "0", "no", "off")
        # the images of the last N answered predictions, when the settings file dlptui writes asks (kept_inputs.py)
        self._inputs = KeptInputs(keep_inputs, inputs_dir) if keep_inputs and inputs_dir and self._log else None

    # --- loading -------------------------------------------------------------

    def load(self) -> None:
        """Start loading in the background, once per process (the wrapper calls this after forking)."""
        with self._lock:
            if self._loader_pid == os.getpid():
                return
            self._loader_pid = os.getpid()
            self._net, self._error = None, None
        threading.Thread(target=self._load_with_retry, name="model-loader", daemon=True).start()

    def _load_with_retry(self) -> None:
        delay = 1.0
        for attempt in range(1, self.load_retries + 1):
            try:
                self._load()
                log.info("model %s version %s loaded (attempt %d)", self.model_name, self.version, attempt)
                return
            except Exception as e:  # any failure is retried, then reported by health_status
                self._error = f"{type(e).__name__}: {e}"
                log.warning("loading the model failed (attempt %d of %d): %s", attempt, self.load_retries, self._error)
                if attempt < self.load_retries:
                    time.sleep(delay)
                    delay = min(delay * 2, 30.0)
        log.error("giving up loading the model: %s", self._error)

    def _load(self) -> None:
        import torch

        import model_def  # trial/model_def.py: the trial's own model code and eval transform

        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        folder = model_folder(self.checkpoint_dir, self.checkpoint_uri, self.storage_endpoint)
        # The trial's load_model reads the checkpoint's state dict into build_model(hparams): the
        # same weights det.pytorch.load_trial_from_checkpoint_path restores, without building the
        # whole trial (whose constructor fetches the training data).
        net, hparams = model_def.load_model(folder)
        net.eval()
        self._classes = tuple(getattr(model_def, "CLASSES", DEFAULT_CLASSES))
        self._transform = model_def.eval_transform(hparams)
        self._net = net
        self._error = None

    # --- Seldon hooks --------------------------------------------------------

    def health_status(self):
        if self._net is not None:
            return {"status": "ready", "model": self.model_name, "version": self.version}
        if self._error is not None and not self._loading():
            raise SeldonMicroserviceException(
                f"The model could not be loaded: {self._error}", status_code=503, reason="MODEL_LOAD_FAILED"
            )
        raise SeldonMicroserviceException("The model is still loading.", status_code=503, reason="MODEL_LOADING")

    def _loading(self) -> bool:
        return any(t.name == "model-loader" for t in threading.enumerate())

    def init_metadata(self):
        return {
            "name": self.model_name,
            "versions": [str(self.version)],
            "platform": "seldon",
            # Seldon's metadata schema names tensor, ndarray or tftensor only: the image travels as binData
            # (a base64 JPEG or PNG), described here as the one-element ndarray of its bytes.
            "inputs": [{"messagetype": "ndarray", "schema": {"names": ["image"], "shape": [1]}}],
            "outputs": [{"messagetype": "ndarray", "schema": {"names": ["cat", "dog"], "shape": [2]}}],
            "custom": {"input": "binData: a base64 JPEG or PNG", "output": "jsonData: label, probabilities, version"},
        }

    def predict_raw(self, request):
        grpc = not isinstance(request, (dict, list, str, bytes))
        start = time.perf_counter()
        answer, status, summary, ident, message = None, 500, None, None, None
        try:
            message = _proto_to_dict(request) if grpc else request
            try:
                image = image_from_message(message, self.max_pixels)
            except BadRequest as e:
                raise SeldonMicroserviceException(e.message, status_code=e.status) from None
            if self._net is None:
                self.health_status()  # raises the 503 that says why
            answer, summary = self._classify_and_summarize(image)
            status = 200
        except SeldonMicroserviceException as e:
            status = e.status_code
            raise
        finally:
            if self._log is not None:
                ident = self._record(request, grpc, message, answer, status, (time.perf_counter() - start) * 1000.0, summary)
        # meta.puid names the prediction for feedback: the client's own puid, else the log's id for it
        puid = feedback_request.request_puid(message) or (str(ident) if ident is not None else None)
        meta = {"tags": embedding_summary.tags(summary)} if summary else {}
        if puid:
            meta["puid"] = puid
        result = {"jsonData": answer, "meta": meta}
        if grpc:
            from seldon_core.utils import json_to_seldon_message

            return json_to_seldon_message(result)
        return result

    def _record(self, request, grpc: bool, message, answer: dict | None, status: int, latency_ms: float,
                summary=None) -> int | None:
        """One row of the prediction log, its id; the log failing never fails the prediction (None then)."""
        import hashlib

        role, request_id, body = "primary", "", b""
        try:
            if grpc:
                body = request.SerializeToString()
            else:
                # Seldon's REST wrapper calls us inside a Flask request: read its headers when it does
                # (dlptui itself needs no Flask; a wrapper that is not Flask logs the row without them)
                flask = sys.modules.get("flask")
                if flask is not None and flask.has_request_context():
                    http = flask.request
                    body = http.get_data(cache=True)
                    role = http.headers.get("x-dlptui-role", "primary")
                    request_id = http.headers.get("x-request-id", "")
                    host = http.headers.get("host", "")
                    if host.endswith("-shadow") or "-shadow:" in host:  # Envoy marks a mirrored request so
                        role = "shadow"
            image = _image_bytes(message)
            image_sha256 = hashlib.sha256(image).hexdigest() if image else None
            ident = self._log.record(
                model=self.model_name, version=self.version, role=role, request_id=request_id,
                input_sha256=hashlib.sha256(body).hexdigest(), input_bytes=len(body),
                label=(answer or {}).get("label"), probabilities=(answer or {}).get("probabilities", {}),
                latency_ms=latency_ms, status=status, summary=summary,
                puid=feedback_request.request_puid(message), image_sha256=image_sha256,
            )
        except Exception as e:  # noqa: BLE001
            log.warning("the prediction log could not be written: %r", e)
            return None
        if self._inputs is not None and status == 200 and image:
            try:
                with self._log.locked() as conn:
                    self._inputs.keep(conn, ident, image_sha256, image)
            except Exception as e:  # noqa: BLE001  (a full disk never fails the prediction)
                log.warning("the prediction's input could not be kept: %r", e)
        return ident

    def send_feedback_raw(self, feedback):
        """Seldon's feedback (`/api/v1.0/feedback`): the truth and/or reward recorded in the prediction log
        against the prediction it answers (feedback_request.py); 400 for a message that names none or carries a
        label the answering version does not have, 404 for a prediction the log does not hold. A second
        feedback for a prediction replaces the first."""
        from seldon_core.utils import feedback_to_json, json_to_seldon_message

        message = feedback if isinstance(feedback, dict) else feedback_to_json(feedback)
        try:
            said = feedback_request.parse_feedback(message)
        except BadRequest as e:
            raise SeldonMicroserviceException(e.message, status_code=e.status) from None
        if self._log is None:
            raise SeldonMicroserviceException("This model server keeps no prediction log to record feedback in.", status_code=501)
        found = self._log.find(puid=said.puid, image_sha256=said.image_sha256)
        if found is None:
            named = f"the id {said.puid!r}" if said.puid else "that image"
            raise SeldonMicroserviceException(f"No answered prediction with {named} is in the prediction log.", status_code=404)
        ident, probabilities = found
        if said.truth is not None and probabilities and said.truth not in probabilities:
            raise SeldonMicroserviceException(
                f"The model has no label {said.truth!r}; its labels are {', '.join(sorted(probabilities))}.", status_code=400)
        self._log.record_feedback(ident, said.truth, said.reward)
        result = {"jsonData": {"prediction": ident, "truth": said.truth, "reward": said.reward}, "meta": {"puid": said.puid or str(ident)}}
        return json_to_seldon_message(result)

    def classify(self, image) -> dict:
        return self._classify_and_summarize(image)[0]

    def _classify_and_summarize(self, image):
        """(the answer, the request's embedding_summary.Summary or None): one forward pass, split before the head
        when the summary is kept (the prediction log's drift and outlier figures), whole when it is not."""
        import torch

        if self.torch_threads > 0 and torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)  # OpenMP keeps the setting per thread
        batch = self._transform(image).unsqueeze(0)
        with torch.inference_mode():
            if self.prediction_summary:
                logits, features = embedding_summary.forward(self._net, batch)
            else:
                logits, features = self._net(batch), None
            probs = torch.softmax(logits.float(), dim=1)[0].tolist()
        probabilities = {name: round(p, 6) for name, p in zip(self._classes, probs)}
        label = max(probabilities, key=probabilities.get)
        answer = {"label": label, "probabilities": probabilities, "model": self.model_name, "version": self.version}
        return answer, self._summary(logits, features)

    def _summary(self, logits, features):
        """The request's summary (the prediction log's row and the answer's meta.tags); None when it is off
        (the parameter prediction_summary) or cannot be made, which never fails a prediction."""
        if not self.prediction_summary:
            return None
        try:
            return embedding_summary.summarize(logits, features)[0]
        except Exception as e:  # noqa: BLE001
            log.warning("the prediction's summary could not be made: %r", e)
            return None


def model_folder(checkpoint_dir: str, checkpoint_uri: str, storage_endpoint: str = "") -> Path:
    """The checkpoint folder a model server (or its reference computation) loads: `checkpoint_dir` as it is, else the
    folder of `checkpoint_uri`; FileNotFoundError when it holds no state dict."""
    folder = Path(checkpoint_dir) if checkpoint_dir else checkpoint_folder(checkpoint_uri, storage_endpoint)
    if not (folder / "state_dict.pth").is_file():
        raise FileNotFoundError(f"{folder} is not a Determined checkpoint folder (no state_dict.pth)")
    return folder


def checkpoint_folder(uri: str, endpoint: str = "") -> Path:
    """The local folder of the checkpoint at `uri`: a folder (or file:// URL) as it is, read in place; a gs:// or
    s3:// one read into the private cache with Determined's storage manager for that storage (the pod's own
    credentials: Workload Identity, or AWS_* variables), every file checked against the manifest written then."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        folder = Path(parts.path if parts.scheme else uri)
        if not folder.is_absolute():
            raise ValueError(f"the checkpoint folder {uri} is not an absolute path")
        return folder
    if parts.scheme not in ("gs", "s3"):
        raise ValueError(f"the checkpoint place {uri} is neither a folder nor a gs:// or s3:// URL")
    *prefix, uuid = [p for p in parts.path.split("/") if p] or [""]
    if not parts.netloc or not uuid or uuid in (".", ".."):
        raise ValueError(f"the checkpoint place {uri} names no bucket or no checkpoint")
    target = private_cache() / "-".join([parts.scheme, parts.netloc, *prefix, uuid])
    if (target / "state_dict.pth").is_file() and manifest_matches(target):
        return target  # read by this user earlier, every file as it was
    shutil.rmtree(target, ignore_errors=True)  # anything else in its place is not trusted
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # what an interrupted attempt left
    config = {"type": "gcs" if parts.scheme == "gs" else "s3", "bucket": parts.netloc, "prefix": "/".join(prefix)}
    if endpoint and parts.scheme == "s3":
        config["endpoint_url"] = endpoint
    try:
        from determined.common import storage

        storage.build(config, container_path=None).download(uuid, str(partial))
    except Exception as e:
        shutil.rmtree(partial, ignore_errors=True)
        log.warning("reading the checkpoint %s: %r", uri, e)
        raise RuntimeError(
            f"the checkpoint at {uri} could not be read ({type(e).__name__}); check that the serving pod's account "
            "may read that bucket (Workload Identity, or the profile's storage_secret)"
        ) from None
    write_manifest(partial)
    partial.rename(target)
    return target


def _image_bytes(message) -> bytes | None:
    """The image's own bytes of a `binData` request (what its image_sha256 names), None for any other."""
    if isinstance(message, dict) and isinstance(message.get("binData"), (str, bytes)):
        try:
            return decode_base64(message["binData"])
        except BadRequest:
            return None
    return None


def _proto_to_dict(request) -> dict:
    """A gRPC SeldonMessage as the same dict a REST request gives (binData kept as raw bytes)."""
    if request.WhichOneof("data_oneof") == "binData":
        return {"binData": request.binData}
    from seldon_core.utils import seldon_message_to_json

    return seldon_message_to_json(request)
