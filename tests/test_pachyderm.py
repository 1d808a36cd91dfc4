"""The Pachyderm adapter through python-pachyderm against the pachd stand-in (tests/standins/pachd.py)."""

from __future__ import annotations

import json
import uuid

import pytest

from dlptui.config import load_config
from dlptui.platform import Platform
from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError, Unreachable
from dlptui.platform.cluster.pachyderm_data import PachydermDataStore
from tests.standins import DATA_COMMIT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def store(home, monkeypatch, pachd_standin):
    monkeypatch.setenv("PACHD_ADDRESS", pachd_standin)
    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    platform = Platform(load_config(profile="cluster"))
    yield platform.data
    platform.close()


def fresh(prefix: str = "repo") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_cluster_profile_builds_the_pachyderm_store(store):
    assert isinstance(store, PachydermDataStore)


def test_health_reports_the_standin_and_its_version(store, pachd_standin):
    service = store.health()
    assert service.reachable, service.detail
    assert service.backend == "pachd"
    assert service.version == "2.12.2-standin"
    assert service.detail == pachd_standin.removeprefix("grpc://")


def test_repo_put_list_get_round_trip(store, tmp_path):
    name = fresh()
    created = store.create_repo(name, "dogs and cats")
    assert (created.name, created.description, created.commits) == (name, "dogs and cats", 0)

    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "dog.1.jpg").write_bytes(b"D" * 10)
    (tmp_path / "eval" / "cat.1.jpg").write_bytes(b"C" * 20)
    single = tmp_path / "readme.txt"
    single.write_text("hello")
    seen = []
    first = store.put_files(
        name,
        "master",
        {"/train/cat.1.jpg": b"cat-bytes", "readme.txt": single, "/eval": tmp_path / "eval"},
        message="first import",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert first.repo == name and first.branch == "master" and first.parent is None
    assert first.message == "first import"
    assert (first.size_bytes, first.files) == (9 + 5 + 30, 4)
    assert seen[-1] == (44, 44) and all(d <= t for d, t in seen)

    assert [e.path for e in store.list_files(name, "master")] == ["/eval", "/readme.txt", "/train"]
    walked = store.list_files(name, "master", recursive=True)
    assert [(e.path, e.type, e.size_bytes) for e in walked] == [
        ("/eval/cat.1.jpg", "file", 20),
        ("/eval/dog.1.jpg", "file", 10),
        ("/readme.txt", "file", 5),
        ("/train/cat.1.jpg", "file", 9),
    ]
    assert [(e.path, e.size_bytes) for e in store.list_files(name, "master", "/eval")] == [("/eval/cat.1.jpg", 20), ("/eval/dog.1.jpg", 10)]
    assert [(e.type, e.size_bytes) for e in store.list_files(name, "master") if e.path == "/eval"] == [("dir", 30)]
    assert store.get_file(name, "master", "/eval/cat.1.jpg") == b"C" * 20
    assert store.get_file(name, first.id, "readme.txt") == b"hello"

    second = store.put_files(name, "master", {"/readme.txt": b"bye"}, message="second")
    assert second.parent == first.id
    assert store.get_file(name, "master", "/readme.txt") == b"bye"
    assert store.get_file(name, first.id, "/readme.txt") == b"hello"  # the old commit is unchanged

    third = store.delete_files(name, "master", ["/eval"], message="drop eval")
    assert [e.path for e in store.list_files(name, third.id)] == ["/readme.txt", "/train"]

    commits = store.list_commits(name, "master")
    assert [(c.id, c.files) for c in commits] == [(third.id, 2), (second.id, 4), (first.id, 4)]
    assert [c.id for c in store.list_commits(name, limit=2)] == [third.id, second.id]
    repo = store.inspect_repo(name)
    assert (repo.commits, repo.branches, repo.size_bytes) == (3, ("master",), 9 + 3)
    assert name in [r.name for r in store.list_repos()]
    assert store.list_branches(name) == ["master"]


def test_refs_resolve_by_branch_full_id_and_prefix(store):
    name = fresh()
    store.create_repo(name)
    commit = store.put_files(name, "master", {"/a": b"1"})
    pinned = store.resolve(name, "master")
    assert (pinned.repo, pinned.commit, pinned.branch) == (name, commit.id, "master")
    assert store.inspect_commit(name, commit.id).id == commit.id
    assert store.inspect_commit(name, commit.id[:8]).id == commit.id
    with pytest.raises(NotFound, match="no branch or commit 'nope'"):
        store.resolve(name, "nope")


def test_mistakes_give_one_sentence(store):
    name = fresh()
    with pytest.raises(NotFound, match=f"There is no repo '{name}' on pachd"):
        store.inspect_repo(name)
    with pytest.raises(NotFound):
        store.delete_repo(name)
    store.create_repo(name)
    with pytest.raises(Conflict, match="already exists"):
        store.create_repo(name)
    with pytest.raises(InvalidInput, match="not a valid repo name"):
        store.create_repo("bad name!")
    store.put_files(name, "master", {"/a": b"1"})
    with pytest.raises(NotFound, match="file '/missing'"):
        store.get_file(name, "master", "/missing")
    with pytest.raises(NotFound, match="file '/missing'"):
        store.delete_files(name, "master", ["/missing"])
    with pytest.raises(InvalidInput, match="contains '..'"):
        store.get_file(name, "master", "/../etc/passwd")
    with pytest.raises(NotFound, match="branch 'dev'"):
        store.list_commits(name, "dev")
    with pytest.raises(NotFound, match=f"There is no repo '{name}-gone' on pachd"):
        store.list_files(f"{name}-gone", "master")
    with pytest.raises(NotFound, match=f"There is no commit '{'f' * 32}'"):
        store.inspect_commit(name, "f" * 32)


def test_a_missing_local_file_starts_no_commit(store, tmp_path):
    name = fresh()
    store.create_repo(name)
    with pytest.raises(NotFound, match="There is no file or folder .*absent.jpg on this machine"):
        store.put_files(name, "master", {"/x": tmp_path / "absent.jpg"})
    assert store.list_commits(name) == []


def test_a_failed_upload_leaves_no_commit_behind(store):
    name = fresh()
    store.create_repo(name)
    kept = store.put_files(name, "master", {"/keep": b"k"})

    def interrupt(done: int, total: int) -> None:
        raise RuntimeError("the disk went away")

    with pytest.raises(PlatformError):
        store.put_files(name, "master", {"/a": b"1" * 10, "/b": b"2" * 10}, progress=interrupt)
    assert [c.id for c in store.list_commits(name, "master")] == [kept.id]
    assert [e.path for e in store.list_files(name, "master")] == ["/keep"]


def test_delete_repo(store):
    name = fresh()
    store.create_repo(name)
    store.delete_repo(name)
    assert name not in [r.name for r in store.list_repos()]


def test_the_active_pachctl_context_is_used_without_pachd_address(home, monkeypatch, tmp_path, pachd_standin):
    config_file = tmp_path / "pachctl.json"
    context = {"pachd_address": pachd_standin}
    config_file.write_text(json.dumps({"v2": {"active_context": "test", "contexts": {"test": context}}}))
    monkeypatch.delenv("PACHD_ADDRESS", raising=False)
    monkeypatch.setenv("PACH_CONFIG", str(config_file))
    store = PachydermDataStore(load_config(profile="cluster"))
    assert store.health().reachable


def test_no_address_at_all_says_what_to_set(home, monkeypatch, tmp_path):
    monkeypatch.delenv("PACHD_ADDRESS", raising=False)
    monkeypatch.delenv("PACH_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    store = PachydermDataStore(load_config(profile="cluster"))
    with pytest.raises(Unreachable, match="set PACHD_ADDRESS"):
        store.list_repos()


def test_a_dead_pachd_is_one_unreachable_sentence(home, monkeypatch, dead_address):
    monkeypatch.setenv("PACHD_ADDRESS", f"grpc://{dead_address}")
    store = PachydermDataStore(load_config(profile="cluster"))
    with pytest.raises(Unreachable) as caught:
        store.list_repos()
    message = str(caught.value)
    assert message == f"pachd at {dead_address} does not answer; check PACHD_ADDRESS (or run `pachctl port-forward`) and retry."
    service = store.health()
    assert not service.reachable and service.detail == message


def test_a_hung_pachd_is_unreachable_after_the_configured_timeout(short_timeout_config, monkeypatch, silent_address):
    monkeypatch.setenv("PACHD_ADDRESS", f"grpc://{silent_address}")
    store = PachydermDataStore(load_config(profile="cluster"))
    assert store.config.timeout_s == 1.0
    with pytest.raises(Unreachable, match=f"pachd at {silent_address} does not answer"):
        store.list_repos()


def test_the_fixed_sample_commit_is_there(store):
    pinned = store.resolve("dogs-and-cats", "master")
    assert pinned.commit == DATA_COMMIT
    names = [e.path for e in store.list_files("dogs-and-cats", DATA_COMMIT, recursive=True)]
    assert names == ["/eval/cat.2.jpg", "/eval/dog.2.jpg", "/train/cat.1.jpg", "/train/dog.1.jpg"]
    assert store.get_file("dogs-and-cats", DATA_COMMIT[:10], "/train/cat.1.jpg")[:2] == b"\xff\xd8"  # a JPEG


def test_the_kaggle_import_and_materialize_work_on_pachd(store, tmp_path):
    from dlptui.actions.datasets import import_kaggle, materialize

    images = tmp_path / "kaggle"
    images.mkdir()
    for n in range(1, 6):
        for label in ("cat", "dog"):
            (images / f"{label}.{n}.jpg").write_bytes(f"{label}{n}".encode())
    name = fresh("kaggle")
    first = import_kaggle(store, images, repo=name)
    again = import_kaggle(store, images, repo=name)  # replaces the split in a new commit
    assert store.inspect_commit(name, again.ref.commit).parent is not None
    folder = materialize(store, first.ref, tmp_path / "data")
    materialized = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.jpg")}
    assert len(materialized) == 10 and {k.split("/")[0] for k in materialized} == {"train", "eval"}
    assert all(v == store.get_file(name, first.ref.commit, "/" + k) for k, v in materialized.items())


def test_pachd_token_comes_from_the_environment(home, monkeypatch, pachd_standin_server):
    pachd_standin_server.pfs.required_token = "pach-secret-token"
    try:
        monkeypatch.setenv("PACHD_ADDRESS", pachd_standin_server.address)
        monkeypatch.delenv("PACHD_TOKEN", raising=False)
        with pytest.raises(PlatformError, match="refused access to repo list .*; set PACHD_TOKEN") as refused:
            PachydermDataStore(load_config(profile="cluster")).list_repos()
        assert "pach-secret-token" not in str(refused.value)
        monkeypatch.setenv("PACHD_TOKEN", "pach-secret-token")
        assert "dogs-and-cats" in [r.name for r in PachydermDataStore(load_config(profile="cluster")).list_repos()]
    finally:
        pachd_standin_server.pfs.required_token = None


def test_a_finished_commit_passes_through_finishing_and_the_adapter_waits_for_finished(store, pachd_standin_server):
    import python_pachyderm
    from python_pachyderm.proto.v2.pfs import pfs_pb2

    from tests.standins import pachd_pfs as standin

    name = fresh()
    store.create_repo(name)
    client = python_pachyderm.Client.new_from_pachd_address(pachd_standin_server.address)
    commit = client.start_commit(name, "master")
    client.put_file_bytes(commit, "/a.txt", b"12345")
    before = standin.FINISHING_S
    standin.FINISHING_S = 0.5
    try:
        client.finish_commit(commit)
        info = next(iter(client.inspect_commit(commit)))  # at once: FINISHING, not FINISHED yet
        assert info.finishing.seconds and not info.finished.seconds
        waited = next(iter(client.inspect_commit(commit, pfs_pb2.CommitState.FINISHED)))
        assert waited.finished.seconds
        put = store.put_files(name, "master", {"/b.txt": b"678"})  # returns once FINISHED, with its size and files
    finally:
        standin.FINISHING_S = before
    assert (put.files, put.size_bytes) == (2, 8)
    store.delete_repo(name)
    client.delete_repo(name)  # like pachd 2.x, a repo that is not there: no error


def test_the_shipped_split_spec_is_accepted_by_pachd(home, monkeypatch, pachd_standin_server):
    from dlptui.actions.datasets import split_spec

    pachd_standin_server.reset()
    monkeypatch.setenv("PACHD_ADDRESS", pachd_standin_server.address)
    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    platform = Platform(load_config(profile="cluster"))
    try:
        raw = fresh("raw")
        platform.data.create_repo(raw)
        platform.data.put_files(raw, "master", {"/train/cat.1.jpg": b"c", "/train/dog.1.jpg": b"d"})
        spec = split_spec(fresh("split"))
        spec["input"]["pfs"]["repo"] = raw
        made = platform.pipelines.create_pipeline(spec)
        assert made.inputs == (f"{raw}@master",) and made.image == "python:3.11-slim" and made.cmd[:2] == ("python3", "-")
        assert made.spec["transform"]["env"] == {"SEED": "42", "EVAL_FRACTION": "0.2"}
        assert [p.name for p in platform.pipelines.list_pipelines()] == [made.name]
    finally:
        platform.close()
