"""The SeldonDeployment dlptui creates, rendered from infra/seldon/deployment.yaml.tmpl (the one template).

`render_deployment` fills the template's placeholders, each with a JSON scalar, so any value
stays valid YAML; the serving adapter (seldon_serving.py) sends what it renders and `dlptui
infra check` validates the same rendering against the CRD. A canary or a shadow is the same
predictor rendered again under another name. The model container's requests and limits come
from the cluster profile (serving_cpu_request, serving_memory_request, serving_cpu_limit,
serving_memory_limit), else from RESOURCES.
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

MAIN, CANARY, SHADOW = "main", "canary", "shadow"
DEFAULT_CANARY_TRAFFIC = 10
# A ResNet-50 or EfficientNet-lite0 on CPU: torch and the weights take about 1 GiB, a request a few hundred MiB more.
RESOURCES = {"cpu_request": "500m", "memory_request": "1Gi", "cpu_limit": "2", "memory_limit": "2Gi"}
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")

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
    canary: int | None = None,
    traffic: int = DEFAULT_CANARY_TRAFFIC,
    secret: str = "dlptui-credentials",
    shadow: int | None = None,
    logger_url: str | None = None,
    resources: Mapping[str, str | None] | None = None,
    template: Path | None = None,
) -> dict:
    """The SeldonDeployment serving `model` at `version`, and `version` `canary` with `traffic` percent if given;
    `shadow` a version that sees every request (`shadow: true`); `logger_url` Seldon's request logger on each;
    `resources` the model container's requests and limits (RESOURCES' keys); `template` another copy of
    the template (infra check renders the infra/ folder it checks)."""
    check_name(name)
    check_name(namespace, "namespace")
    if not image or any(c.isspace() for c in image):
        raise InvalidInput(f"The serving image {image!r} is not an image reference; set serving_image in the cluster profile.")
    if canary is not None:
        rules.check_canary_traffic(traffic)
    values = {"name": name, "namespace": namespace, "image": image, "model": model, "secret": secret,
              **check_resources(resources)}
    text = _template_text(template)
    body = _render(text, values, MAIN, version, 100 - traffic if canary is not None else 100)
    if canary is not None:
        body["spec"]["predictors"].append(_render(text, values, CANARY, canary, traffic)["spec"]["predictors"][0])
    if shadow is not None:
        mirror = _render(text, values, SHADOW, shadow, 0)["spec"]["predictors"][0]
        mirror["shadow"] = True
        body["spec"]["predictors"].append(mirror)
    if logger_url:
        for predictor in body["spec"]["predictors"]:
            predictor["graph"]["logger"] = {"url": logger_url, "mode": "all"}
    return body


def _template_text(template: Path | None) -> str:
    template = template or shipped.seldon_template()
    try:
        return template.read_text()
    except OSError:
        raise NotAvailable(f"The deployment template {template} is missing; reinstall dlptui or set DLPTUI_INFRA_DIR.") from None


def _render(text: str, values: dict[str, Any], predictor: str, version: int, traffic: int) -> dict:
    import yaml

    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidInput(f"A model version is a whole number, not {version!r}.")
    scalars = {**values, "predictor": predictor, "version": str(version), "version_label": f"v{version}"}
    filled = string.Template(text).substitute({k: json.dumps(v) for k, v in scalars.items()}, traffic=traffic)
    return yaml.safe_load(filled)
