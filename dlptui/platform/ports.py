"""The five parts of the platform, as Protocols.

`platform/local/` implements each on one machine; `pachyderm.py`, `determined.py`,
`seldon.py` and `kube.py` implement them on a cluster. The console and the CLI see
only these methods. Every method may block (disk, network, a child process): callers
on an event loop run them in a thread. Every method raises `errors.PlatformError`
subclasses for failures a user can cause; anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from dlptui.platform.model import (
    Checkpoint,
    Commit,
    DataRef,
    Deployment,
    Experiment,
    FileEntry,
    MetricPoint,
    Model,
    ModelVersion,
    Node,
    Prediction,
    Promotion,
    Repo,
    Service,
    Workload,
)

# called as progress(done, total) with counts of bytes (puts) or items
Progress = Callable[[int, int], None]


def changes(method):
    """Marks a port method that changes the platform: a read-only Platform refuses it."""
    method.changes_platform = True
    return method


@runtime_checkable
class Part(Protocol):
    def health(self) -> Service:
        """Whether the backend answers, within a bounded time (<= 5 s); never raises."""
        ...


class DataStore(Part, Protocol):
    """Versioned data in Pachyderm's model: repos, branches, commits, files."""

    def list_repos(self) -> list[Repo]: ...

    def inspect_repo(self, name: str) -> Repo: ...

    @changes
    def create_repo(self, name: str, description: str = "") -> Repo: ...

    @changes
    def delete_repo(self, name: str) -> None: ...

    def list_branches(self, repo: str) -> list[str]: ...

    def list_commits(self, repo: str, branch: str | None = None, limit: int | None = None) -> list[Commit]:
        """Newest first. `branch=None` means every branch."""
        ...

    def inspect_commit(self, repo: str, ref: str) -> Commit:
        """`ref` is a branch name (its head) or a commit id (a unique prefix is enough)."""
        ...

    @changes
    def put_files(
        self,
        repo: str,
        branch: str,
        files: Mapping[str, Path | bytes],
        message: str = "",
        progress: Progress | None = None,
    ) -> Commit:
        """One atomic commit on `branch` (created if missing) adding or replacing `files`.

        Keys are destination paths inside the repo; values are local files or bytes.
        """
        ...

    @changes
    def delete_files(self, repo: str, branch: str, paths: list[str], message: str = "") -> Commit: ...

    def list_files(self, repo: str, ref: str, path: str = "/", recursive: bool = False) -> list[FileEntry]: ...

    def get_file(self, repo: str, ref: str, path: str) -> bytes: ...

    def resolve(self, repo: str, ref: str) -> DataRef:
        """Pin a branch or commit prefix to the full commit id (what an experiment records)."""
        ...


class Training(Part, Protocol):
    """Experiments of the Dogs-vs-Cats trial, their metrics, logs and checkpoints."""

    def list_experiments(self) -> list[Experiment]: ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @changes
    def create_experiment(self, config: Path, data: DataRef | None = None, name: str | None = None) -> Experiment:
        """Start the trial described by the config file, on `data` (default: the config's)."""
        ...

    @changes
    def pause(self, experiment_id: str) -> Experiment: ...

    @changes
    def resume(self, experiment_id: str) -> Experiment: ...

    @changes
    def kill(self, experiment_id: str) -> Experiment: ...

    def metrics(self, experiment_id: str, cursor: int = 0) -> tuple[list[MetricPoint], int]:
        """Points reported after `cursor` (0: all), in order, and the cursor for the next call."""
        ...

    def logs(self, experiment_id: str, cursor: int = 0) -> tuple[list[str], int]:
        """Log lines after `cursor` (0: from the start) and the cursor for the next call."""
        ...

    def checkpoints(self, experiment_id: str) -> list[Checkpoint]: ...

    def checkpoint(self, uuid: str) -> Checkpoint: ...


class Registry(Part, Protocol):
    """Models, their versions (checkpoints), aliases and the audit history of promotions."""

    def list_models(self) -> list[Model]: ...

    def get_model(self, name: str) -> Model: ...

    def list_versions(self, model: str) -> list[ModelVersion]: ...

    def get_version(self, model: str, ref: str | int) -> ModelVersion:
        """`ref`: a version number, an alias (`staging`, `production`) or `latest`."""
        ...

    @changes
    def register(
        self, model: str, experiment_id: str, checkpoint_uuid: str | None = None, notes: str = ""
    ) -> ModelVersion:
        """A new version from the chosen checkpoint, or the experiment's best one."""
        ...

    @changes
    def promote(self, model: str, version: int, alias: str, who: str | None = None) -> Promotion: ...

    def history(self, model: str) -> list[Promotion]:
        """Every promotion of the model, oldest first."""
        ...


class Serving(Part, Protocol):
    """Named deployments of model versions behind a Seldon prediction endpoint."""

    def list_deployments(self) -> list[Deployment]: ...

    def get_deployment(self, name: str) -> Deployment: ...

    @changes
    def deploy(self, name: str, version: ModelVersion) -> Deployment: ...

    @changes
    def update(self, name: str, version: ModelVersion) -> Deployment:
        """Move a deployment to another version without a failed request."""
        ...

    @changes
    def set_canary(self, name: str, version: ModelVersion | None, traffic: int) -> Deployment:
        """Send `traffic` percent of requests to `version`; `None` removes the canary."""
        ...

    @changes
    def undeploy(self, name: str) -> None: ...

    def logs(self, name: str, lines: int = 50) -> list[str]: ...

    def predict(self, name: str, image: bytes, filename: str = "image") -> Prediction:
        """Send the encoded image (JPEG/PNG bytes, Seldon `binData`); never raises for a bad image:
        the Prediction carries `error` instead. Raises for an unknown or dead deployment."""
        ...


class Cluster(Part, Protocol):
    """Where the platform runs: this host, or the Kubernetes cluster."""

    def context(self) -> dict[str, str]:
        """What the header shows: profile, context or host, versions."""
        ...

    def nodes(self) -> list[Node]: ...

    def workloads(self) -> list[Workload]:
        """The platform's own processes (local) or pods (cluster)."""
        ...


PORTS: dict[str, type] = {"cluster": Cluster, "data": DataStore, "training": Training, "registry": Registry, "serving": Serving}


def changing_methods(port: type) -> frozenset[str]:
    """The methods of a port marked with @changes."""
    return frozenset(name for name, value in vars(port).items() if getattr(value, "changes_platform", False))
