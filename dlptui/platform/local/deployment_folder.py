"""The folders of the local deployments: their state files, locks, processes and changes, under the Serving part.

    config.home/serving/<name>/state.json   what runs (Envoy, model servers and their sockets), the history
    config.home/serving/.locks/<name>       flock'ed while the deployment changes

`DeploymentFolders` keeps a deployment's state and its processes in step: one change at a time (a lock), the
state written before Envoy is told (so a crash leaves nothing running that the state does not name, and the next
change settles it), the model servers a change starts recorded in pending.json until the state names them,
drained before they are stopped. `LocalServing` (serving.py) is the port built on it.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from dlptui.errors import InvalidInput, NotFound, PlatformError
from dlptui.platform import deployment_policy as policy
from dlptui.platform.local import backends, envoy, envoy_config, processes
from dlptui.platform.local.backends import Backend
from dlptui.platform.local.processes import ProcessRecord
from dlptui.platform.model import Deployment, ModelVersion
from dlptui.platform.rules import NAME

DRAIN_TIMEOUT_S = 60.0
ROLES = policy.ROLES
PENDING = backends.PENDING
_write_json = processes.write_json


who = policy.who


def routing_of(state: dict) -> policy.Routing:
    """What a deployment's state serves, as the routing policy sees it."""
    primary, canary, shadow = state["primary"], state.get("canary"), state.get("shadow")
    return policy.Routing(primary["model"], int(primary["version"]), int(canary["version"]) if canary else None,
                          int(state.get("canary_traffic") or 0) if canary else 0,
                          int(shadow["version"]) if shadow else None)


def checkpoints_of(state: dict) -> dict[str, str]:
    """Where each serving version's checkpoint lies (kept in a history entry, for a later rollback)."""
    return {str(b["version"]): b["checkpoint"] for b in (state.get(role) for role in ROLES) if b}



class DeploymentFolders:
    """A deployment's folder, state and processes (the Serving part's ground floor)."""

    root: Path
    platform: object

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

    @contextmanager
    def _changing(self, name: str):
        """The deployment's folder and state, locked, with what a change that crashed left finished first."""
        with self._locked(name) as folder:
            state = self._read(name)
            self._settle(folder, state)
            yield folder, state

    def _apply(self, folder: Path, state: dict, target: policy.Routing, change: str,
               given: dict[int, ModelVersion], auto: dict | None = None) -> Deployment:
        """Serve `target`: a version already serving keeps its model server whatever its new role, one that is
        not gets a new one (ready before any route names it), and those no role names are drained and stopped.
        Recorded in the history with the routing before and after; nothing happens when nothing changes."""
        current = routing_of(state)
        if target == current:
            return self._deployment(state)
        running = {b["version"]: b for b in (state.get(role) for role in ROLES) if b}
        new: dict[str, dict | None] = {}
        started: list[Backend] = []
        self.sweep_pending(folder)
        try:
            for role in ROLES:
                number = getattr(target, role)
                if number is None:
                    new[role] = None
                elif number in running:
                    new[role] = running[number]
                else:
                    version = given.get(number) or self._version_for(state, target.model, number)
                    started.append(self._start_ready(self._with_location(version), folder))
                    new[role] = started[-1].to_json()
        except BaseException:
            for backend in started:
                processes.stop_tree(backend.record)
            (folder / PENDING).unlink(missing_ok=True)
            raise
        old = [b for b in running.values() if all(b is not n for n in new.values())]
        state.update(new)
        state["canary_traffic"] = target.share if target.canary is not None else 0
        entry = policy.entry(change, who(), current, target, auto, checkpoints=checkpoints_of(state))
        state["history"] = policy.appended(state.get("history") or [], entry)
        self._save(folder, state, draining=tuple(old))
        if old:
            self._drain_and_stop(folder, state, *old)
        return self._deployment(state)

    def _version_for(self, state: dict, model: str, number: int) -> ModelVersion:
        """Version `number` of `model` as a model server needs it: its checkpoint folder as the history recorded it,
        else as the registry knows it."""
        for e in reversed(state.get("history") or []):
            checkpoint = (e.get("checkpoints") or {}).get(str(number))
            if checkpoint is None and e.get("to_version") == number and e.get("checkpoint"):
                checkpoint = e["checkpoint"]  # an entry of an older dlptui
            if checkpoint and Path(checkpoint).is_dir():
                return ModelVersion(model=model, version=number, checkpoint_uuid="", created=float(e.get("time") or 0),
                                    checkpoint_location=checkpoint)
        return self.platform.registry.get_version(model, number)

    def _start_ready(self, version: ModelVersion, folder: Path) -> Backend:
        """A new backend serving `version`, once it answers; stopped again if it never does.

        It is recorded in pending.json the moment it exists, until the caller's state names it: a
        crash in between leaves a record that the next change of the deployment stops (sweep_pending)."""
        new = backends.start_backend(version, folder)
        try:
            backends.wait_ready(new)
        except Exception:
            processes.stop_tree(new.record)
            raise
        return new

    def sweep_pending(self, folder: Path) -> None:
        """Stop the model servers a crashed change started and never recorded in state.json."""
        try:
            state = json.loads((folder / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        named = {b.get("pid") for b in [*(state.get(role) for role in ROLES), *state.get("draining", [])] if b}
        for pending in backends.pending(folder):
            if pending.pid not in named:
                processes.stop_tree(pending)
        (folder / PENDING).unlink(missing_ok=True)

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
