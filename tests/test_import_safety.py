"""Puts and imports take nothing from outside their source (links), and an archive cannot fill the disk."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from dlptui.actions import datasets
from dlptui.errors import InvalidInput
from dlptui.platform.rules import collect


def test_a_link_out_of_a_folder_is_refused_on_put(tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cat.2.jpg").write_bytes(b"x")
    (folder / "cat.1.jpg").symlink_to(secret)
    with pytest.raises(InvalidInput) as refused:
        collect([folder], "/")
    assert "cat.1.jpg is a link to" in str(refused.value) and "outside" in str(refused.value)


def test_a_link_inside_the_folder_is_kept(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cat.2.jpg").write_bytes(b"x")
    (folder / "cat.3.jpg").symlink_to(folder / "cat.2.jpg")
    assert sorted(collect([folder], "/")) == ["/images/cat.2.jpg", "/images/cat.3.jpg"]


def test_a_link_out_of_a_kaggle_folder_is_refused_on_import(tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "dog.1.jpg").symlink_to(secret)
    with pytest.raises(InvalidInput, match="dog.1.jpg is a link to"):
        datasets.find_images(folder)


def test_a_zip_member_that_unpacks_too_big_is_refused_by_what_it_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_MEMBER_BYTES", 1000)
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("train/cat.1.jpg", b"\0" * 100)
        z.writestr("train/cat.2.jpg", b"\0" * 50_000)  # compresses to a few bytes
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(InvalidInput) as refused:
        datasets._unzip_images(archive, into)
    assert "train/cat.2.jpg" in str(refused.value) and "too big" in str(refused.value)
    assert (into / "cat.2.jpg").stat().st_size == 1001  # it stopped one byte past the cap


def test_a_zip_that_unpacks_past_the_total_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_ARCHIVE_BYTES", 250)
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"train/dog.{i}.jpg", b"\0" * 100)
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(InvalidInput, match="unpacks to more than .* \\(reached at train/dog.2.jpg\\)"):
        datasets._unzip_images(archive, into)


def test_a_tarball_too_big_is_not_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_MEMBER_BYTES", 1000)
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"\0" * 5000
        info = tarfile.TarInfo("train/cat.1.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(InvalidInput, match="train/cat.1.jpg is over"):
        datasets._unpack(archive, into)
    assert list(into.iterdir()) == []


def _tar(path, members):
    """(name, bytes) for a file, (name, None, target) for a symlink."""
    with tarfile.open(path, "w:gz") as tar:
        for name, body, *link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link[0]
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return path


@pytest.mark.parametrize(
    "members, words",
    [
        ([("eval/cat.1.jpg", None, "../train/dog.1.jpg")], "eval/cat.1.jpg is a link or a device"),  # even inside
        ([("/train/cat.1.jpg", b"x")], "would land outside its folder"),
        ([("train/../../x.jpg", b"x")], "would land outside its folder"),
        ([(f"train/cat.{i}.jpg", b"x") for i in range(6)], "it holds more than 5 files"),
    ],
)
def test_a_tarball_with_a_link_a_path_out_or_too_many_members_is_not_unpacked(tmp_path, monkeypatch, members, words):
    monkeypatch.setattr(datasets, "MAX_MEMBERS", 5)
    archive = _tar(tmp_path / "data.tar.gz", members)
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(InvalidInput, match=words) as refused:
        datasets._unpack(archive, into)
    assert str(refused.value).startswith("The archive data.tar.gz in the commit is not unpacked")
    assert not (tmp_path / "x.jpg").exists()


def test_a_zip_with_too_many_members_is_refused_before_any_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_MEMBERS", 3)
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(4):
            z.writestr(f"train/cat.{i}.jpg", b"x")
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(InvalidInput, match="holds more than 3 files; nothing was imported"):
        datasets._unzip_images(archive, into)
    assert list(into.iterdir()) == []
