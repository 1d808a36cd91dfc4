"""The in-memory state of the pachd stand-in (tests only): repos, commits as full file trees.

The fixed state: the repo `dogs-and-cats` with one finished commit, DATA_COMMIT, on `master`,
holding four small real JPEGs (train/cat.1.jpg, train/dog.1.jpg, eval/cat.2.jpg, eval/dog.2.jpg).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

from google.protobuf import timestamp_pb2

from tests.standins import DATA_COMMIT, DATA_REPO


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
    provenance: list[tuple[str, str]] = field(default_factory=list)  # (repo, commit id) it was made from


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
