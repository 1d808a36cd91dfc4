"""The nouns of the platform: plain dataclasses, the same for every profile.

Times are seconds since the epoch (floats) and sizes are bytes, so that every
object turns into JSON with `to_dict` and back without a custom encoder. The
console and the CLI show these objects; the parts in `local/` and the cluster
adapters produce them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ExperimentState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ERROR = "error"
    KILLED = "killed"

    @property
    def terminal(self) -> bool:
        return self in (ExperimentState.COMPLETED, ExperimentState.ERROR, ExperimentState.KILLED)


class DeploymentState(str, Enum):
    STARTING = "starting"
    AVAILABLE = "available"
    FAILED = "failed"
    STOPPED = "stopped"


ALIASES = ("staging", "production")
CLASSES = ("cat", "dog")  # the reference model's label order: index 0 is cat, 1 is dog


def to_dict(obj: Any) -> Any:
    """A dataclass (or a list of them) as plain JSON-ready values; enums become their value."""
    if isinstance(obj, list):
        return [to_dict(o) for o in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [to_dict(o) for o in obj]
    return obj


# --- data ------------------------------------------------------------------


@dataclass(frozen=True)
class Repo:
    name: str
    created: float
    size_bytes: int = 0  # of the head of the default branch
    commits: int = 0
    last_change: float | None = None
    branches: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Commit:
    id: str
    repo: str
    branch: str
    parent: str | None
    message: str
    created: float
    size_bytes: int = 0  # total size of the files in the commit's tree
    files: int = 0


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute inside the repo: "/train/cat.1.jpg"
    type: str  # "file" or "dir"
    size_bytes: int = 0
    hash: str | None = None  # sha256 hex of a file's content


@dataclass(frozen=True)
class DataRef:
    """A pinned piece of data: what an experiment trained on."""

    repo: str
    commit: str
    branch: str | None = None

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit}"


# --- training ----------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    state: ExperimentState
    created: float
    data_repo: str | None = None
    data_commit: str | None = None
    ended: float | None = None
    batches_done: int = 0
    max_batches: int = 0
    best_accuracy: float | None = None
    best_validation_loss: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # one sentence when state is ERROR

    @property
    def progress(self) -> float:
        return min(1.0, self.batches_done / self.max_batches) if self.max_batches else 0.0


@dataclass(frozen=True)
class Trial:
    id: str
    experiment_id: str
    state: ExperimentState
    batches_done: int = 0
    hparams: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricPoint:
    batch: int  # batches trained when the value was reported
    group: str  # "training" or "validation"
    name: str  # "loss", "validation_loss", "accuracy"
    value: float
    time: float


@dataclass(frozen=True)
class Checkpoint:
    uuid: str
    experiment_id: str
    trial_id: str
    batch: int
    created: float
    location: str  # a local folder or a storage URL
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics at that batch


# --- registry ----------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    name: str
    created: float
    description: str = ""
    versions: int = 0
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    checkpoint_uuid: str
    created: float
    experiment_id: str | None = None
    data_repo: str | None = None
    data_commit: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    checkpoint_location: str | None = None
    notes: str = ""

    def __str__(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Promotion:
    """One entry of a model's audit history: an alias moved."""

    model: str
    alias: str
    from_version: int | None
    to_version: int
    who: str
    time: float


# --- serving -----------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    name: str
    model: str
    version: int
    state: DeploymentState
    endpoint: str | None = None  # the URL a prediction is POSTed to
    replicas: int = 1
    canary_version: int | None = None
    canary_traffic: int = 0  # percent of requests sent to the canary
    created: float | None = None
    detail: str = ""  # one sentence on why it is not available
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prediction:
    image: str
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None
    version: int | None = None  # which version answered (a canary shows here)
    error: str | None = None


# --- cluster -----------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str
    ready: bool
    cpu_capacity: float  # cores
    cpu_allocatable: float
    cpu_used: float | None = None  # cores busy, where known
    memory_capacity: int = 0  # bytes
    memory_allocatable: int = 0
    memory_used: int | None = None
    gpu_capacity: int = 0
    gpu_allocatable: int = 0
    gpu_used: int | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """A process of the local platform or a pod of the cluster's."""

    name: str
    namespace: str  # the part it belongs to on the local profile
    phase: str  # "Running", "Pending", "Failed", ...
    restarts: int = 0
    node: str | None = None
    started: float | None = None
    cpu_percent: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Service:
    """One of the platform's five parts, as the cluster screen and `status` show it."""

    part: str  # "cluster", "data", "training", "registry", "serving"
    backend: str  # "embedded store", "pachd", "Determined master", "seldon-core-microservice", ...
    reachable: bool
    detail: str = ""  # the reason when not reachable, else an address or count
    version: str | None = None
    endpoint: str | None = None
