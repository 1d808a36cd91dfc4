"""Deployments, the versions behind one, their history and predictions as table rows and describe blocks; the
model server's log as a person reads it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from dlptui import text
from dlptui.platform.model import CLASSES, Deployment, DeploymentChange, LoggedPrediction, Prediction, PredictionRef
from dlptui.render import Block, Column, counts, describer


def canary(d: Deployment) -> str:
    return text.canary(d.canary_version, d.canary_traffic)


DEPLOYMENT_COLUMNS = [
    Column("name", "NAME", lambda d: d.name),
    Column("model", "MODEL@VERSION", lambda d: text.model_ref(d.model, d.version)),
    Column("canary", "CANARY", canary),
    Column("shadow", "SHADOW", lambda d: text.version_tag(d.shadow_version)),
    Column("replicas", "REPLICAS", lambda d: d.replicas),
    Column("state", "STATE", lambda d: d.state.value),
    Column("endpoint", "ENDPOINT", lambda d: d.endpoint),
    Column("age", "AGE", lambda d: text.since(d.created)),
    Column("detail", "DETAIL", lambda d: d.detail),  # the reason when not available; logs: `deployment logs NAME`
]

FIGURE_COLUMNS = [
    Column("version", "VERSION", lambda f: text.version_tag(f.version)),
    Column("role", "ROLE", lambda f: f.role),
    Column("traffic", "TRAFFIC", lambda f: f"{f.traffic}%"),
    Column("requests", "REQUESTS", lambda f: f.requests),
    Column("errors", "ERRORS", lambda f: f.errors),
    Column("p50", "P50", lambda f: text.latency(f.p50_ms)),
    Column("p95", "P95", lambda f: text.latency(f.p95_ms)),
    Column("labels", "LABELS", lambda f: counts(f.labels)),
    Column("agreement", "AGREES", lambda f: text.metric("agreement", f.agreement)),
]

CHANGE_COLUMNS = [
    Column("time", "TIME", lambda h: text.timestamp(h.time)),
    Column("change", "CHANGE", lambda h: h.change),
    Column("by", "BY", lambda h: h.by),
    Column("from", "FROM", lambda h: text.version_tag(h.from_version)),
    Column("to", "TO", lambda h: text.version_tag(h.to_version)),
    Column("canary", "CANARY", lambda h: text.canary(h.canary, h.share)),
    Column("shadow", "SHADOW", lambda h: text.version_tag(h.shadow)),
    Column("reason", "WHY", lambda h: getattr(h, "reason", "") or None),
]


def chance(p: LoggedPrediction | Prediction) -> str:
    """The probability of the label it gave."""
    return text.percent(p.probabilities.get(p.label)) if p.label in (p.probabilities or {}) else text.MISSING


LOGGED_COLUMNS = [
    Column("id", "ID", lambda p: p.id),
    Column("time", "TIME", lambda p: text.timestamp(p.time)),
    Column("version", "VERSION", lambda p: text.version_tag(p.version)),
    Column("role", "ROLE", lambda p: p.role),
    Column("label", "LABEL", lambda p: p.label),
    Column("p", "P", chance),
    Column("latency", "LATENCY", lambda p: text.latency(p.latency_ms)),
    Column("status", "STATUS", lambda p: p.status),
    Column("truth", "TRUTH", lambda p: None if p.truth is None else f"{p.truth} ({'right' if p.right else 'wrong'})"),
    Column("input", "INPUT", lambda p: f"{p.input_sha256[:12]} {text.size(p.input_bytes)}"),
]

PREDICTION_COLUMNS = [
    Column("image", "IMAGE", lambda p: p.image),
    Column("label", "LABEL", lambda p: p.label),
    *[Column(f"p-{c}", f"P({c.upper()})", lambda p, c=c: text.percent(p.probabilities.get(c))) for c in CLASSES],
    Column("version", "VERSION", lambda p: text.version_tag(p.version)),
    Column("latency", "LATENCY", lambda p: text.latency(p.latency_ms)),
    Column("error", "ERROR", lambda p: p.error),
]


def prediction_counts(predictions: Iterable[Prediction]) -> str:
    """What a batch of predictions came to: "cat 12, dog 30, failed 2 (44 images)"."""
    predictions = list(predictions)
    labels: dict[str, int] = {}
    for p in predictions:
        key = "failed" if p.error else (p.label or text.MISSING)
        labels[key] = labels.get(key, 0) + 1
    failed = labels.pop("failed", 0)
    words = [f"{k} {v}" for k, v in sorted(labels.items())] + ([f"failed {failed}"] if failed else [])
    return f"{', '.join(words) or 'nothing'} ({text.plural(len(predictions), 'image')})"


@describer(Deployment)
def describe_deployment(d: Deployment) -> Block:
    block = [
        ("deployment", d.name),
        ("serves", text.model_ref(d.model, d.version)),
        ("state", d.state.value),
    ]
    if d.detail:
        block.append(("detail", d.detail))
    block += [
        ("endpoint", d.endpoint or text.MISSING),
        ("replicas", str(d.replicas)),
        ("canary", f"version {d.canary_version} takes {d.canary_traffic}% of the requests" if d.canary_version is not None
         else text.MISSING),
        ("shadow", f"version {d.shadow_version} gets a copy of every request" if d.shadow_version is not None else text.MISSING),
        ("deployed by", text.model_ref(d.model, d.alias) if d.alias else text.MISSING),
        ("created", text.timestamp(d.created)),
    ]
    return block


@describer(DeploymentChange)
def describe_change(h: DeploymentChange) -> Block:
    return [("time", text.timestamp(h.time)), ("change", h.change), ("by", h.by),
            ("from", text.model_ref(h.model, h.from_version) if h.from_version is not None else text.MISSING),
            ("to", text.model_ref(h.model, h.to_version)),
            ("canary", text.canary(h.canary, h.share) if h.canary is not None else text.MISSING),
            ("shadow", text.version_tag(h.shadow))]


@describer(LoggedPrediction)
def describe_logged(p: LoggedPrediction) -> Block:
    return [("prediction", PredictionRef.of(p.deployment, p.id)), ("time", text.timestamp(p.time)),
            ("version", f"{text.model_ref(p.model, p.version)} ({p.role})"), ("label", p.label or text.MISSING),
            ("probabilities", counts({k: text.percent(v) for k, v in p.probabilities.items()})),
            ("latency", text.latency(p.latency_ms)), ("status", str(p.status)),
            ("input", f"sha256 {p.input_sha256}, {text.size(p.input_bytes)}")]


# --- the model server's log --------------------------------------------------------------------
# What Seldon's wrapper and gunicorn write that says nothing to a person reading a deployment's log: the
# configuration dumps at start (Flask's `App Config: <Config {...}>` twice, `Gunicorn Config: {...}`, the tracing
# tags, the empty annotations and the module it imports, as Python lists and dicts), the
# deprecation warning of pkg_resources with its source line, and one error per readiness probe while the model
# still loads (the answer the probe waits on). Seldon writes an error it answered as a Python dict: it is
# written as its sentence and reason instead.
_NOISE = (
    re.compile(r" - INFO:\s+(App|Gunicorn) Config: "),
    re.compile(r" - INFO:\s+(Parse JAEGER_EXTRA_TAGS|Importing submodule |Annotations: \{\}\s*$)"),
    re.compile(r"UserWarning: pkg_resources is deprecated"),
    re.compile(r"^\s+import pkg_resources\s*$"),
    re.compile(r"'reason': 'MODEL_LOADING'"),
)
_SELDON_ERROR = re.compile(r"^(?P<head>.* - (ERROR|WARNING):\s+)(?P<body>\{'status': \{.*\}\})\s*$")


def _seldon_error(line: str) -> str:
    found = _SELDON_ERROR.match(line)
    if not found:
        return line
    try:
        status = ast.literal_eval(found["body"])["status"]
        sentence, reason = str(status.get("info") or "").strip(), str(status.get("reason") or "").strip()
    except (ValueError, SyntaxError, KeyError, TypeError, AttributeError):
        return line
    return f"{found['head']}{sentence}" + (f" ({reason})" if reason else "")


def server_log(lines: Iterable[str]) -> list[str]:
    """A model server's log lines as a person reads them: the noise above left out, Seldon's errors as sentences,
    every line without terminal escape sequences."""
    return [text.plain(_seldon_error(line)) for line in lines if not any(p.search(line) for p in _NOISE)]
