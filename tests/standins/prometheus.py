"""A stand-in for Prometheus' HTTP API (`/api/v1/query`), for tests only: Seldon's executor histogram per predictor.

    prom = PrometheusStandin({"main": Series(requests=900, errors=9, buckets={0.01: 500, 0.05: 880, inf: 900})}).start()
    prom.url; prom.queries; prom.stop()
    PrometheusStandin(worse_canary())      # a primary and a canary clearly worse than it

It answers the three queries dlptui's cluster verdicts make of `seldon_api_executor_server_requests_seconds`
(dlptui/platform/cluster/seldon_metrics.py `arm`), by the query's `predictor_name`: the sum of `_count` (with
`code!~"2.."`: the errors), and `sum by (le)` of `_bucket` as a vector of cumulative counts; whatever the range
(`increase(...[600s])` is answered with the totals given). Anything else gets an empty result. No PromQL is parsed
beyond that: the tests look at `queries` for what was asked.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Series:
    requests: float
    errors: float = 0
    buckets: dict[float, float] = field(default_factory=dict)  # le in seconds -> cumulative count (math.inf last)


def worse_canary() -> dict[str, Series]:
    """A primary ("main") with 1 % errors in 9,000 requests and a canary with 6 % in 1,000, slower too: worse by any
    test."""
    return {
        "main": Series(requests=9000, errors=90, buckets={0.01: 4000, 0.02: 8500, 0.05: 9000, math.inf: 9000}),
        "canary": Series(requests=1000, errors=60, buckets={0.01: 450, 0.02: 940, 0.05: 1000, math.inf: 1000}),
    }


class PrometheusStandin:
    def __init__(self, series: dict[str, Series]) -> None:
        self.series = series
        self.queries: list[str] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
                standin.queries.append(query)
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": standin.answer(query)}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, query: str) -> list[dict]:
        found = re.search(r'predictor_name="([^"]+)"', query)
        series = self.series.get(found.group(1)) if found else None
        if series is None:
            return []
        now = time.time()
        if "by (le)" in query and "_bucket" in query:
            return [{"metric": {"le": "+Inf" if math.isinf(le) else str(le)}, "value": [now, str(v)]} for le, v in series.buckets.items()]
        if "_count" in query:
            value = series.errors if 'code!~"2.."' in query else series.requests
            return [{"metric": {}, "value": [now, str(value)]}]
        return []

    def start(self) -> PrometheusStandin:
        threading.Thread(target=self.server.serve_forever, name="prometheus-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
