"""The SeldonDeployment dlptui creates, rendered from infra/seldon/deployment.yaml.tmpl (the one template).

`render_deployment` fills the template's placeholders, each with a JSON scalar, so any value
stays valid YAML; the serving adapter (seldon_serving.py) sends what it renders and `dlptui
infra check` validates the same rendering against the CRD. A canary or a shadow is the same
predictor rendered again under another name. The model container's requests and limits come
from the cluster profile (serving_cpu_request, serving_memory_request, serving_cpu_limit,
serving_memory_limit), else from RESOURCES.

Each predictor names where its checkpoint lies (a `CheckpointStorage`, resolved by the deploy step
in the console's process, with the user's credentials): the graph parameter `checkpoint_uri`
(gs://bucket/prefix/uuid or s3://bucket/prefix/uuid, read with the pod's own read-only account; or a
folder under CHECKPOINT_MOUNT, where a shared_fs storage's host_path is mounted read-only), and
`storage_endpoint` for an S3-compatible service. The pod gets no Determined credential: with
`storage_secret` (the profile's, for S3 keys where no workload identity is used) its container reads
that one Secret with envFrom, nothing else. `storage_of` reads a predictor's storage back.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlptui import resources as shipped
from dlptui.errors import InvalidInput, NotAvailable
from dlptui.platform import rules
from dlptui.platform.model import CheckpointStorage

MAIN, CANARY, SHADOW = "main", "canary", "shadow"
DEFAULT_CANARY_TRAFFIC = rules.DEFAULT_CANARY_SHARE
# A ResNet-50 or EfficientNet-lite0 on CPU: torch and the weights take about 1 GiB, a request a few hundred MiB more.
RESOURCES = {"cpu_request": "500m", "memory_request": "1Gi", "cpu_limit": "2", "memory_limit": "2Gi"}
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
CHECKPOINT_MOUNT = "/mnt/checkpoints"  # where a shared_fs storage's host_path is mounted, read-only
CHECKPOINT_VOLUME = "checkpoints"
URI, ENDPOINT = "checkpoint_uri", "storage_endpoint"  # the graph parameters naming the storage
SERVABLE = ("gcs", "s3", "shared_fs")

check_name = rules.check_deployment_name


def check_resources(given: Mapping[str, str | None] | None) -> dict[str, str]:
    """The container's requests and limits: RESOURCES with what the profile sets, each a Kubernetes quantity."""
    chosen = dict(RESOURCES)
    for key, value in (given or {}).items():
        if key not in RESOURCES:
            raise InvalidInput(f"{key!r} is not a serving resource; use one of {', '.join(RESOURCES)}.")
        if value is None:
            continue
        if not isinstance(value, str) or not QUANTITY.match(value):
            raise InvalidInput(f"serving_{key} is {value!r}, which is not a Kubernetes quantity; write it as 500m, 2 or 1536Mi.")
        chosen[key] = value
    return chosen


def render_deployment(
    name: str,
    namespace: str,
    image: str,
    model: str,
    version: int,
    storage: Mapping[int, CheckpointStorage],
    canary: int | None = None,
    traffic: int = DEFAULT_CANARY_TRAFFIC,
    shadow: int | None = None,
    logger_url: str | None = None,
    resources: Mapping[str, str | None] | None = None,
    storage_secret: str | None = None,
    template: Path | None = None,
) -> dict:
    """The SeldonDeployment serving `model` at `version`, and `version` `canary` with `traffic` percent if given;
    `shadow` a version that sees every request (`shadow: true`); `storage` where each of those versions'
    checkpoint lies; `logger_url` Seldon's request logger on each; `resources` the model container's requests
    and limits (RESOURCES' keys); `storage_secret` a Secret of read-only storage credentials the model
    container reads (envFrom); `template` another copy of the template (infra check renders the infra/ folder
    it checks)."""
    check_name(name)
    check_name(namespace, "namespace")
    if not image or any(c.isspace() for c in image):
        raise InvalidInput(f"The serving image {image!r} is not an image reference; set serving_image in the cluster profile.")
    if canary is not None:
        rules.check_canary_traffic(traffic)
    if storage_secret is not None:
        check_name(storage_secret, "storage_secret")
    values = {"name": name, "namespace": namespace, "image": image, "model": model, **check_resources(resources)}
    text = _template_text(template)
    roles = [(MAIN, version, 100 - traffic if canary is not None else 100)]
    if canary is not None:
        roles.append((CANARY, canary, traffic))
    if shadow is not None:
        roles.append((SHADOW, shadow, 0))
    body: dict | None = None
    for role, number, share in roles:
        rendered = _render(text, values, role, number, share, _servable(model, number, storage.get(number)))
        predictor = rendered["spec"]["predictors"][0]
        _attach(predictor, storage[number], storage_secret)
        if role == SHADOW:
            predictor["shadow"] = True
        if logger_url:
            predictor["graph"]["logger"] = {"url": logger_url, "mode": "all"}
        if body is None:
            body = rendered
        else:
            body["spec"]["predictors"].append(predictor)
    return body


def _servable(model: str, version: int, storage: CheckpointStorage | None) -> str:
    """The checkpoint_uri of a version: what the model server reads, in its pod."""
    if storage is None:
        raise NotAvailable(f"Where the checkpoint of version {version} of {model!r} lies is not known; "
                           "deploy it again from the registry (dlptui deploy MODEL@VERSION).")
    if storage.kind not in SERVABLE:
        raise NotAvailable(f"Version {version} of {model!r} has its checkpoint in {storage.kind} storage, which the serving pods "
                           "cannot read; use gcs, s3 or shared_fs checkpoint storage on the Determined master.")
    if storage.kind == "shared_fs":
        return "/".join([CHECKPOINT_MOUNT, *(p for p in storage.storage_path.split("/") if p), storage.uuid])
    return storage.url


def _attach(predictor: dict, storage: CheckpointStorage, storage_secret: str | None) -> None:
    """What the model container needs to read `storage`, besides checkpoint_uri: the S3 endpoint, the read-only
    mount of a shared_fs storage's host_path, the Secret of read-only storage credentials."""
    if storage.endpoint_url:
        predictor["graph"].setdefault("parameters", []).append({"name": ENDPOINT, "type": "STRING", "value": storage.endpoint_url})
    for component in predictor.get("componentSpecs") or []:
        spec = component.setdefault("spec", {})
        containers = spec.get("containers") or []
        model_container = next((c for c in containers if c.get("name") == "model"), containers[0] if containers else None)
        if model_container is None:
            continue
        if storage.kind == "shared_fs":
            spec.setdefault("volumes", []).append(
                {"name": CHECKPOINT_VOLUME, "hostPath": {"path": storage.host_path, "type": "Directory"}})
            model_container.setdefault("volumeMounts", []).append(
                {"name": CHECKPOINT_VOLUME, "mountPath": CHECKPOINT_MOUNT, "readOnly": True})
        if storage_secret:
            model_container.setdefault("envFrom", []).append({"secretRef": {"name": storage_secret}})


def storage_of(predictor: dict | None) -> CheckpointStorage | None:
    """The storage a rendered (or stored) predictor's model server reads, or None if it names none
    (an object made before the pods read storage themselves)."""
    from urllib.parse import urlsplit

    graph = (predictor or {}).get("graph") or {}
    params = {p.get("name"): str(p.get("value") or "") for p in graph.get("parameters") or []}
    uri = params.get(URI, "")
    if uri.startswith(("gs://", "s3://")):
        parts = urlsplit(uri)
        *prefix, uuid = [p for p in parts.path.split("/") if p] or [""]
        return CheckpointStorage("gcs" if parts.scheme == "gs" else "s3", uuid, bucket=parts.netloc, prefix="/".join(prefix),
                                 endpoint_url=params.get(ENDPOINT, ""))
    if uri.startswith(CHECKPOINT_MOUNT + "/"):
        *below, uuid = [p for p in uri[len(CHECKPOINT_MOUNT):].split("/") if p]
        volumes = [v for c in (predictor or {}).get("componentSpecs") or [] for v in (c.get("spec") or {}).get("volumes") or []]
        host = next((v["hostPath"].get("path") for v in volumes if v.get("name") == CHECKPOINT_VOLUME and v.get("hostPath")), None)
        if host:
            return CheckpointStorage("shared_fs", uuid, host_path=host, storage_path="/".join(below))
    return None


def _template_text(template: Path | None) -> str:
    template = template or shipped.seldon_template()
    try:
        return template.read_text()
    except OSError:
        raise NotAvailable(f"The deployment template {template} is missing; reinstall dlptui or set DLPTUI_INFRA_DIR.") from None


def _render(text: str, values: dict[str, Any], predictor: str, version: int, traffic: int, checkpoint: str) -> dict:
    import yaml

    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidInput(f"A model version is a whole number, not {version!r}.")
    scalars = {**values, "predictor": predictor, "version": str(version), "version_label": f"v{version}", "checkpoint": checkpoint}
    try:
        filled = string.Template(text).substitute({k: json.dumps(v) for k, v in scalars.items()}, traffic=traffic)
    except (KeyError, ValueError) as e:
        raise InvalidInput(f"The deployment template has a placeholder dlptui does not fill ({e}); use the template dlptui ships.") from None
    return yaml.safe_load(filled)


def stored_storage(obj: dict) -> dict[int, CheckpointStorage]:
    """The storage of each version the object's predictors serve, as they name it."""
    found = {}
    for predictor in (obj.get("spec") or {}).get("predictors") or []:
        params = {p.get("name"): str(p.get("value") or "") for p in (predictor.get("graph") or {}).get("parameters") or []}
        number, storage = params.get("version", ""), storage_of(predictor)
        if storage is not None and number.isdigit():
            found[int(number)] = storage
    return found


def storage_from_history(entry: dict, version: int) -> dict[int, CheckpointStorage]:
    """The storage a history entry recorded for the version it moved to (none in entries of older objects)."""
    import dataclasses

    recorded = entry.get("storage")
    if not isinstance(recorded, dict):
        return {}
    fields = {f.name for f in dataclasses.fields(CheckpointStorage)}
    try:
        return {version: CheckpointStorage(**{k: str(v) for k, v in recorded.items() if k in fields})}
    except TypeError:
        return {}
