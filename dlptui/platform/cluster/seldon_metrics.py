"""Per-version figures of a SeldonDeployment from Prometheus (Seldon's executor metrics).

Seldon's executor exports `seldon_api_executor_server_requests_seconds` (a histogram, with
`deployment_name`, `predictor_name`, `code` labels); Prometheus' HTTP API answers instant
queries at `/api/v1/query`. Labels of the answers are not in these metrics: `labels` stays empty, and
neither feedback nor a shadow's answers paired with the primary's are there (no accuracy, no agreement).
"""

from __future__ import annotations

import math
import time

import httpx

from dlptui.errors import Unreachable
from dlptui.platform.model import ArmFigures, VersionFigures

METRIC = "seldon_api_executor_server_requests_seconds"


def _scalar(client: httpx.Client, url: str, query: str) -> float | None:
    response = client.get(url.rstrip("/") + "/api/v1/query", params={"query": query})
    response.raise_for_status()
    result = response.json().get("data", {}).get("result", [])
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if value != value else value  # NaN: no samples


def figures(url: str, namespace: str, name: str, predictor: str, role: str, version: int, traffic: int,
            timeout: float) -> VersionFigures:
    selector = f'namespace="{namespace}",deployment_name="{name}",predictor_name="{predictor}"'
    try:
        with httpx.Client(timeout=timeout) as client:
            requests = _scalar(client, url, f"sum({METRIC}_count{{{selector}}})")
            errors = _scalar(client, url, f'sum({METRIC}_count{{{selector},code!~"2.."}})')
            quantile = lambda q: _scalar(  # noqa: E731
                client, url, f"histogram_quantile({q}, sum by (le) (rate({METRIC}_bucket{{{selector}}}[5m])))")
            p50, p95 = quantile(0.5), quantile(0.95)
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as e:
        return VersionFigures(version=version, role=role, traffic=traffic,
                              note=f"Prometheus at {url} did not answer ({type(e).__name__}).")
    return VersionFigures(
        version=version, role=role, traffic=traffic,
        requests=int(requests or 0), errors=int(errors or 0),
        p50_ms=round(p50 * 1000, 2) if p50 is not None else None,
        p95_ms=round(p95 * 1000, 2) if p95 is not None else None,
    )


def _vector(client: httpx.Client, url: str, query: str) -> list[tuple[dict, float]]:
    response = client.get(url.rstrip("/") + "/api/v1/query", params={"query": query})
    response.raise_for_status()
    return [(r.get("metric") or {}, float(r["value"][1])) for r in response.json().get("data", {}).get("result", [])]


def arm(url: str, namespace: str, name: str, predictor: str, role: str, version: int, since: float,
        timeout: float) -> ArmFigures:
    """One predictor's numbers since `since` (a canary's verdict input): requests and errors (a status other than
    2xx), and its latency histogram (ms), each as Prometheus' `increase` over the window, rounded (an estimate
    extrapolated to the window's edges, as Prometheus makes it). Unreachable, one sentence, when Prometheus does not
    answer."""
    selector = f'namespace="{namespace}",deployment_name="{name}",predictor_name="{predictor}"'
    window = f"{max(1, math.ceil(time.time() - since))}s"
    try:
        with httpx.Client(timeout=timeout) as client:
            requests = _scalar(client, url, f"sum(increase({METRIC}_count{{{selector}}}[{window}]))")
            errors = _scalar(client, url, f'sum(increase({METRIC}_count{{{selector},code!~"2.."}}[{window}]))')
            buckets = _vector(client, url, f"sum by (le) (increase({METRIC}_bucket{{{selector}}}[{window}]))")
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
        raise Unreachable(f"Prometheus at {url} did not answer ({type(e).__name__}); the verdicts of {name} need its metrics.") from None
    edges = sorted((float(labels.get("le", "inf")), value) for labels, value in buckets if value == value)
    bounds, counts, below = [], [], 0
    for le, cumulative in edges:
        total = max(below, round(cumulative))
        if le > 0:
            bounds.append(le * 1000.0)
            counts.append(total - below)
            below = total
    requests = int(round(requests or 0))
    return ArmFigures(version, role, requests, min(requests, int(round(errors or 0))),
                      bounds_ms=tuple(bounds) if any(counts) else (), bucket_counts=tuple(counts) if any(counts) else ())
