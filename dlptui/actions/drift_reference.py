"""A version's drift reference, from its own training data: version -> checkpoint -> experiment -> data commit.

    made = compute(platform, "dogcat-deploy")     # each version it serves; or "dogcat-model@3"
    found = stored(platform, version)              # None before it is computed
    start_on_deploy(platform, version)             # in the background, when a version is deployed (local profile)

The images are a sample of the data commit the version's experiment trained on: at most SAMPLE of its JPEG and PNG
files, its held-out split's (`eval/`) first, then its training images', drawn at random with the commit's id as the
seed (the same commit gives the same sample). The drift tests compare a window with the held-out images alone when
there are at least MIN_HELD_OUT of them: the optimizer never saw those, so the model's confidences on them are those
it gives new images of the same kind, while it is surer of its own training images (with those in the reference,
bench/drift.py saw 1.5 to 4 % of in-distribution windows called drifting, all by the confidences' test; 1 % without).
The outlier threshold uses all of them: more points cover the training images' embeddings better (with the 60
held-out images alone its precision on a 5 % mix of noise fell from 97 % to 73 %). The demo sample's eval split has 60
images; Kaggle's, 5,000.
Why at most 300: 300 reference points and a window of 200 keep one drift test (499 permutations of 500 points) at 14
to 18 ms on this machine's CPU; the outlier threshold, the 99th percentile of 300 leave-one-out distances, rests on
the 3 largest; and the forward pass over 300 images took 21 to 47 s with efficientnet-lite0 on the busy two cores
(about 5 s with the tiny CNN), once per version. More images would tighten the threshold and cost time linearly (the
forward pass) to quadratically (the permutation test).
"""

from __future__ import annotations

import random

from dlptui.actions import refs
from dlptui.errors import NotAvailable, NotFound, PlatformError
from dlptui.platform import references
from dlptui.platform.model import Checkpoint, ModelVersion

SAMPLE = 300
MIN_HELD_OUT = 50
HELD_OUT = "eval"  # the trial's held-out split (trial/data.py SPLITS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def versions_of(platform, target: str) -> list[ModelVersion]:
    """`MODEL@VERSION` (a number, an alias or latest), or a deployment: the versions it serves (primary, canary, shadow)."""
    if "@" in target:
        model, ref = refs.model_ref(target)
        return [platform.registry.get_version(model, ref)]
    deployment = platform.serving.get_deployment(target)
    numbers = [deployment.version, deployment.canary_version, deployment.shadow_version]
    return [platform.registry.get_version(deployment.model, n) for n in dict.fromkeys(n for n in numbers if n is not None)]


def training_data(platform, version: ModelVersion) -> tuple[Checkpoint | None, str, str]:
    """(the checkpoint, repo, commit id) the version was trained on, through its lineage; one sentence where the
    version records no data commit, or the commit is no longer in the data store."""
    checkpoint, experiment = None, None
    try:
        checkpoint = platform.training.checkpoint(version.checkpoint_uuid)
        experiment = platform.training.get_experiment(checkpoint.experiment_id)
    except PlatformError:
        pass  # the registry's own record of the data commit may still say it
    repo = (experiment.data_repo if experiment else None) or version.data_repo
    commit = (experiment.data_commit if experiment else None) or version.data_commit
    if not (repo and commit):
        raise NotAvailable(f"{version} records no training data commit (its checkpoint and experiment name none), so it has "
                           "no drift reference; deploy a version trained by `dlptui train` on a data commit.")
    try:
        found = platform.data.inspect_commit(repo, commit)
    except NotFound:
        raise NotFound(f"The training data of {version}, {repo}@{commit[:12]}, is no longer in the data store, so its drift "
                       "reference cannot be computed; put that data back, or retrain on a commit that exists.") from None
    return checkpoint, repo, found.id


def sample(platform, repo: str, commit: str, size: int = SAMPLE) -> tuple[dict[str, bytes], set[str]]:
    """At most `size` image files of the commit (path -> bytes), drawn with the commit's id as the seed: the held-out
    split's (`eval/`) first, then the others'; and the paths of those held out."""
    files = [f.path for f in platform.data.list_files(repo, commit, "/", recursive=True)
             if f.type == "file" and f.path.lower().endswith(IMAGE_SUFFIXES)]
    if not files:
        raise NotAvailable(f"{repo}@{commit[:12]} holds no JPEG or PNG files to take a drift reference from (a data.tar.gz "
                           "is not unpacked for it); train on the split's images (`dlptui data import-kaggle`).")
    draw = random.Random(commit)
    held_out = sorted(f for f in files if HELD_OUT in f.split("/")[:-1])
    others = sorted(set(files) - set(held_out))
    chosen = draw.sample(held_out, min(size, len(held_out)))
    chosen += draw.sample(others, min(size - len(chosen), len(others)))
    return {path: platform.data.get_file(repo, commit, path) for path in chosen}, set(held_out) & set(chosen)


def compute_one(platform, version: ModelVersion) -> references.StoredReference:
    checkpoint, repo, commit = training_data(platform, version)
    images, held_out = sample(platform, repo, commit)
    return references.compute(platform.config, version, checkpoint, images, f"{repo}@{commit}", held_out)


def drift_part(reference: references.StoredReference) -> tuple:
    """(embeddings, confidences) the drift tests compare a window with: the held-out images when there are at least
    MIN_HELD_OUT of them, else all the reference's images."""
    mask = reference.held_out
    if mask is not None and int(mask.sum()) >= MIN_HELD_OUT:
        return reference.embeddings[mask], reference.confidences[mask]
    return reference.embeddings, reference.confidences


def compute(platform, target: str) -> list[references.StoredReference]:
    """The reference of each version `target` names (a deployment's versions, or MODEL@VERSION), computed again."""
    return [compute_one(platform, version) for version in versions_of(platform, target)]


def stored(platform, version: ModelVersion) -> references.StoredReference | None:
    return references.load(platform.config, version)


def computing(platform, version: ModelVersion) -> bool:
    return references.computing(platform.config, version)


def start_on_deploy(platform, version: ModelVersion) -> bool:
    """Start computing the version's reference in the background (local profile, unless the configuration turns it
    off, or it is kept or being computed already); never fails a deployment."""
    if not platform.config.drift_reference_on_deploy or not (version.data_commit or version.experiment_id):
        return False
    try:
        return references.start_background(platform.config, version)
    except (PlatformError, OSError):
        return False
