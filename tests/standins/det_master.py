"""A stand-in for the Determined master's REST API, as determined 0.38.1's master answers it (tests only).

Its state and how it changes over time are in det_master_state.py, its answers as binding objects in
det_master_views.py, the config check of CreateExperiment in det_expconf.py, the searchers in
det_searcher.py; what still differs from a real master is listed in docs/contract.md.

It answers the paths the determined 0.38.1 SDK calls, and builds every response with the SDK's own generated
binding classes (`determined.common.api.bindings`), so the JSON has exactly the shapes the client parses:
login and `me`, master info, experiments (list, get, create, pause, activate, kill), trials, trial metrics and
logs (streamed as the master does, one `{"result": ...}` line each), checkpoints (also their files:
`GET /checkpoints/<uuid>` with `Accept: application/gzip` streams a gzipped tar, which `Checkpoint.download()`
falls back to when it cannot read the storage itself), models and model versions. Errors come as the
master's grpc-gateway writes them (master/internal/grpcutil/errors.go): `{"error": {"code", "reason",
"error"}}` with the gRPC code and its name, and the HTTP status of that code (a plain error of the master,
as an invalid config, is Internal: 500). With `tls` (a certificate and key) it serves HTTPS only.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from determined.common.api import bindings as b
from determined.common.api.authentication import salt_and_hash

from tests.standins import det_master_views as views
from tests.standins.det_expconf import ConfigError, check_config
from tests.standins.det_master_state import MASTER_STORAGE, PAGE, PASSWORD, USER, MasterError, MasterState, stamp

GRPC = {"InvalidArgument": (3, 400), "FailedPrecondition": (9, 400), "NotFound": (5, 404), "AlreadyExists": (6, 409),
        "Unauthenticated": (16, 401), "PermissionDenied": (7, 403), "Internal": (13, 500), "Unimplemented": (12, 501)}
UNAUTHENTICATED = ("POST", "/api/v1/auth/login"), ("GET", "/api/v1/master")


def _page(items: list, query: dict) -> tuple[list, b.v1Pagination]:
    """api.Paginate / runPagedBunExperimentsQuery: limit 0 is 100 items, -1 all of them."""
    offset = int(query.get("offset", ["0"])[0] or 0)
    limit = int(query.get("limit", ["0"])[0] or 0)
    start = min(max(offset, 0), len(items))
    end = len(items) if limit == -1 else min(start + (limit or PAGE), len(items))
    chosen = items[start:end]
    return chosen, b.v1Pagination(offset=offset, limit=limit, startIndex=start, endIndex=end, total=len(items))


class _Handler(BaseHTTPRequestHandler):
    state: MasterState  # set on the subclass the server makes

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, results: list) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        for r in results:
            self.wfile.write(json.dumps({"result": r}).encode() + b"\n")

    def _send_archive(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        self.state.requests.append((method, path, query))
        try:
            if (method, path) not in UNAUTHENTICATED:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if not token:
                    raise MasterError("Unauthenticated", "token missing")
                if not self.state.token_valid(token):  # unknown or expired (grpcutil/auth.go)
                    raise MasterError("Unauthenticated", "invalid credentials")
            if path.startswith("/checkpoints/") and "application/gzip" not in (self.headers.get("Accept") or ""):
                raise MasterError(415, "unsupported media type: ask for application/gzip")
            for verb, pattern, handler in ROUTES:
                match = re.fullmatch(pattern, path)
                if verb == method and match:
                    hook = self.state.hook  # a test's interleaving: called outside the lock, before and after
                    if hook:
                        hook(method, path, "before")
                    with self.state.lock:
                        result = handler(self.state, query, body, *match.groups())
                    if hook:
                        hook(method, path, "after")  # applied, not answered yet
                    if isinstance(result, tuple):  # a stream
                        return self._stream(result[1])
                    if isinstance(result, bytes):  # checkpoint files
                        return self._send_archive(result)
                    return self._send(200, result)
            raise MasterError("NotFound", "Not Found")
        except MasterError as f:
            if isinstance(f.code, int):  # an echo route: a plain HTTP error
                return self._send(f.code, {"message": f.message})
            code, status = GRPC[f.code]
            self._send(status, {"error": {"code": code, "reason": f.code, "error": f.message}})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")


# --- routes: (state, query, body, *path groups) -> JSON, or ("stream", [results]) ----------


def login(s: MasterState, q, body):
    if not body.get("username"):
        raise MasterError("InvalidArgument", "missing argument: username")
    if body.get("username") != USER or body.get("password") != salt_and_hash(PASSWORD):
        raise MasterError("Unauthenticated", "invalid credentials")
    return b.v1LoginResponse(token=s.new_token(), user=b.v1User(active=True, admin=True, username=USER, id=1)).to_json()


def master_info(s, q, body):
    return b.v1GetMasterResponse(clusterId="standin", clusterName="stand-in", hasCustomLogo=False, masterId="standin",
                                 strictJobQueueControl=False, version="0.38.1-standin").to_json()


def create_experiment(s: MasterState, q, body):
    try:
        submitted = yaml.safe_load(body.get("config") or "")
        config = check_config(submitted, MASTER_STORAGE)
    except yaml.YAMLError as e:
        raise MasterError("Internal", f"invalid experiment configuration: unable to convert yaml to json: {e}") from None
    except ConfigError as e:
        raise MasterError("Internal", str(e)) from None
    source = config["searcher"].get("source_checkpoint_uuid")
    if source is not None and source not in s.checkpoints:  # experiment.go checkpointFromTrialIDOrUUID
        raise MasterError("Internal", f"failed to create experiment: no checkpoint found with UUID {source}")
    exp_id = s.create(config, bool(body.get("activate")), [f["path"] for f in body.get("modelDefinition") or []])
    s.experiments[exp_id]["original"] = submitted
    return b.v1CreateExperimentResponse(config=config, experiment=views.experiment(s, exp_id)).to_json()


def transition(action: str):
    def act(s: MasterState, q, body, exp_id):
        views.experiment(s, int(exp_id))  # NotFound first
        s.transition(int(exp_id), action)
        return {}

    return act


def list_experiments(s: MasterState, q, body):
    descending = q.get("orderBy") == ["ORDER_BY_DESC"]
    trial_data = q.get("showTrialData") == ["true"]
    ids = sorted(s.experiments, reverse=descending)  # by id, ascending unless asked otherwise
    exps, page = _page([views.experiment(s, i, listing=True, trial_data=trial_data) for i in ids], q)
    return b.v1GetExperimentsResponse(experiments=exps, pagination=page).to_json()


def trial_metrics(s: MasterState, q, body):
    ids, group = {int(i) for i in q.get("trialIds", [])}, q.get("group", [""])[0]
    chosen = [r for r in s.reports if r["trialId"] in ids and r["group"] == group]
    reports = [b.v1MetricsReport(archived=False, endTime=stamp(r["endTime"]), group=r["group"], id=str(r["id"]),
                                 metrics=r["metrics"], totalBatches=r["totalBatches"], trialId=r["trialId"], trialRunId=1)
               for r in chosen]
    # the master streams reports in batches, several responses per request
    return "stream", [b.v1GetMetricsResponse(metrics=reports[i : i + 3]).to_json() for i in range(0, len(reports), 3)] or [
        b.v1GetMetricsResponse(metrics=[]).to_json()]


def trial_logs(s: MasterState, q, body, trial_id):
    t = views.trial(s, int(trial_id))
    lines = s.logs[t.id]
    if q.get("limit"):
        lines = lines[: int(q["limit"][0])]
    return "stream", [b.v1TrialLogsResponse(id=str(n), level=b.v1LogLevel.INFO, message=line + "\n", timestamp=stamp(time.time()),
                                            trialId=t.id).to_json() for n, line in enumerate(lines)]


def experiment_trials(s: MasterState, q, body, exp_id):
    views.experiment(s, int(exp_id))
    s.pages_served = getattr(s, "pages_served", 0) + 1
    chosen, page = _page([views.trial(s, t) for t in s.experiment_trials(int(exp_id))], q)
    return b.v1GetExperimentTrialsResponse(trials=chosen, pagination=page).to_json()


def experiment_checkpoints(s: MasterState, q, body, exp_id):
    views.experiment(s, int(exp_id))
    mine = [c for c in s.checkpoints.values() if s.trials[c["trial"]]["experiment"] == int(exp_id)]
    chosen, page = _page([views.checkpoint(s, c["uuid"]) for c in sorted(mine, key=lambda c: c["batch"])], q)
    return b.v1GetExperimentCheckpointsResponse(checkpoints=chosen, pagination=page).to_json()


def list_models(s: MasterState, q, body):
    wanted = (q.get("name") or [""])[0].lower()  # ILIKE %name%
    found = sorted((m for m in s.models.values() if wanted in m["name"].lower()), key=lambda m: m["id"])
    chosen, page = _page([views.model(s, m["name"]) for m in found], q)
    return b.v1GetModelsResponse(models=chosen, pagination=page).to_json()


def check_model_name(name: str) -> None:
    """api_model.go clearModelName."""
    if not name.replace(" ", ""):
        raise MasterError("InvalidArgument", "model names cannot be blank")
    if "  " in name:
        raise MasterError("InvalidArgument", "model names cannot have excessive spacing")
    if "/" in name or "\\" in name:
        raise MasterError("InvalidArgument", "model names cannot have slashes")
    if re.fullmatch(r"\d+", name):
        raise MasterError("InvalidArgument", "model names cannot be only numbers")


def create_model(s: MasterState, q, body):
    name = body.get("name") or ""
    check_model_name(name)
    if name in s.models:
        raise MasterError("AlreadyExists", "avoid names equal to other models (case-sensitive)")
    m = s.add_model(name, body.get("description") or "")
    m.update(metadata=body.get("metadata") or {}, labels=body.get("labels") or [])
    return b.v1PostModelResponse(model=views.model(s, name)).to_json()


def patch_model(s: MasterState, q, body, identifier):
    m = s.find_model(identifier)
    for key in ("metadata", "labels", "description"):
        if body.get(key) is not None:
            m[key] = body[key]
    m["updated"] = time.time()
    return b.v1PatchModelResponse(model=views.model(s, m["name"])).to_json()


def list_versions(s: MasterState, q, body, identifier):
    m = s.find_model(identifier)
    numbers = sorted((v["version"] for v in m["versions"]), reverse=q.get("orderBy") == ["ORDER_BY_DESC"])
    chosen, page = _page([views.version(s, identifier, n) for n in numbers], q)
    return b.v1GetModelVersionsResponse(model=views.model(s, identifier), modelVersions=chosen, pagination=page).to_json()


def register_version(s: MasterState, q, body, identifier):
    m = s.find_model(identifier)
    uuid = body.get("checkpointUuid") or ""
    ckpt = views.checkpoint(s, uuid)  # NotFound
    if ckpt.state != b.checkpointv1State.COMPLETED:
        raise MasterError("Internal", f"checkpoint {uuid} is in {ckpt.state.value} state. checkpoints for model versions "
                                      "must be in a COMPLETED state")
    version = s.add_version(m["name"], uuid)
    return b.v1PostModelVersionResponse(modelVersion=views.version(s, identifier, version["version"])).to_json()


def patch_version(s: MasterState, q, body, identifier, number):
    views.version(s, identifier, int(number))
    v = next(v for v in s.find_model(identifier)["versions"] if v["version"] == int(number))
    for key in ("notes", "name", "labels", "metadata"):
        if body.get(key) is not None:
            v[key] = body[key]
    return b.v1PatchModelVersionResponse(modelVersion=views.version(s, identifier, int(number))).to_json()


ROUTES = [
    ("POST", r"/api/v1/auth/login", login),
    ("GET", r"/api/v1/me", lambda s, q, body: b.v1GetMeResponse(user=b.v1User(active=True, admin=True, username=USER, id=1)).to_json()),
    ("GET", r"/api/v1/master", master_info),
    ("GET", r"/api/v1/experiments", list_experiments),
    ("POST", r"/api/v1/experiments", create_experiment),
    ("GET", r"/api/v1/experiments/(\d+)", lambda s, q, body, i: b.v1GetExperimentResponse(experiment=views.experiment(s, int(i))).to_json()),
    ("POST", r"/api/v1/experiments/(\d+)/pause", transition("pause")),
    ("POST", r"/api/v1/experiments/(\d+)/activate", transition("activate")),
    ("POST", r"/api/v1/experiments/(\d+)/kill", transition("kill")),
    ("GET", r"/api/v1/experiments/(\d+)/trials", experiment_trials),
    ("GET", r"/api/v1/experiments/(\d+)/checkpoints", experiment_checkpoints),
    ("GET", r"/api/v1/trials/metrics/trial_metrics", trial_metrics),
    ("GET", r"/api/v1/trials/(\d+)", lambda s, q, body, i: b.v1GetTrialResponse(trial=views.trial(s, int(i))).to_json()),
    ("GET", r"/api/v1/trials/(\d+)/logs", trial_logs),
    ("GET", r"/api/v1/checkpoints/([^/]+)", lambda s, q, body, u: b.v1GetCheckpointResponse(checkpoint=views.checkpoint(s, u)).to_json()),
    ("GET", r"/checkpoints/([^/]+)", lambda s, q, body, u: s.checkpoint_archive(u)),
    ("GET", r"/api/v1/models", list_models),
    ("POST", r"/api/v1/models", create_model),
    ("GET", r"/api/v1/models/([^/]+)", lambda s, q, body, n: b.v1GetModelResponse(model=views.model(s, n)).to_json()),
    ("PATCH", r"/api/v1/models/([^/]+)", patch_model),
    ("GET", r"/api/v1/models/([^/]+)/versions", list_versions),
    ("POST", r"/api/v1/models/([^/]+)/versions", register_version),
    ("GET", r"/api/v1/models/([^/]+)/versions/(\d+)",
     lambda s, q, body, n, v: b.v1GetModelVersionResponse(modelVersion=views.version(s, n, int(v))).to_json()),
    ("PATCH", r"/api/v1/models/([^/]+)/versions/(\d+)", patch_version),
]


class DetMasterStandin:
    """The stand-in master on 127.0.0.1 with a free port, serving from a thread; HTTPS only when given `tls`
    (the server's certificate and key files)."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.state = MasterState()
        handler = type("StandinMasterHandler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            # the handshake runs in accept(): a failed one is an OSError that the server drops
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        self.state.reset()

    def start(self) -> DetMasterStandin:
        self._thread = threading.Thread(target=self._server.serve_forever, name="det-master-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join()
