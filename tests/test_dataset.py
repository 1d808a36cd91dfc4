"""Dataset tools: the synthetic sample, labels from base names, the stratified split, Kaggle imports, materialize."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from dlptui.actions.datasets import (
    generate_sample,
    import_kaggle,
    import_sample,
    label_of,
    materialize,
    split,
)
from dlptui.errors import InvalidInput, NotFound
from dlptui.platform.model import DataRef


def digest_folder(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_sample_is_deterministic_labelled_jpegs(tmp_path, sample_dir):
    from PIL import Image

    names = sorted(p.name for p in sample_dir.iterdir())
    assert len(names) == 300
    assert sum(label_of(n) == "cat" for n in names) == 150 and sum(label_of(n) == "dog" for n in names) == 150
    with Image.open(sample_dir / "cat.0.jpg") as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (96, 96), "RGB")
    again = generate_sample(tmp_path / "again", count=300, size=96, seed=0)
    assert digest_folder(again) == digest_folder(sample_dir)
    other = generate_sample(tmp_path / "other", count=4, seed=1)
    assert (other / "cat.0.jpg").read_bytes() != (sample_dir / "cat.0.jpg").read_bytes()


def test_sample_classes_are_separable_but_not_by_one_pixel(sample_dir):
    import numpy as np
    from PIL import Image

    def mean_rgb(label: str) -> np.ndarray:
        return np.stack(
            [np.asarray(Image.open(sample_dir / f"{label}.{i}.jpg"), dtype=float).mean(axis=(0, 1)) for i in range(40)]
        )

    cats, dogs = mean_rgb("cat"), mean_rgb("dog")
    assert not np.allclose(cats.mean(axis=0), dogs.mean(axis=0), atol=5)  # the palettes differ on average
    centre = np.stack([np.asarray(Image.open(sample_dir / f"cat.{i}.jpg"))[48, 48] for i in range(40)])
    assert centre.std(axis=0).max() > 5  # and the same pixel varies between images of one class


@pytest.mark.parametrize(
    "path, label",
    [
        ("cat.1.jpg", "cat"),
        ("/data/train/dog.12.jpg", "dog"),
        ("cats/dog.7.jpg", "dog"),  # a folder named like the other class does not decide
        ("dogs\\cat.3.JPG", "cat"),
        ("catalog.jpg", None),
        ("cat.jpg", None),
        ("1.jpg", None),
        ("cat.1.txt", None),
        ("hotdog.1.jpg", None),
    ],
)
def test_label_comes_from_the_base_name(path, label):
    assert label_of(path) == label


def test_split_is_stratified_seeded_and_complete():
    names = [f"cat.{i}.jpg" for i in range(50)] + [f"dog.{i}.jpg" for i in range(30)] + ["readme.txt"]
    plan = split(names, eval_fraction=0.2, seed=7)
    assert "readme.txt" not in plan and len(plan) == 80
    evals = [n for n, part in plan.items() if part == "eval"]
    assert sum(label_of(n) == "cat" for n in evals) == 10 and sum(label_of(n) == "dog" for n in evals) == 6
    assert split(list(reversed(names)), 0.2, 7) == plan
    assert split(names, 0.2, 8) != plan
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        split(names, 1.5)


def kaggle_folder(root: Path) -> Path:
    """A Kaggle-like folder with traps: a dog inside a folder named "cats", and files that are no images."""
    generate_sample(root / "train", count=20, size=32, seed=3)
    (root / "cats").mkdir()
    (root / "train" / "dog.0.jpg").rename(root / "cats" / "dog.0.jpg")
    (root / "test1").mkdir()
    (root / "test1" / "1.jpg").write_bytes(b"unlabelled")
    (root / "notes.txt").write_text("not an image")
    return root


def test_import_from_a_folder(platform, tmp_path):
    result = import_kaggle(platform.data, kaggle_folder(tmp_path / "kaggle"), eval_fraction=0.2, seed=1)
    assert result.skipped == 2 and result.images == 20
    assert result.counts == {"train": {"cat": 8, "dog": 8}, "eval": {"cat": 2, "dog": 2}}
    files = platform.data.list_files("dogs-and-cats", result.ref.commit, "/", recursive=True)
    paths = {f.path for f in files}
    assert len(paths) == 20 and all(p.startswith(("/train/", "/eval/")) for p in paths)
    dog0 = next(p for p in paths if p.endswith("/dog.0.jpg"))  # labelled dog, though its folder says cats
    assert label_of(dog0) == "dog"
    assert {label_of(p) for p in paths if p.startswith("/eval/")} == {"cat", "dog"}


def test_import_from_a_kaggle_zip_as_tarball(platform, tmp_path):
    source = generate_sample(tmp_path / "imgs", count=10, size=32, seed=5)
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(source.iterdir()):
            z.write(p, f"train/{p.name}")
        z.writestr("train/", "")
        z.writestr("sampleSubmission.csv", "id,label\n")
        z.writestr("../evil/cat.99.jpg", (source / "cat.0.jpg").read_bytes())  # a hostile member path
    result = import_kaggle(platform.data, archive, repo="zipped", tar=True, seed=2)
    assert result.tarball and result.skipped == 1 and result.images == 11
    assert [f.path for f in platform.data.list_files("zipped", "master")] == ["/data.tar.gz"]
    blob = platform.data.get_file("zipped", "master", "/data.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert len(members) == 11 and ("train/cat.99.jpg" in members or "eval/cat.99.jpg" in members)
    assert all(m.startswith(("train/", "eval/")) for m in members)
    assert not (tmp_path.parent / "evil").exists()


def test_reimport_replaces_the_previous_split(platform, sample_dir):
    import_kaggle(platform.data, sample_dir, seed=1)
    second = import_kaggle(platform.data, sample_dir, seed=2)
    files = platform.data.list_files("dogs-and-cats", second.ref.commit, "/", recursive=True)
    names = [f.path.rsplit("/", 1)[1] for f in files]
    assert len(names) == len(set(names)) == 300  # no image in both splits


def test_import_errors_are_one_sentence(platform, tmp_path):
    with pytest.raises(NotFound, match="no file or folder"):
        import_kaggle(platform.data, tmp_path / "missing.zip")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(InvalidInput, match="neither a folder nor a zip"):
        import_kaggle(platform.data, tmp_path / "fake.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no cat or dog images"):
        import_kaggle(platform.data, tmp_path / "empty")


def test_sample_repo_fixture_and_materialize(platform, sample_repo, tmp_path):
    assert sample_repo.repo == "dogs-and-cats" and sample_repo.branch == "master"
    folder = materialize(platform.data, sample_repo, tmp_path / "cache")
    assert folder == tmp_path / "cache" / sample_repo.commit
    train, evals = list((folder / "train").iterdir()), list((folder / "eval").iterdir())
    assert (len(train), len(evals)) == (240, 60)
    assert {label_of(p) for p in evals} == {"cat", "dog"}
    (folder / "marker").write_text("cached")
    assert materialize(platform.data, sample_repo, tmp_path / "cache") == folder
    assert (folder / "marker").exists()  # the second call used the cache
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [sample_repo.commit]  # no leftovers


def test_materialize_unpacks_a_tarball(platform, sample_dir, tmp_path):
    result = import_sample(platform.data, repo="packed", count=12, size=32, tar=True)
    folder = materialize(platform.data, result.ref, tmp_path / "cache")
    assert not (folder / "data.tar.gz").exists()
    assert len(list((folder / "train").iterdir())) + len(list((folder / "eval").iterdir())) == 12


def test_materialize_refuses_a_commit_without_splits(platform, tmp_path):
    platform.data.create_repo("other")
    commit = platform.data.put_files("other", "master", {"/readme.txt": b"hi"})
    with pytest.raises(InvalidInput, match="neither train/ and eval/"):
        materialize(platform.data, DataRef("other", commit.id), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(InvalidInput, match="not a commit id"):
        materialize(platform.data, DataRef("other", "../x"), tmp_path / "cache")
