"""What a prediction saw, in a few numbers: a short projection of the model's embedding and its confidence.

    logits, features = forward(net, batch)            # the one forward pass, split before the head
    for s in summarize(logits, features): s.embedding, s.confidence, s.basis

The embedding is the output of the layer before the head (`DogCatNet.features`, flattened: 64 numbers
for the tiny CNN, 1280 for efficientnet-lite0, 2048 for resnet50), projected onto DIMENSIONS fixed
random directions (a Johnson-Lindenstrauss projection: distances between embeddings are kept within a
few tens of percent, which is what a two-sample test and a nearest-neighbour distance need) and kept as
DIMENSIONS float32 numbers (128 bytes a request). The directions come from numpy's legacy RandomState
with a fixed seed, whose stream numpy keeps frozen, so the model server, its image and the reference
computation (serving/reference.py) project the same way; `basis` names the projection (its shape and
a digest of its numbers) and a reader compares only summaries of the same basis. The confidence is the
top class's softmax probability in float64 (it reaches 1.0 only past a logit margin of about 37).

The same functions run in the model server on every request (after the forward pass it does anyway)
and over the training images when dlptui computes a version's reference. The server keeps a request's
summary in its prediction log (locally) and puts it in the answer's `meta.tags` (`tags`), which is how
Seldon's request logger receives it on a cluster. No dlptui import here.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from functools import lru_cache
from typing import NamedTuple

import numpy as np

DIMENSIONS = 32
SEED = 20261205


class Summary(NamedTuple):
    embedding: bytes  # DIMENSIONS little-endian float32
    confidence: float  # the top class's probability
    basis: str  # the projection's name (basis_of)


@lru_cache(maxsize=8)
def projection(features: int) -> np.ndarray:
    """The (features, DIMENSIONS) float32 matrix: independent N(0, 1/DIMENSIONS) entries."""
    rng = np.random.RandomState(SEED)
    return (rng.standard_normal((features, DIMENSIONS)) / np.sqrt(DIMENSIONS)).astype(np.float32)


@lru_cache(maxsize=8)
def basis_of(features: int) -> str:
    digest = hashlib.sha256(projection(features).tobytes()).hexdigest()[:10]
    return f"rp{DIMENSIONS}x{features}-{digest}"


def forward(net, batch):
    """(logits, features) of one forward pass: the net's `features` then its `head` (what `net(batch)` does);
    features None for a net without that split (it is then called whole and no embedding is kept)."""
    body, head = getattr(net, "features", None), getattr(net, "head", None)
    if body is None or head is None:
        return net(batch), None
    features = body(batch).flatten(1)
    return head(features), features


def summarize(logits, features) -> list[Summary]:
    """One Summary per row of a batch (torch tensors or arrays); an empty embedding where features is None."""
    z = np.asarray(_numpy(logits), dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    probabilities = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    confidence = probabilities.max(axis=1)
    if features is None:
        return [Summary(b"", float(c), "") for c in confidence]
    f = np.asarray(_numpy(features), dtype=np.float32).reshape(len(confidence), -1)
    # einsum's own loops, not BLAS: a BLAS call wakes OpenBLAS's thread pool, whose threads then spin beside torch's
    # and slowed the next forward pass by 5 to 10 ms on two cores (bench/drift.py); this costs about 30 us
    projected = np.einsum("ij,jk->ik", f, projection(f.shape[1])).astype("<f4")
    basis = basis_of(f.shape[1])
    return [Summary(row.tobytes(), float(c), basis) for row, c in zip(projected, confidence)]


def tags(summary: Summary) -> dict:
    """The summary as an answer's Seldon `meta.tags`: what a cluster's request logger receives with each answer."""
    return {"dlptui.embedding": base64.b64encode(summary.embedding).decode(), "dlptui.confidence": summary.confidence,
            "dlptui.basis": summary.basis}


def decode(blob: bytes) -> tuple[float, ...]:
    """The DIMENSIONS numbers of an embedding blob."""
    return struct.unpack(f"<{len(blob) // 4}f", blob)


def _numpy(value):
    detach = getattr(value, "detach", None)
    return detach().float().cpu().numpy() if detach is not None else value
