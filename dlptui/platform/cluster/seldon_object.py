"""A SeldonDeployment object as the platform's model: its Deployment, its routing, its history and gate.

The object is what the Kubernetes API returns (`machinelearning.seldon.io/v1`); dlptui keeps what Seldon has no field
for in annotations: the history of changes (`dlptui.io/history`, JSON, with each version's checkpoint storage), the
alias it was deployed by (`dlptui.io/alias`) and the policy of its gate (`dlptui.io/gate`). Pure functions of the
object, read by the serving part (seldon_serving.py).
"""

from __future__ import annotations

import json

from dlptui.platform import deployment_policy as policy
from dlptui.platform.cluster.kube_connection import timestamp
from dlptui.platform.cluster.seldon_template import CANARY, MAIN, SHADOW, storage_from_history
from dlptui.platform.model import CheckpointStorage, Deployment, DeploymentState

GROUP, VERSION, PLURAL = "machinelearning.seldon.io", "v1", "seldondeployments"
CRD_NAME = f"{PLURAL}.{GROUP}"
HISTORY = "dlptui.io/history"
ALIAS = "dlptui.io/alias"  # the registry alias the deployment was made by
GATE_KEY = "dlptui.io/gate"  # the policy that gates its canaries (JSON), where it carries one
STATES = {"Available": DeploymentState.AVAILABLE, "Creating": DeploymentState.STARTING, "Failed": DeploymentState.FAILED}


def _served(predictor: dict | None) -> tuple[str, int]:
    """(model, version) named by a predictor's graph parameters."""
    if not predictor:
        return "", 0
    graph = predictor.get("graph") or {}
    params = {p.get("name"): p.get("value") for p in graph.get("parameters") or []}
    # det_model and det_version: what objects made before the pods read storage themselves name
    model = params.get("model_name") or params.get("det_model") or graph.get("name", "")
    version = str(params.get("version") or params.get("det_version") or "0")
    return str(model), int(version) if version.isdigit() else 0


def to_deployment(obj: dict, ingress: str | None = None) -> Deployment:
    """A SeldonDeployment object (as the API returns it) as the platform's Deployment."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    predictors = {p.get("name"): p for p in spec.get("predictors") or []}
    main = predictors.get(MAIN) or next(iter(predictors.values()), None)
    canary = predictors.get(CANARY) if main is not predictors.get(CANARY) else None
    shadow = predictors.get(SHADOW) if main is not predictors.get(SHADOW) else None
    model, version = _served(main)
    state = STATES.get(status.get("state", ""), DeploymentState.STARTING)
    detail = str(status.get("description") or "")
    if meta.get("deletionTimestamp"):
        state, detail = DeploymentState.STOPPED, "It is being deleted."
    elif not status:
        detail = "The Seldon operator has not reported on it yet."
    if ingress:
        endpoint = f"{ingress.rstrip('/')}/seldon/{namespace}/{name}/api/v1.0/predictions"
    else:
        endpoint = (status.get("address") or {}).get("url")
    return Deployment(
        name=name,
        model=model,
        version=version,
        state=state,
        endpoint=endpoint,
        replicas=int(status.get("replicas") or (main or {}).get("replicas") or 1),
        canary_version=_served(canary)[1] if canary else None,
        canary_traffic=int(canary.get("traffic") or 0) if canary else 0,
        created=timestamp(meta.get("creationTimestamp")),
        detail=detail,
        shadow_version=_served(shadow)[1] if shadow else None,
        alias=(meta.get("annotations") or {}).get(ALIAS) or None,
        gate=gate_of(obj),
    )


def gate_of(obj: dict) -> dict | None:
    """The gate policy the object's annotation keeps (None without one, or one no JSON reader can read)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(GATE_KEY)
    try:
        gate = json.loads(raw) if raw else None
    except ValueError:
        return None
    return gate if isinstance(gate, dict) else None


def history_of(obj: dict) -> list[dict]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        entries = json.loads(annotations.get(HISTORY) or "[]")
    except ValueError:
        return []
    return entries if isinstance(entries, list) else []


def routing_of(obj: dict) -> policy.Routing:
    """What a SeldonDeployment object serves, as the routing policy sees it."""
    d = to_deployment(obj)
    return policy.Routing(d.model, d.version, d.canary_version, d.canary_traffic if d.canary_version is not None else 0,
                          d.shadow_version)


def history_storage(history: list[dict]) -> dict[int, CheckpointStorage]:
    """Where each version named in the history keeps its checkpoint, as the entries recorded it (newest wins)."""
    known: dict[int, CheckpointStorage] = {}
    for e in history:
        if isinstance(e.get("storages"), dict):
            for number, recorded in e["storages"].items():
                if str(number).isdigit():
                    known.update(storage_from_history({"storage": recorded}, int(number)))
        elif e.get("to_version") is not None:
            known.update(storage_from_history(e, int(e["to_version"])))
    return known
