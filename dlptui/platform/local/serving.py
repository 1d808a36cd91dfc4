"""Local Serving: deployments of model versions, each the real Seldon microservice behind a gateway.

    config.home/serving/<name>/state.json    what runs: gateway and model servers (pids, ports)
    config.home/serving/<name>/routes.json   what the gateway forwards to, with weights
    config.home/serving/<name>/logs/         one log per process
    config.home/serving/.locks/<name>        flock'ed while the deployment changes

A deployment's endpoint is its gateway's URL; it never changes while the deployment lives.
Updating starts the new version, waits until it is ready, switches the gateway, waits until
the old server has no request in flight, and only then stops it. Every process is detached,
so deployments survive the console; a fresh console reads the state files and re-checks each
process (a dead one shows the deployment as failed, with the reason and the log's last lines).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError, Unreachable
from dlptui.platform.local import backends, processes
from dlptui.platform.local.backends import Backend
from dlptui.platform.local.processes import ProcessRecord
from dlptui.platform import rules
from dlptui.platform.rules import NAME
from dlptui.platform.model import Deployment, DeploymentState, ModelVersion, Prediction, Service
from dlptui.platform.seldon_protocol import SeldonClient

DRAIN_TIMEOUT_S = 60.0


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


class LocalServing:
    def __init__(self, config, platform) -> None:
        self.config = config
        self.platform = platform
        self.root: Path = config.home / "serving"
        self.root.mkdir(parents=True, exist_ok=True)
        self.predictions = SeldonClient()
        self.http = httpx.Client(timeout=5.0)

    def close(self) -> None:
        self.predictions.close()
        self.http.close()

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

    def _save(self, folder: Path, state: dict) -> None:
        """Write the routes (what the gateway reads) and the state, then make the gateway take them."""
        state["generation"] = state.get("generation", 0) + 1
        primary, canary = state["primary"], state.get("canary")
        share = state.get("canary_traffic", 0) if canary else 0
        routes = [{"url": Backend.from_json(primary).url, "version": primary["version"], "weight": 100 - share}]
        if canary:
            routes.append({"url": Backend.from_json(canary).url, "version": canary["version"], "weight": share})
        _write_json(folder / "routes.json", {"generation": state["generation"], "backends": routes})
        _write_json(folder / "state.json", state)
        gateway = state["gateway"]
        seen = backends.wait_gateway(gateway["port"], ProcessRecord.from_json(gateway), self.http)
        if seen.get("generation") != state["generation"]:
            raise Unreachable(f"The gateway of {state['name']} did not take the new routes; undeploy and deploy again.")

    def _drain_and_stop(self, state: dict, old: dict) -> None:
        """Wait until the gateway has no request in flight to `old`, then stop its process tree."""
        backend = Backend.from_json(old)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        gateway = state["gateway"]
        while time.monotonic() < deadline:
            seen = backends.wait_gateway(gateway["port"], ProcessRecord.from_json(gateway), self.http)
            if not seen.get("inflight", {}).get(backend.url):
                break
            time.sleep(0.05)
        processes.stop_tree(backend.record)

    # --- reading -------------------------------------------------------------

    def health(self) -> Service:
        from importlib.metadata import PackageNotFoundError, version

        try:
            seldon = version("seldon-core")
        except PackageNotFoundError:  # a base or [cluster] install
            detail = "seldon-core is not installed: install dlptui with its local extra, pip install 'dlptui[local]'."
            return Service("serving", "seldon-core-microservice", False, detail)
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
        return result

    def get_deployment(self, name: str) -> Deployment:
        state = self._read(name)
        return self._deployment(state)

    def _deployment(self, state: dict) -> Deployment:
        primary = Backend.from_json(state["primary"])
        canary = Backend.from_json(state["canary"]) if state.get("canary") else None
        gateway = state["gateway"]
        if not processes.alive(ProcessRecord.from_json(gateway)):
            status, reason = "failed", (
                f"The gateway (pid {gateway['pid']}) has exited; undeploy {state['name']} and deploy it again."
            )
        else:
            status, reason = backends.backend_status(primary, self.http)
            if canary is not None and status != "failed":
                canary_status, canary_reason = backends.backend_status(canary, self.http)
                if canary_status != "available":
                    status, reason = canary_status, "Canary: " + canary_reason
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
        )

    def logs(self, name: str, lines: int = 50) -> list[str]:
        state = self._read(name)
        return processes.tail(Path(state["primary"]["log"]), lines)

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
            primary = backends.start_backend(version, folder)
            if port is None or not processes.port_free(port):
                port = processes.free_port()
            try:
                gateway = backends.start_gateway(port, folder / "routes.json", folder / "logs" / "gateway.log")
            except Exception:
                processes.stop_tree(primary.record)
                raise
            state = {
                "name": name,
                "created": time.time(),
                "gateway": {**gateway.to_json(), "port": port},
                "primary": primary.to_json(),
                "canary": None,
                "canary_traffic": 0,
            }
            try:
                self._save(folder, state)
            except Exception:
                self._stop_all(folder, state)
                raise
            return self._deployment(state)

    def update(self, name: str, version: ModelVersion) -> Deployment:
        version = self._with_location(version)
        with self._locked(name) as folder:
            state = self._read(name)
            new = self._start_ready(version, folder)
            old = state["primary"]
            state["primary"] = new.to_json()
            self._save(folder, state)
            self._drain_and_stop(state, old)
            return self._deployment(state)

    def set_canary(self, name: str, version: ModelVersion | None, traffic: int) -> Deployment:
        if version is not None:
            rules.check_canary_traffic(traffic)
        with self._locked(name) as folder:
            state = self._read(name)
            old = state.get("canary")
            if version is None:
                state["canary"], state["canary_traffic"] = None, 0
                self._save(folder, state)
                if old:
                    self._drain_and_stop(state, old)
                return self._deployment(state)
            primary = state["primary"]
            if (primary["model"], primary["version"]) == (version.model, version.version):
                raise InvalidInput(
                    f"Deployment {name!r} already serves version {version.version}; pick another version for the canary."
                )
            version = self._with_location(version)
            if old and old["version"] == version.version and old["model"] == version.model:
                state["canary_traffic"] = int(traffic)
                self._save(folder, state)
                return self._deployment(state)
            new = self._start_ready(version, folder)
            state["canary"], state["canary_traffic"] = new.to_json(), int(traffic)
            self._save(folder, state)
            if old:
                self._drain_and_stop(state, old)
            return self._deployment(state)

    def undeploy(self, name: str) -> None:
        with self._locked(name) as folder:
            state = self._read(name)
            self._stop_all(folder, state)

    def _start_ready(self, version: ModelVersion, folder: Path) -> Backend:
        """A new backend serving `version`, once it answers; stopped again if it never does."""
        new = backends.start_backend(version, folder)
        try:
            backends.wait_ready(new, self.http)
        except Exception:
            processes.stop_tree(new.record)
            raise
        return new

    def _stop_all(self, folder: Path, state: dict | None = None) -> None:
        if state is None:
            state = json.loads((folder / "state.json").read_text())
        records = [ProcessRecord.from_json(state["gateway"])]
        records += [Backend.from_json(b).record for b in (state.get("primary"), state.get("canary")) if b]
        for record in records:
            processes.stop_tree(record)
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
            raise Unreachable(f"Deployment {name!r} has failed (its gateway exited); undeploy it and deploy again.")
        primary = Backend.from_json(state["primary"])
        if not processes.alive(primary.record):
            raise Unreachable(
                f"Deployment {name!r} has failed: its model server (pid {primary.pid}) exited; "
                f"see `dlptui deployment describe {name}`, then deploy it again."
            )
        return self.predictions.predict(f"http://127.0.0.1:{gateway['port']}/api/v1.0/predictions", image, filename)
