"""What a local deployment's Envoy is told: its bootstrap, its clusters and its two route tables (pure data).

The endpoint (127.0.0.1:port, the deployment's only TCP socket) refuses what a browser page, a
stuck client or a broken request could do to a workstation:

- any Host other than 127.0.0.1 or localhost (403): another site's page cannot drive it;
- on the prediction and feedback paths anything but POST (405) or a JSON body (415), and an empty body (400);
  no cross-origin preflight is ever answered with an allowance, and no CORS header of a model
  server reaches a client;
- a body over MAX_BODY (413, unread), slow headers, idle or endless requests (timeouts);
- more than MAX_CONNECTIONS connections at once.

Memory stays bounded, whatever clients send. A request body is held whole (so that a slow
client never ties up a model server, and a failed connection can be retried) only on the
prediction and feedback routes, never on a request that is refused:

- a prediction that declares at most SMALL_BODY bytes is held by the endpoint itself;
- any other prediction (a larger or a chunked body) streams, with flow control, to a second
  listener on a Unix socket in Envoy's folder (`large.sock`), which holds at most LARGE_AT_ONCE
  bodies of up to MAX_BODY at a time; the others wait, each holding no more than its connection's
  buffer, or get a 503 when LARGE_WAITING are waiting already.

So Envoy holds at most MAX_CONNECTIONS x (SMALL_BODY + CONNECTION_BUFFER) + LARGE_AT_ONCE x
MAX_BODY of request bodies (MEMORY_BOUND, about 320 MiB) above its own ~70 MiB, and the overload
manager refuses new requests (503) should its heap pass HEAP_LIMIT all the same.

Feedback (Seldon's `/api/v1.0/feedback`) follows the same body rules and goes to the primary's model
server alone, which records it in the deployment's prediction log against the prediction it names
(whichever version answered it: they all write the one log).

A prediction is retried on another model server only when its connection failed or was reset
before the request was sent: a request that was sent and broke its server (a request of death)
is never sent to the next one, so it cannot take every version down in turn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_BODY = 32 << 20  # a base64 JPEG of a 40-megapixel photo fits
SMALL_BODY = 1 << 20  # a prediction up to this declared size is held by the endpoint itself
CONNECTION_BUFFER = 256 << 10  # what Envoy reads ahead of a connection before it stops reading
MAX_CONNECTIONS = 128
LARGE_AT_ONCE = 4  # larger bodies held at once (by the `large` listener)
LARGE_WAITING = 64  # larger ones waiting for a place; more are refused with a 503
MEMORY_BOUND = MAX_CONNECTIONS * (SMALL_BODY + CONNECTION_BUFFER) + LARGE_AT_ONCE * MAX_BODY
HEAP_LIMIT = 768 << 20  # the overload manager's guard: no new request above 95 % of it
REQUEST_TIMEOUT_S = 60
UPSTREAM_IDLE_S = 1  # below gunicorn's keep-alive (2 s)
PREDICTION_PATHS = r"/(api/v[0-9.]+/predictions|predict)"
FEEDBACK_PATHS = r"/(api/v[0-9.]+/feedback|send-feedback)"  # Seldon's feedback: to the primary, never split nor mirrored
READ_PATHS = r"/(health/status|health/ping|metadata)"
VERSION_HEADER = "x-dlptui-version"
ROLE_HEADER = "x-dlptui-role"
ADMIN_SOCKET = "admin.sock"  # in Envoy's folder (its working folder), 0600
LARGE_SOCKET = "large.sock"
LARGE_CLUSTER = "large"
CORS_HEADERS = ["access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
                "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age"]

# the `large` listener, once a body (chunked, of no declared length) is held whole: an empty one is refused
_LUA_EMPTY = """
function envoy_on_request(handle)
  local body = handle:body()
  if body == nil or body:length() == 0 then
    handle:respond({[":status"] = "400", ["content-type"] = "application/json"},
      '{"status": {"status": 1, "code": -1, "reason": "BAD_REQUEST", ' ..
      '"info": "EMPTY"}}')
  end
end
""".replace("EMPTY", "The request has an empty body; send a JSON object with binData (a base64 JPEG or PNG).")
_LUA = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
_BUFFER = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"


def cluster_name(backend_id: str) -> str:
    return f"v-{backend_id}"


def _lua(name: str, source: str) -> dict:
    return {"name": f"dlptui.{name}", "typed_config": {"@type": _LUA, "default_source_code": {"inline_string": source}}}


def _buffer(max_bytes: int) -> dict:
    return {"name": "envoy.filters.http.buffer", "typed_config": {"@type": _BUFFER, "max_request_bytes": max_bytes}}


def _router() -> dict:
    return {"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers": True}}


def _error(reason: str, info: str) -> str:
    return json.dumps({"status": {"status": 1, "code": -1, "reason": reason, "info": info}})


def _direct(status: int, reason: str, info: str) -> dict:
    return {"status": status, "body": {"inline_string": _error(reason, info)}}


def _typed(type_url: str, **fields) -> dict:
    return {"@type": type_url, **fields}


# what a route of the endpoint that holds no body turns off: the buffer
_HOLD_NOTHING = {
    "envoy.filters.http.buffer": _typed("type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute", disabled=True),
}


def _holding_nothing(*routes: dict) -> list[dict]:
    return [{**route, "typed_per_filter_config": _HOLD_NOTHING} for route in routes]


def _manager(prefix: str, rds: Path, filters: list[dict]) -> dict:
    json_header = {"header": {"key": "content-type", "value": "application/json"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}

    def mapper(status: int, reason: str, info: str) -> dict:
        return {"filter": {"status_code_filter": {"comparison": {
                    "op": "EQ", "value": {"default_value": status, "runtime_key": f"dlptui.local_reply.{status}"}}}},
                "body": {"inline_string": _error(reason, info)}, "headers_to_add": [json_header]}

    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": prefix,
        "codec_type": "HTTP1",
        "rds": {"route_config_name": prefix, "config_source": {"path_config_source": {"path": str(rds)}, "resource_api_version": "V3"}},
        "server_name": "dlptui",
        "request_headers_timeout": "10s",
        "request_timeout": f"{REQUEST_TIMEOUT_S}s",
        "stream_idle_timeout": "30s",
        "common_http_protocol_options": {"idle_timeout": "60s", "headers_with_underscores_action": "REJECT_REQUEST"},
        "normalize_path": True,
        "merge_slashes": True,
        "local_reply_config": {"mappers": [
            mapper(413, "PAYLOAD_TOO_LARGE", f"The request body is too large: the endpoint takes at most {MAX_BODY >> 20} MiB."),
            mapper(503, "NOT_SERVING", "The deployment has no model server that answers, or is too busy; try again."),
            mapper(504, "TIMEOUT", f"The model server did not answer within {REQUEST_TIMEOUT_S} s."),
            mapper(408, "TIMEOUT", "The request was not sent in time."),
        ]},
        "http_filters": filters,
    }


def _limits(max_requests: int, max_pending: int) -> dict:
    return {"thresholds": [{"max_connections": max_requests, "max_pending_requests": max_pending,
                            "max_requests": max_requests, "max_retries": 16}]}


def bootstrap(folder: Path, port: int) -> dict:
    """What Envoy reads at start, run in `folder`: the endpoint on 127.0.0.1:`port`, the `large` listener
    and the admin interface on Unix sockets in `folder`."""
    endpoint = _manager("endpoint", folder / "rds.json", [_buffer(SMALL_BODY), _router()])
    large = _manager("large", folder / "rds-large.json", [_buffer(MAX_BODY), _lua("empty", _LUA_EMPTY), _router()])
    heap = "envoy.resource_monitors.fixed_heap"
    return {
        "node": {"id": "dlptui", "cluster": "dlptui"},
        "admin": {"address": {"pipe": {"path": ADMIN_SOCKET, "mode": 0o600}}},  # relative to Envoy's folder (its cwd)
        "dynamic_resources": {"cds_config": {"path_config_source": {"path": str(folder / "cds.json")}, "resource_api_version": "V3"}},
        "static_resources": {
            "listeners": [{
                "name": "endpoint",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "per_connection_buffer_limit_bytes": CONNECTION_BUFFER,
                "filter_chains": [{"filters": [
                    {"name": "envoy.filters.network.connection_limit", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit",
                        "stat_prefix": "endpoint_limit", "max_connections": MAX_CONNECTIONS}},
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": endpoint},
                ]}],
            }, {
                "name": LARGE_CLUSTER,
                "address": {"pipe": {"path": LARGE_SOCKET, "mode": 0o600}},
                "per_connection_buffer_limit_bytes": CONNECTION_BUFFER,
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": large}]}],
            }],
            "clusters": [{
                "name": LARGE_CLUSTER,
                "type": "STATIC",
                "connect_timeout": "1s",
                "per_connection_buffer_limit_bytes": CONNECTION_BUFFER,
                "load_assignment": {"cluster_name": LARGE_CLUSTER, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"pipe": {"path": LARGE_SOCKET}}}}]}]},
                "circuit_breakers": _limits(LARGE_AT_ONCE, LARGE_WAITING),
            }],
        },
        "overload_manager": {
            "refresh_interval": "0.25s",
            "resource_monitors": [
                {"name": "envoy.resource_monitors.global_downstream_max_connections", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": MAX_CONNECTIONS * 2}},
                {"name": heap, "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                    "max_heap_size_bytes": HEAP_LIMIT}},
            ],
            "actions": [
                {"name": "envoy.overload_actions.disable_http_keepalive", "triggers": [{"name": heap, "threshold": {"value": 0.9}}]},
                {"name": "envoy.overload_actions.stop_accepting_requests", "triggers": [{"name": heap, "threshold": {"value": 0.95}}]},
            ],
        },
        "stats_flush_interval": "1s",
        "layered_runtime": {"layers": [{"name": "static", "static_layer": {}}]},
    }


def clusters(backends: list[dict], folder: Path) -> list[dict]:
    """One cluster per model server: its own server first, the others as failover for retries.

    `folder` is Envoy's (its working folder): socket paths are written relative to it, so that a
    deep home still fits the kernel's 107 bytes."""
    out = []
    for b in backends:
        others = sorted((o for o in backends if o["id"] != b["id"]), key=lambda o: o["id"])
        endpoints = [{"priority": 0, "lb_endpoints": [_endpoint(b, folder)]}]
        if others:
            endpoints.append({"priority": 1, "lb_endpoints": [_endpoint(o, folder) for o in others]})
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
            "circuit_breakers": _limits(64, 256),
            "track_cluster_stats": {"timeout_budgets": False},
        })
    return out


def _endpoint(b: dict, folder: Path) -> dict:
    return {"endpoint": {"address": {"pipe": {"path": os.path.relpath(b["socket"], folder)}}}}


def _header(key: str, value: str) -> dict:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _predict(primary: dict, canary: dict | None, share: int, shadow: dict | None) -> dict:
    """The action of a prediction: split primary/canary, mirrored to a shadow, retried only where it is safe."""
    weighted = [{"name": cluster_name(primary["id"]), "weight": 100 - (share if canary else 0),
                 "request_headers_to_add": [_header(ROLE_HEADER, "primary")],
                 "response_headers_to_add": [_header(VERSION_HEADER, str(primary["version"]))]}]
    if canary:
        weighted.append({"name": cluster_name(canary["id"]), "weight": share,
                         "request_headers_to_add": [_header(ROLE_HEADER, "canary")],
                         "response_headers_to_add": [_header(VERSION_HEADER, str(canary["version"]))]})
    action = {"weighted_clusters": {"clusters": weighted}, "timeout": f"{REQUEST_TIMEOUT_S}s", "retry_policy": _retry()}
    if shadow:
        action["request_mirror_policies"] = [{
            "cluster": cluster_name(shadow["id"]),
            "runtime_fraction": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        }]
    return action


def _retry() -> dict:
    return {
        # only where the request never reached a model server: one that was sent and broke its server
        # (a request of death) is not sent to the next
        "retry_on": "connect-failure,refused-stream,reset-before-request",
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


def _path(pattern: str) -> dict:
    return {"safe_regex": {"regex": pattern}}


_POST = {"name": ":method", "string_match": {"exact": "POST"}}
_JSON = {"name": "content-type", "string_match": {"prefix": "application/json"}}


def _posted(paths: str, action: dict, what: str, small: dict, empty: dict, too_large: dict) -> list[dict]:
    """The routes of a POST path with a JSON body: held by the endpoint when small, by the `large` listener when
    larger, refused when empty (400), too large (413), not JSON (415) or not POST (405)."""
    return [
        {"match": {**_path(paths), "headers": [_POST, _JSON, small]}, "route": action},
        *_holding_nothing(
            {"match": {**_path(paths), "headers": [_POST, empty]},
             "direct_response": _direct(400, "BAD_REQUEST", "The request has an empty body; send a JSON object with binData (a base64 JPEG or PNG).")},
            {"match": {**_path(paths), "headers": [_POST, too_large]},
             "direct_response": _direct(413, "PAYLOAD_TOO_LARGE", f"The request body is too large: the endpoint takes at most {MAX_BODY >> 20} MiB.")},
            {"match": {**_path(paths), "headers": [_POST, _JSON]},
             "route": {"cluster": LARGE_CLUSTER, "timeout": f"{REQUEST_TIMEOUT_S}s"}},
            {"match": {**_path(paths), "headers": [_POST]},
             "direct_response": _direct(415, "UNSUPPORTED_MEDIA_TYPE", f"{what} a JSON body (Content-Type: application/json).")},
            {"match": _path(paths),
             "direct_response": _direct(405, "METHOD_NOT_ALLOWED", f"{what} POST with a JSON body.")},
        ),
    ]


def routes(port: int, primary: dict, canary: dict | None, share: int, shadow: dict | None) -> list[dict]:
    """The two route tables, [endpoint, large]: predictions (POST + JSON) split primary/canary and mirrored
    to a shadow, held by the endpoint when small and by the `large` listener otherwise; feedback (the same
    rules) and reads to the primary."""
    predict = _predict(primary, canary, share, shadow)
    read = {"cluster": cluster_name(primary["id"]), "timeout": "10s", "retry_policy": _retry()}
    # the declared length decides, before any byte of the body is read (header matches: no Lua on the way)
    small = {"name": "content-length", "range_match": {"start": 1, "end": SMALL_BODY + 1}}
    empty = {"name": "content-length", "string_match": {"exact": "0"}}
    too_large = {"name": "content-length", "range_match": {"start": MAX_BODY + 1, "end": 1 << 62}}
    feedback = {"cluster": cluster_name(primary["id"]), "timeout": f"{REQUEST_TIMEOUT_S}s", "retry_policy": _retry()}
    local = {
        "name": "local",
        "domains": ["127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}"],
        "response_headers_to_remove": CORS_HEADERS,
        "routes": [
            *_posted(PREDICTION_PATHS, predict, "Predictions take", small, empty, too_large),
            *_posted(FEEDBACK_PATHS, feedback, "Feedback takes", small, empty, too_large),
            *_holding_nothing(
                {"match": {**_path(READ_PATHS), "headers": [
                    {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}]}, "route": read},
                {"match": {"prefix": "/"},
                 "direct_response": _direct(404, "NOT_FOUND", "The endpoint serves POST /api/v1.0/predictions, POST /api/v1.0/feedback and GET /health/status, /metadata.")},
            ),
        ],
    }
    other = {
        "name": "other-hosts",
        "domains": ["*"],
        "routes": _holding_nothing({"match": {"prefix": "/"}, "direct_response": _direct(
            403, "FORBIDDEN_HOST", "The endpoint answers requests for 127.0.0.1 or localhost only.")}),
    }
    endpoint = {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": "endpoint",
                "virtual_hosts": [local, other]}
    large = {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": LARGE_CLUSTER,
             "virtual_hosts": [{"name": "large", "domains": ["*"], "routes": [
                 {"match": {**_path(PREDICTION_PATHS), "headers": [_POST, _JSON]}, "route": predict},
                 {"match": {**_path(FEEDBACK_PATHS), "headers": [_POST, _JSON]}, "route": feedback},
                 {"match": {"prefix": "/"}, "direct_response": _direct(404, "NOT_FOUND", "Only predictions and feedback come this way.")},
             ]}]}
    return [endpoint, large]
