"""The in-memory state of the pachd stand-in (tests only): repos, commits as full file trees, and the
small facts of pachd 2.x's messages and auth that both of its servicers use.

The fixed state: the repo `dogs-and-cats` with one finished commit, DATA_COMMIT, on `master`,
holding four small real JPEGs (train/cat.1.jpg, train/dog.1.jpg, eval/cat.2.jpg, eval/dog.2.jpg).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import grpc
from google.protobuf import timestamp_pb2

from tests.standins import DATA_COMMIT, DATA_REPO

PROJECT = "default"  # every repo and pipeline lives in pachd's default project (projects exist since 2.5)
USER, AUTO = 1, 2  # pfs_pb2.OriginKind: a commit someone started, and one pachd made (a job's output, an empty commit)
# pachd's auth interceptor (src/auth/auth.go): no token at all, and a token it does not know
NOT_SIGNED_IN = "no authentication token (try logging in)"
BAD_TOKEN = "provided auth token is corrupted or has expired (try logging in again)"


class Abort(Exception):
    """A gRPC error with pachd's code and message; the servicers turn it into the call's status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


@dataclass
class StandinCommit:
    id: str
    repo: str
    branch: str
    parent: str | None
    description: str
    started: float
    files: dict[str, bytes]
    finished: float | None = None
    error: str = ""
    finishing: float | None = None  # FinishCommit was called; `finished` follows asynchronously, as on pachd 2.x
    provenance: list[tuple[str, str]] = field(default_factory=list)  # (user repo, commit id) it was made from
    origin: int = USER
    spec: str | None = None  # a job's output commit: the id of the pipeline's spec commit, also in its provenance


@dataclass
class StandinRepo:
    name: str
    description: str
    created: float
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head commit id
    commits: dict[str, StandinCommit] = field(default_factory=dict)  # in creation order


def timestamp(t: float | None) -> timestamp_pb2.Timestamp | None:
    if t is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(t * 1e9))
    return stamp


def check_token(context, required: str | None) -> None:
    """pachd's interceptor with auth on: every PFS and PPS call needs a token it knows (`authn-token`)."""
    if not required:
        return
    given = dict(context.invocation_metadata()).get("authn-token")
    if not given:
        raise Abort(grpc.StatusCode.UNAUTHENTICATED, NOT_SIGNED_IN)
    if given != required:
        raise Abort(grpc.StatusCode.UNAUTHENTICATED, BAD_TOKEN)


def sample_image(label: str, n: int) -> bytes:
    """A small real JPEG: orange-ish for a cat, brown-ish for a dog."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (230, 140, 40 + n) if label == "cat" else (120, 80, 40 + n)).save(out, "JPEG")
    return out.getvalue()


def clean_path(path: str) -> str:
    return "/" + "/".join(p for p in path.split("/") if p)


def seed() -> dict[str, StandinRepo]:
    """The fixed repos."""
    t0 = time.time() - 7200
    repo = StandinRepo(DATA_REPO, "Dogs-vs-Cats images split into train/ and eval/", t0)
    files = {
        f"/{split}/{label}.{n}.jpg": sample_image(label, n)
        for split, n in (("train", 1), ("eval", 2))
        for label in ("cat", "dog")
    }
    repo.commits[DATA_COMMIT] = StandinCommit(DATA_COMMIT, DATA_REPO, "master", None, "sample", t0, files, finished=t0 + 1)
    repo.branches["master"] = DATA_COMMIT
    return {DATA_REPO: repo}
