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


_PLAIN = (str, int, float, bool, type(None))
_FIELDS: dict[type, tuple[str, ...]] = {}  # a dataclass -> its fields' names, looked up once


def to_dict(obj: Any) -> Any:
    """A dataclass (or a list of them) as plain JSON-ready values; enums become their value."""
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    names = _FIELDS.get(kind)
    if names is not None:
        return {name: to_dict(getattr(obj, name)) for name in names}
    if kind is dict:  # a dict nested in it (a config, read from JSON) is JSON already: not walked again
        return {k: v if type(v) in _PLAIN or type(v) is dict else to_dict(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type) and not isinstance(obj, Enum):
        _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(obj))
        return to_dict(obj)
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
    provenance: tuple[CommitRef, ...] = ()  # the commits it was made from, for a pipeline's output


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute inside the repo: "/train/cat.1.jpg"
    type: str  # "file" or "dir"
    size_bytes: int = 0
    hash: str | None = None  # sha256 hex of a file's content


class CommitRef(str):
    """`repo@commit` (or `repo@branch` where a branch is meant, as a pipeline's inputs): the one typed reference to a
    piece of data in the model. It is the string that tables and JSON show, with its parts named (`repo`, `ref`),
    so that no caller splits it again."""

    __slots__ = ()

    def __new__(cls, text: str) -> CommitRef:
        repo, at, ref = str(text).partition("@")
        if not (at and repo and ref):
            raise ValueError(f"{text!r} is not a reference of the form repo@commit")
        return super().__new__(cls, text)

    @classmethod
    def of(cls, repo: str, ref: str) -> CommitRef:
        return cls(f"{repo}@{ref}")

    @property
    def repo(self) -> str:
        return self.partition("@")[0]

    @property
    def ref(self) -> str:
        """The commit id (or the branch)."""
        return self.partition("@")[2]


class PredictionRef(str):
    """`deployment#id`: a logged prediction of a deployment (lineage, feedback), its parts named."""

    __slots__ = ()

    def __new__(cls, text: str) -> PredictionRef:
        deployment, hash_, ident = str(text).partition("#")
        if not (hash_ and deployment and ident):
            raise ValueError(f"{text!r} is not a reference of the form deployment#id")
        return super().__new__(cls, text)

    @classmethod
    def of(cls, deployment: str, ident: int | str) -> PredictionRef:
        return cls(f"{deployment}#{ident}")

    @property
    def deployment(self) -> str:
        return self.partition("#")[0]

    @property
    def id(self) -> str:
        return self.partition("#")[2]


@dataclass(frozen=True)
class DataRef:
    """A pinned piece of data: what an experiment trained on."""

    repo: str
    commit: str
    branch: str | None = None

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit}"


# --- pipelines ---------------------------------------------------------------


class JobState(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    KILLED = "killed"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCESS, JobState.FAILURE, JobState.KILLED)


@dataclass(frozen=True)
class Pipeline:
    """A transform in Pachyderm's spec format: its output repo has the pipeline's name."""

    name: str
    state: str  # "starting", "running", "paused" (stopped), "standby" (pachd's autoscaling), "crashing", "failed"
    inputs: tuple[CommitRef, ...]  # repo@branch of each pfs input
    output: CommitRef  # repo@branch
    created: float
    description: str = ""
    cmd: tuple[str, ...] = ()
    image: str = ""  # recorded; the local profile runs `cmd` on this machine, without a container
    parallelism: int = 1
    datum_tries: int = 3
    last_job: str | None = None
    last_job_state: JobState | None = None
    detail: str = ""  # one sentence on what is wrong (the reason, when crashing or failed), or how it runs
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One run of a pipeline over one set of input commits."""

    id: str
    pipeline: str
    state: JobState
    input_commits: tuple[CommitRef, ...]
    output_commit: CommitRef | None = None  # once the job succeeded
    datums: dict[str, int] = field(default_factory=dict)  # total, processed, skipped, failed
    started: float | None = None
    finished: float | None = None
    reason: str = ""  # one sentence when state is failure or killed

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        import time

        return (self.finished or time.time()) - self.started


@dataclass(frozen=True)
class Datum:
    id: str
    job_id: str
    state: str  # "pending", "running", "success", "skipped", "failed"
    files: tuple[str, ...] = ()  # "repo:/path" of each input file
    tries: int = 0
    reason: str = ""


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
    source_checkpoint: str | None = None  # the checkpoint it started warm from (lineage)
    data_job: str | None = None  # the pipeline job that started it (retrain on a new data commit)
    detail: str | None = None  # one sentence on a state that needs one (queued: what it waits for)

    @property
    def progress(self) -> float:
        return min(1.0, self.batches_done / self.max_batches) if self.max_batches else 0.0


@dataclass(frozen=True)
class Trial:
    """One trial of an experiment's search (a `single` searcher has one)."""

    id: str
    experiment_id: str
    state: ExperimentState
    batches_done: int = 0
    hparams: dict[str, Any] = field(default_factory=dict)
    max_batches: int = 0  # the batches it is (or was last) asked to reach: its rung's length in ASHA
    best_metric: float | None = None  # its best validation value of the searcher metric
    best_checkpoint: str | None = None  # uuid of its best checkpoint by the searcher metric
    stopped_early: bool = False  # ASHA did not promote it
    error: str | None = None


@dataclass(frozen=True)
class MetricPoint:
    batch: int  # batches trained when the value was reported
    group: str  # "training" or "validation"
    name: str  # "loss", "validation_loss", "accuracy"
    value: float
    time: float
    trial_id: str | None = None  # which trial of the experiment reported it


@dataclass(frozen=True)
class Checkpoint:
    uuid: str
    experiment_id: str
    trial_id: str
    batch: int
    created: float
    location: str  # a local folder or a storage URL
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics at that batch


@dataclass(frozen=True)
class CheckpointStorage:
    """Where a checkpoint's files lie, in the terms of the storage that holds them (Determined's
    `checkpoint_storage` of the experiment), with no credential: what a reader that is not the Determined
    master needs to find them. `kind` is "gcs", "s3" or "shared_fs"; `bucket` and `prefix` name a bucket's
    folder (gcs, s3; `endpoint_url` an S3-compatible service); `host_path` is the folder every node mounts
    and `storage_path` the folder below it (shared_fs). The checkpoint is the folder `uuid` below all that."""

    kind: str
    uuid: str
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    host_path: str = ""
    storage_path: str = ""

    @property
    def url(self) -> str:
        """gs://bucket/prefix/uuid, s3://bucket/prefix/uuid, or the folder host_path/storage_path/uuid."""
        if self.kind in ("gcs", "s3"):
            scheme = "gs" if self.kind == "gcs" else "s3"
            return f"{scheme}://{self.bucket}/" + "/".join(p for p in (*self.prefix.split("/"), self.uuid) if p)
        return "/" + "/".join(p for p in (*self.host_path.split("/"), *self.storage_path.split("/"), self.uuid) if p)


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
    checkpoint_storage: CheckpointStorage | None = None  # on the cluster: what a serving pod reads, without the master

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
    shadow_version: int | None = None  # gets a copy of every request; its answers are never returned
    alias: str | None = None  # the registry alias it was deployed by (e.g. production), if it was
    gate: dict | None = None  # the policy its canaries are gated by (analysis.Policy.to_dict()), if it carries one


@dataclass(frozen=True)
class VersionFigures:
    """How one version behind a deployment does: what `deployment NAME --json` gives as `versions`."""

    version: int
    role: str  # "primary", "canary" or "shadow"
    traffic: int  # percent of the requests (a shadow sees all of them, answers none)
    requests: int | None = None  # None: the profile cannot count them (a sentence in `note`)
    errors: int | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    labels: dict[str, int] = field(default_factory=dict)  # answers per label
    agreement: float | None = None  # a shadow: the share of mirrored requests where it agreed with the primary
    note: str = ""


@dataclass(frozen=True)
class LoggedPrediction:
    """One prediction through a deployment, as its prediction log keeps it."""

    id: int
    deployment: str
    time: float
    model: str
    version: int
    role: str  # "primary", "canary" or "shadow"
    request_id: str
    input_sha256: str
    input_bytes: int
    label: str | None
    probabilities: dict[str, float]
    latency_ms: float
    status: int  # the HTTP status answered
    puid: str = ""  # the client's own Seldon meta.puid, when it sent one
    image_sha256: str = ""  # of the image's own bytes (a binData request), "" otherwise
    truth: str | None = None  # the right label, where feedback came back
    reward: float | None = None  # the reward feedback gave
    feedback_time: float | None = None  # when the (last) feedback came

    @property
    def right(self) -> bool | None:
        """Whether the answer was right, where feedback told the truth."""
        return None if self.truth is None or self.label is None else self.truth == self.label


@dataclass(frozen=True)
class Feedback:
    """Ground truth for one logged prediction: `prediction` names it (its id in the log, the client's Seldon
    puid, or the sha256 of its image: the newest answer to it); `label` the right answer and/or `reward`."""

    prediction: str
    label: str | None = None
    reward: float | None = None


@dataclass(frozen=True)
class KeptInputs:
    """Whether a deployment keeps the images of its last predictions (off by default), and what it holds now."""

    deployment: str
    keep: int  # the images of the last `keep` predictions (an image sent again counts once); 0: off
    cap_bytes: int  # the most they take in all
    images: int = 0  # held now
    bytes: int = 0

    @property
    def on(self) -> bool:
        return self.keep > 0


@dataclass(frozen=True)
class PredictionSummary:
    """What an answered prediction looked like to its model (serving/embedding_summary.py), never the image: a
    projection of its embedding, the top class's probability, and the projection's name."""

    id: int
    time: float
    version: int
    role: str
    confidence: float
    embedding: tuple[float, ...]
    basis: str


@dataclass(frozen=True)
class DeploymentChange:
    """One entry of a deployment's history: who changed it, how, and the whole routing it left (the primary moved
    from `from_version` to `to_version`, or stayed; the canary with its share and the shadow after the change)."""

    time: float
    change: str  # "deployed", "updated", "promoted", "rolled back", "canary", "canary removed", "shadow", "shadow removed"
    by: str
    model: str
    from_version: int | None
    to_version: int
    canary: int | None = None
    share: int = 0
    shadow: int | None = None
    reason: str = ""  # an automatic change (the gate's): why, with the numbers behind it; "" for a person's change
    numbers: dict | None = None  # an automatic change: what it was decided on (the judgement, the requests)


@dataclass(frozen=True)
class ArmFigures:
    """One version's raw numbers since its comparison started, what its verdicts are judged on (dlptui.analysis):
    the requests it answered and how many with an error status; the latencies of its answered requests, as samples
    (the local prediction log) or a histogram (`bounds_ms`, the buckets' upper edges, and `bucket_counts`); and,
    where ground truth came back, its right answers among the predictions that got feedback."""

    version: int
    role: str
    requests: int
    errors: int
    latencies_ms: tuple[float, ...] = ()
    bounds_ms: tuple[float, ...] = ()
    bucket_counts: tuple[int, ...] = ()
    right: int = 0
    judged: int = 0  # predictions with feedback


@dataclass(frozen=True)
class Disagreement:
    """One request a shadow answered otherwise than the primary: both logged predictions' ids and labels."""

    primary_id: int
    primary_label: str | None
    shadow_id: int
    shadow_label: str | None


@dataclass(frozen=True)
class Comparison:
    """A canary or a shadow and its primary over the same period, since it started (`since`, the history entry's
    time): both versions' numbers; for a shadow, its answers paired with the primary's (by request)."""

    kind: str  # "canary" or "shadow"
    since: float
    primary: ArmFigures
    other: ArmFigures
    share: int = 0  # a canary's traffic, percent
    agreed: int = 0  # a shadow: paired requests where both gave the same label
    paired: int = 0
    note: str = ""  # what the profile cannot count for it, in one sentence (a shadow's pairs on the cluster)
    disagreements: tuple[Disagreement, ...] = ()  # a shadow: the latest requests it answered otherwise, newest first


@dataclass(frozen=True)
class Prediction:
    image: str
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None
    version: int | None = None  # which version answered (a canary shows here)
    error: str | None = None
    id: str | None = None  # the prediction's id for feedback (Seldon's meta.puid: the prediction log's id locally)


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
class BackgroundProcess:
    """A process of the local platform that runs without the console (`dlptui status`, `dlptui stop`): one row
    per process that no other of them started, with the ones it started counted in."""

    pid: int
    part: str  # "pipelines", "training", "serving"
    serves: str  # what it is there for, in words: "the runner of pipelines a, b", "Envoy of deployment d"
    started: float | None = None
    processes: int = 1  # it and the processes below it
    memory_bytes: int | None = None  # resident, it and those below it


@dataclass(frozen=True)
class Service:
    """One of the platform's five parts, as the cluster screen and `status` show it."""

    part: str  # "cluster", "data", "training", "registry", "serving"
    backend: str  # "embedded store", "pachd", "Determined master", "seldon-core-microservice", ...
    reachable: bool
    detail: str = ""  # the reason when not reachable, else an address or count
    version: str | None = None
    endpoint: str | None = None
