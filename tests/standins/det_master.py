"""A stand-in for the Determined master's REST API, for tests only (its state: det_master_state.py).

It answers the paths the determined 0.38.1 SDK calls, and builds every response with the
SDK's own generated binding classes (`determined.common.api.bindings`), so the JSON has
exactly the shapes the client parses: login and `me`, master info, experiments (list, get,
create, pause, activate, kill), trials, trial metrics and logs (streamed as the master does,
one `{"result": ...}` line each), checkpoints (also their files: `GET /checkpoints/<uuid>` with `Accept: application/gzip` streams a
gzipped tar, which `Checkpoint.download()` falls back to when it cannot read the storage itself),
models and model versions. Errors come as
`{"error": {"code", "reason", "error"}}` with the master's HTTP status codes.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from determined.common.api import bindings as b
from determined.common.api.authentication import salt_and_hash

from tests.standins.det_master_state import PAGE, PASSWORD, TERMINAL, USER, MasterError, MasterState, stamp, trial_count


def _page(items: list, query: dict) -> tuple[list, b.v1Pagination]:
    offset = int(query.get("offset", ["0"])[0] or 0)
    limit = min(int(query.get("limit", ["0"])[0] or 0) or PAGE, PAGE)  # the master caps a page
    chosen = items[offset : offset + limit]
    return chosen, b.v1Pagination(offset=offset, limit=limit, startIndex=offset, endIndex=offset + len(chosen), total=len(items))


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
        try:
            if (method, path) not in {("POST", "/api/v1/auth/login"), ("GET", "/api/v1/master")}:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if token not in self.state.tokens:
                    raise MasterError(401, "invalid credentials")
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
            raise MasterError(404, f"no route for {method} {path}")
        except MasterError as f:
            reason = {400: "Bad Request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
                      415: "Unsupported Media Type"}
            self._send(f.status, {"error": {"code": f.status, "reason": reason.get(f.status, "Error"), "error": f.message}})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")


# --- routes: (state, query, body, *path groups) -> JSON, or ("stream", [results]) ----------


def login(s: MasterState, q, body):
    if body.get("username") != USER or body.get("password") != salt_and_hash(PASSWORD):
        raise MasterError(403, "invalid credentials")
    token = f"standin-{uuid.uuid4().hex}"
    s.tokens.add(token)
    return b.v1LoginResponse(token=token, user=b.v1User(active=True, admin=True, username=USER, id=1)).to_json()


def master_info(s, q, body):
    return b.v1GetMasterResponse(clusterId="standin", clusterName="stand-in", hasCustomLogo=False, masterId="standin",
                                 strictJobQueueControl=False, version="0.38.1-standin").to_json()


def create_experiment(s: MasterState, q, body):
    config = yaml.safe_load(body.get("config") or "") or {}
    if "entrypoint" not in config:
        raise MasterError(400, "invalid experiment config: entrypoint is required")
    exp_id = next(s.ids)
    active = bool(body.get("activate"))
    trials = s.add_experiment(exp_id, config, "ACTIVE" if active else "PAUSED", time.time(), trials=trial_count(config))
    for t in trials:  # queued first; running once the agents have them
        s.trials[t]["state"] = "QUEUED" if active else "PAUSED"
        if active:
            s.later("trial", t, "RUNNING")
    s.uploads[exp_id] = sorted(f["path"] for f in body.get("modelDefinition") or [])
    return b.v1CreateExperimentResponse(config=config, experiment=s.experiment(exp_id)).to_json()


def transition(action: str):
    def act(s: MasterState, q, body, exp_id):
        s.experiment(int(exp_id))
        e = s.experiments[int(exp_id)]
        if e["state"] in TERMINAL:
            if action == "kill":
                return {}
            raise MasterError(400, f"experiment in terminal state {e['state']}")
        trials = s.experiment_trials(int(exp_id))
        if action == "kill":  # the trials stop first, then the experiment is canceled
            e["state"] = "STOPPING_CANCELED"
            s.later("experiment", int(exp_id), "CANCELED")
            for t in trials:
                if s.trials[t]["state"] not in TERMINAL:
                    s.trials[t]["state"] = "STOPPING_CANCELED"
                    s.later("trial", t, "CANCELED")
        else:
            e["state"] = {"pause": "PAUSED", "activate": "ACTIVE"}[action]
            for t in trials:
                if s.trials[t]["state"] not in TERMINAL:
                    s.trials[t]["state"] = "PAUSED" if action == "pause" else "QUEUED"
                    if action == "activate":
                        s.later("trial", t, "RUNNING")
        return {}

    return act


def list_experiments(s: MasterState, q, body):
    exps, page = _page([s.experiment(i) for i in sorted(s.experiments, reverse=True)], q)
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
    t = s.trial(int(trial_id))
    lines = s.logs[t.id]
    if q.get("limit"):
        lines = lines[: int(q["limit"][0])]
    return "stream", [b.v1TrialLogsResponse(id=str(n), level=b.v1LogLevel.INFO, message=line + "\n", timestamp=stamp(time.time()),
                                            trialId=t.id).to_json() for n, line in enumerate(lines)]


def experiment_trials(s: MasterState, q, body, exp_id):
    s.experiment(int(exp_id))
    s.pages_served = getattr(s, "pages_served", 0) + 1
    chosen, page = _page([s.trial(t) for t in s.experiment_trials(int(exp_id))], q)
    return b.v1GetExperimentTrialsResponse(trials=chosen, pagination=page).to_json()


def experiment_checkpoints(s: MasterState, q, body, exp_id):
    s.experiment(int(exp_id))
    mine = [c for c in s.checkpoints.values() if s.trials[c["trial"]]["experiment"] == int(exp_id)]
    chosen, page = _page([s.checkpoint(c["uuid"]) for c in sorted(mine, key=lambda c: c["batch"])], q)
    return b.v1GetExperimentCheckpointsResponse(checkpoints=chosen, pagination=page).to_json()


def list_models(s: MasterState, q, body):
    names = [n for n in sorted(s.models) if not q.get("name") or q["name"][0] in n]
    chosen, page = _page([s.model(n) for n in names], q)
    return b.v1GetModelsResponse(models=chosen, pagination=page).to_json()


def create_model(s: MasterState, q, body):
    name = body.get("name") or ""
    if name in s.models:
        raise MasterError(409, f"model {name} already exists")
    s.models[name] = {"id": len(s.models) + 1, "name": name, "description": body.get("description") or "",
                      "created": time.time(), "updated": time.time(), "metadata": body.get("metadata") or {},
                      "labels": body.get("labels") or [], "versions": []}
    return b.v1PostModelResponse(model=s.model(name)).to_json()


def patch_model(s: MasterState, q, body, name):
    m = s.models[s.model(name).name]
    for key in ("metadata", "labels", "description"):
        if body.get(key) is not None:
            m[key] = body[key]
    m["updated"] = time.time()
    return b.v1PatchModelResponse(model=s.model(name)).to_json()


def list_versions(s: MasterState, q, body, name):
    model = s.model(name)
    numbers = [v["version"] for v in s.models[model.name]["versions"]]
    chosen, page = _page([s.version(name, n) for n in sorted(numbers, reverse=q.get("orderBy") == ["ORDER_BY_DESC"])], q)
    return b.v1GetModelVersionsResponse(model=model, modelVersions=chosen, pagination=page).to_json()


def register_version(s: MasterState, q, body, name):
    model = s.model(name)
    s.checkpoint(body.get("checkpointUuid") or "")
    version = s.add_version(model.name, body["checkpointUuid"])
    return b.v1PostModelVersionResponse(modelVersion=s.version(name, version["version"])).to_json()


def patch_version(s: MasterState, q, body, name, number):
    s.version(name, int(number))
    v = next(v for v in s.models[s.model(name).name]["versions"] if v["version"] == int(number))
    for key in ("notes", "name", "labels", "metadata"):
        if body.get(key) is not None:
            v[key] = body[key]
    return b.v1PatchModelVersionResponse(modelVersion=s.version(name, int(number))).to_json()


ROUTES = [
    ("POST", r"/api/v1/auth/login", login),
    ("GET", r"/api/v1/me", lambda s, q, body: b.v1GetMeResponse(user=b.v1User(active=True, admin=True, username=USER, id=1)).to_json()),
    ("GET", r"/api/v1/master", master_info),
    ("GET", r"/api/v1/experiments", list_experiments),
    ("POST", r"/api/v1/experiments", create_experiment),
    ("GET", r"/api/v1/experiments/(\d+)", lambda s, q, body, i: b.v1GetExperimentResponse(experiment=s.experiment(int(i))).to_json()),
    ("POST", r"/api/v1/experiments/(\d+)/pause", transition("pause")),
    ("POST", r"/api/v1/experiments/(\d+)/activate", transition("activate")),
    ("POST", r"/api/v1/experiments/(\d+)/kill", transition("kill")),
    ("GET", r"/api/v1/experiments/(\d+)/trials", experiment_trials),
    ("GET", r"/api/v1/experiments/(\d+)/checkpoints", experiment_checkpoints),
    ("GET", r"/api/v1/trials/metrics/trial_metrics", trial_metrics),
    ("GET", r"/api/v1/trials/(\d+)", lambda s, q, body, i: b.v1GetTrialResponse(trial=s.trial(int(i))).to_json()),
    ("GET", r"/api/v1/trials/(\d+)/logs", trial_logs),
    ("GET", r"/api/v1/checkpoints/([^/]+)", lambda s, q, body, u: b.v1GetCheckpointResponse(checkpoint=s.checkpoint(u)).to_json()),
    ("GET", r"/checkpoints/([^/]+)", lambda s, q, body, u: s.checkpoint_archive(u)),
    ("GET", r"/api/v1/models", list_models),
    ("POST", r"/api/v1/models", create_model),
    ("GET", r"/api/v1/models/([^/]+)", lambda s, q, body, n: b.v1GetModelResponse(model=s.model(n)).to_json()),
    ("PATCH", r"/api/v1/models/([^/]+)", patch_model),
    ("GET", r"/api/v1/models/([^/]+)/versions", list_versions),
    ("POST", r"/api/v1/models/([^/]+)/versions", register_version),
    ("GET", r"/api/v1/models/([^/]+)/versions/(\d+)",
     lambda s, q, body, n, v: b.v1GetModelVersionResponse(modelVersion=s.version(n, int(v))).to_json()),
    ("PATCH", r"/api/v1/models/([^/]+)/versions/(\d+)", patch_version),
]


class DetMasterStandin:
    """The stand-in master on 127.0.0.1 with a free port, serving from a thread."""

    def __init__(self) -> None:
        self.state = MasterState()
        handler = type("StandinMasterHandler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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
