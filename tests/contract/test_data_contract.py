"""ports.DataStore, once for both profiles: the embedded store and Pachyderm (the pachd stand-in)."""

from __future__ import annotations

import re

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import Commit, DataRef, FileEntry, Repo, Service
from tests.contract.checks import one_sentence

pytestmark = pytest.mark.timeout(60)

FULL_ID = re.compile(r"^[0-9a-f]{32}$")
BINARY = bytes(range(256)) * 4
LARGE = bytes(range(251)) * 10_000  # 2.5 MB: more than one GetFile chunk on pachd


@pytest.fixture
def repo(data_store, fresh_name):
    """A repo with two commits on master: /a/b.txt, /a/d.txt, /c.txt, then /c.txt replaced."""
    name = fresh_name("repo")
    data_store.create_repo(name, "contract repo")
    first = data_store.put_files(name, "master", {"/a/b.txt": b"hello", "/a/d.txt": b"xyz", "/c.txt": b"old"}, message="first")
    second = data_store.put_files(name, "master", {"/c.txt": b"new!"}, message="second")
    return name, first, second


# --- round trips ------------------------------------------------------------------------------


def test_create_repo_returns_the_empty_repo_and_lists_it(data_store, fresh_name):
    name = fresh_name("repo")
    created = data_store.create_repo(name, "dogs and cats")
    assert isinstance(created, Repo)
    assert (created.name, created.description, created.commits, created.branches, created.size_bytes) == (name, "dogs and cats", 0, (), 0)
    assert data_store.inspect_repo(name) == created
    listed = data_store.list_repos()
    assert name in [r.name for r in listed]
    assert [r.name for r in listed] == sorted(r.name for r in listed)  # by name
    assert data_store.list_branches(name) == [] and data_store.list_commits(name) == []


def test_put_then_get_gives_the_same_bytes(data_store, fresh_name, tmp_path):
    name = fresh_name("repo")
    data_store.create_repo(name)
    local = tmp_path / "photo.jpg"
    local.write_bytes(LARGE)
    seen = []
    commit = data_store.put_files(
        name, "master", {"/bin/all-bytes": BINARY, "/empty": b"", "photo.jpg": local}, message="round trip",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert isinstance(commit, Commit) and FULL_ID.match(commit.id)
    assert (commit.repo, commit.branch, commit.parent, commit.message) == (name, "master", None, "round trip")
    assert (commit.files, commit.size_bytes) == (3, len(BINARY) + len(LARGE))
    assert seen and seen[-1] == (len(BINARY) + len(LARGE),) * 2 and all(d <= t for d, t in seen)
    assert data_store.get_file(name, "master", "/bin/all-bytes") == BINARY
    assert data_store.get_file(name, "master", "/empty") == b""
    assert data_store.get_file(name, commit.id, "/photo.jpg") == LARGE
    assert data_store.get_file(name, "master", "bin/all-bytes") == BINARY  # a path without the leading slash


def test_a_folder_value_brings_every_file_in_it(data_store, fresh_name, tmp_path):
    (tmp_path / "eval" / "deep").mkdir(parents=True)
    (tmp_path / "eval" / "cat.1.jpg").write_bytes(b"C" * 20)
    (tmp_path / "eval" / "deep" / "dog.1.jpg").write_bytes(b"D" * 10)
    name = fresh_name("repo")
    data_store.create_repo(name)
    commit = data_store.put_files(name, "master", {"/eval": tmp_path / "eval"})
    assert (commit.files, commit.size_bytes) == (2, 30)
    walked = data_store.list_files(name, "master", recursive=True)
    assert [(e.path, e.size_bytes) for e in walked] == [("/eval/cat.1.jpg", 20), ("/eval/deep/dog.1.jpg", 10)]


def test_a_put_adds_to_the_parent_tree_and_old_commits_keep_theirs(data_store, repo):
    name, first, second = repo
    assert second.parent == first.id and second.branch == "master"
    assert (first.files, first.size_bytes) == (3, 11)
    assert (second.files, second.size_bytes) == (3, 12)  # replaced, not added
    assert data_store.get_file(name, "master", "/c.txt") == b"new!"
    assert data_store.get_file(name, first.id, "/c.txt") == b"old"
    assert data_store.get_file(name, second.id, "/a/b.txt") == b"hello"


def test_putting_the_same_bytes_again_is_a_new_commit_with_the_same_tree(data_store, repo):
    name, _, second = repo
    again = data_store.put_files(name, "master", {"/c.txt": b"new!"})
    assert again.id != second.id and again.parent == second.id
    assert (again.files, again.size_bytes) == (second.files, second.size_bytes)
    assert data_store.list_files(name, again.id, recursive=True) == data_store.list_files(name, second.id, recursive=True)


def test_list_files_shows_children_sorted_and_folders_with_their_size(data_store, repo):
    name, _, _ = repo
    root = data_store.list_files(name, "master")
    assert all(isinstance(e, FileEntry) for e in root)
    assert [(e.path, e.type, e.size_bytes) for e in root] == [("/a", "dir", 8), ("/c.txt", "file", 4)]
    assert [(e.path, e.type) for e in data_store.list_files(name, "master", "/a")] == [("/a/b.txt", "file"), ("/a/d.txt", "file")]
    assert data_store.list_files(name, "master", "/a/") == data_store.list_files(name, "master", "/a")
    assert [(e.path, e.type, e.size_bytes) for e in data_store.list_files(name, "master", "/c.txt")] == [("/c.txt", "file", 4)]
    walked = data_store.list_files(name, "master", "/", recursive=True)
    assert [(e.path, e.type) for e in walked] == [("/a/b.txt", "file"), ("/a/d.txt", "file"), ("/c.txt", "file")]


def test_delete_files_makes_a_commit_without_them(data_store, repo):
    name, _, second = repo
    gone = data_store.delete_files(name, "master", ["/a"], message="drop a")
    assert (gone.parent, gone.message, gone.files, gone.size_bytes) == (second.id, "drop a", 1, 4)
    assert [e.path for e in data_store.list_files(name, "master", recursive=True)] == ["/c.txt"]
    assert data_store.get_file(name, second.id, "/a/b.txt") == b"hello"  # the older commit still has it


def test_a_put_can_delete_paths_in_the_same_commit(data_store, repo):
    """What an import does: the previous split goes and the new one lands in one commit, never an empty one between."""
    name, _, second = repo
    swapped = data_store.put_files(name, "master", {"/a/new.txt": b"fresh"}, message="swap",
                                   delete=["/a", "/c.txt", "/not-there"])  # a path not in the head is ignored
    assert (swapped.parent, swapped.files, swapped.size_bytes) == (second.id, 1, 5)
    assert [e.path for e in data_store.list_files(name, "master", recursive=True)] == ["/a/new.txt"]
    assert len(data_store.list_commits(name)) == 3
    with pytest.raises(InvalidInput):
        data_store.put_files(name, "master", {"/x": b"1"}, delete=["/a/../etc"])


def test_a_new_branch_starts_empty_and_lists_beside_the_others(data_store, repo):
    name, _, _ = repo
    dev = data_store.put_files(name, "dev", {"/only-dev": b"d"})
    assert (dev.branch, dev.parent, dev.files) == ("dev", None, 1)
    assert data_store.list_branches(name) == ["dev", "master"]
    assert [e.path for e in data_store.list_files(name, "dev")] == ["/only-dev"]
    assert [c.branch for c in data_store.list_commits(name, "dev")] == ["dev"]
    inspected = data_store.inspect_repo(name)
    assert (inspected.commits, inspected.branches, inspected.size_bytes) == (3, ("dev", "master"), 12)  # size: master's head


# --- ordering ---------------------------------------------------------------------------------


def test_list_commits_is_newest_first_and_limit_keeps_the_newest(data_store, repo):
    name, first, second = repo
    third = data_store.put_files(name, "master", {"/d": b"4"}, message="third")
    assert [c.id for c in data_store.list_commits(name)] == [third.id, second.id, first.id]
    assert [c.id for c in data_store.list_commits(name, "master")] == [third.id, second.id, first.id]
    assert [c.id for c in data_store.list_commits(name, limit=2)] == [third.id, second.id]
    assert [c.message for c in data_store.list_commits(name, "master", limit=1)] == ["third"]
    assert data_store.inspect_repo(name).last_change >= data_store.inspect_commit(name, first.id).created


# --- refs -------------------------------------------------------------------------------------


def test_resolve_pins_a_branch_to_the_full_id_of_its_head(data_store, repo):
    name, _, second = repo
    pinned = data_store.resolve(name, "master")
    assert isinstance(pinned, DataRef) and FULL_ID.match(pinned.commit)
    assert (pinned.repo, pinned.commit, pinned.branch) == (name, second.id, "master")
    assert data_store.resolve(name, second.id) == pinned  # idempotent: a pinned ref resolves to itself
    assert data_store.resolve(name, second.id[:8]).commit == second.id
    assert data_store.inspect_commit(name, "master") == data_store.inspect_commit(name, second.id)


def test_a_commit_prefix_is_enough_in_either_case(data_store, repo):
    name, first, _ = repo
    assert data_store.inspect_commit(name, first.id[:6]).id == first.id
    assert data_store.resolve(name, first.id[:8].upper()).commit == first.id
    assert data_store.get_file(name, first.id[:10], "/c.txt") == b"old"


# --- mistakes: one sentence each -----------------------------------------------------------------


def test_an_unknown_repo_is_not_found_everywhere(data_store, fresh_name):
    ghost = fresh_name("ghost")
    calls = [
        lambda: data_store.inspect_repo(ghost),
        lambda: data_store.list_branches(ghost),
        lambda: data_store.list_commits(ghost),
        lambda: data_store.inspect_commit(ghost, "master"),
        lambda: data_store.resolve(ghost, "master"),
        lambda: data_store.list_files(ghost, "master"),
        lambda: data_store.get_file(ghost, "master", "/a"),
        lambda: data_store.put_files(ghost, "master", {"/a": b"1"}),
        lambda: data_store.delete_files(ghost, "master", ["/a"]),
        lambda: data_store.delete_repo(ghost),
    ]
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        one_sentence(info, ghost)
    assert ghost not in [r.name for r in data_store.list_repos()]  # nothing was created on the way


def test_deleting_a_repo_removes_it_and_a_second_delete_is_not_found(data_store, repo):
    name, _, _ = repo
    assert data_store.delete_repo(name) is None
    assert name not in [r.name for r in data_store.list_repos()]
    with pytest.raises(NotFound) as info:
        data_store.inspect_repo(name)
    one_sentence(info, name)
    with pytest.raises(NotFound) as info:  # pachd says yes to this; the contract says which repo was not there
        data_store.delete_repo(name)
    one_sentence(info, name)


def test_unknown_refs_and_paths_are_not_found(data_store, repo):
    name, _, _ = repo
    for call, named in [
        (lambda: data_store.list_commits(name, "dev"), "dev"),
        (lambda: data_store.inspect_commit(name, "nope"), "nope"),
        (lambda: data_store.resolve(name, "f" * 32), "f" * 32),
        (lambda: data_store.resolve(name, "deadbeef"), "deadbeef"),
        (lambda: data_store.get_file(name, "nope", "/c.txt"), "nope"),
        (lambda: data_store.get_file(name, "master", "/missing.txt"), "/missing.txt"),
        (lambda: data_store.list_files(name, "master", "/missing"), "/missing"),
        (lambda: data_store.delete_files(name, "master", ["/missing"]), "/missing"),
        (lambda: data_store.delete_files(name, "dev", ["/c.txt"]), "dev"),
    ]:
        with pytest.raises(NotFound) as info:
            call()
        one_sentence(info, named)


def test_an_empty_repo_has_no_head_to_read(data_store, fresh_name):
    name = fresh_name("repo")
    data_store.create_repo(name)
    for call in (
        lambda: data_store.inspect_commit(name, "master"),
        lambda: data_store.resolve(name, "master"),
        lambda: data_store.list_files(name, "master"),
    ):
        with pytest.raises(NotFound) as info:
            call()
        one_sentence(info, name)


def test_creating_an_existing_repo_is_a_conflict_and_changes_nothing(data_store, repo):
    name, _, second = repo
    with pytest.raises(Conflict) as info:
        data_store.create_repo(name, "another description")
    one_sentence(info, name)
    kept = data_store.inspect_repo(name)
    assert (kept.description, kept.commits) == ("contract repo", 2)
    assert data_store.resolve(name, "master").commit == second.id


@pytest.mark.parametrize("bad", ["bad name!", "a.b", "-leading-dash", "x" * 64, ""])
def test_a_repo_name_outside_the_rule_is_invalid(data_store, bad):
    with pytest.raises(InvalidInput) as info:
        data_store.create_repo(bad)
    one_sentence(info)
    assert bad not in [r.name for r in data_store.list_repos()]


@pytest.mark.parametrize("bad", ["bad branch", "v1.0", "a/b", ""])
def test_a_branch_name_outside_pachds_rule_is_invalid_and_commits_nothing(data_store, fresh_name, bad):
    name = fresh_name("repo")
    data_store.create_repo(name)
    with pytest.raises(InvalidInput) as info:
        data_store.put_files(name, bad, {"/a": b"1"})
    one_sentence(info)
    assert data_store.list_commits(name) == [] and data_store.list_branches(name) == []


@pytest.mark.parametrize("bad", ["../etc/passwd", "/a/../../b", "a//b", "a/./b", "bad\x00name", "tab\there", "", "/", "trailing/"])
def test_a_path_that_is_not_plain_is_refused_and_commits_nothing(data_store, fresh_name, bad):
    name = fresh_name("repo")
    data_store.create_repo(name)
    with pytest.raises(InvalidInput) as info:
        data_store.put_files(name, "master", {bad: b"x"})
    one_sentence(info)
    assert data_store.list_commits(name) == []


def test_reading_a_path_that_is_not_plain_is_refused(data_store, repo):
    name, _, _ = repo
    for call in (
        lambda: data_store.get_file(name, "master", "/../etc/passwd"),
        lambda: data_store.get_file(name, "master", "/a//b.txt"),
        lambda: data_store.list_files(name, "master", "/a/../.."),
        lambda: data_store.delete_files(name, "master", ["/a/./b.txt"]),
    ):
        with pytest.raises(InvalidInput) as info:
            call()
        one_sentence(info)
    assert len(data_store.list_commits(name)) == 2


def test_a_folder_is_not_a_file_to_get(data_store, repo):
    name, _, _ = repo
    with pytest.raises(InvalidInput) as info:
        data_store.get_file(name, "master", "/a")
    one_sentence(info, "/a")


def test_nothing_to_put_or_delete_is_invalid_and_commits_nothing(data_store, repo):
    name, _, _ = repo
    with pytest.raises(InvalidInput) as info:
        data_store.put_files(name, "master", {})
    one_sentence(info)
    with pytest.raises(InvalidInput) as info:
        data_store.delete_files(name, "master", [])
    one_sentence(info)
    assert len(data_store.list_commits(name)) == 2


def test_a_missing_local_file_is_not_found_and_commits_nothing(data_store, repo, tmp_path):
    name, _, second = repo
    missing = tmp_path / "absent.jpg"
    with pytest.raises(NotFound) as info:
        data_store.put_files(name, "master", {"/new": b"1", "/absent.jpg": missing})
    one_sentence(info, str(missing))
    assert data_store.resolve(name, "master").commit == second.id
    assert len(data_store.list_commits(name)) == 2


def test_an_empty_ref_is_invalid(data_store, repo):
    name, _, _ = repo
    with pytest.raises(InvalidInput) as info:
        data_store.resolve(name, "")
    one_sentence(info, name)


# --- health -------------------------------------------------------------------------------------


def test_health_is_a_reachable_service_of_the_data_part(data_store):
    service = data_store.health()
    assert isinstance(service, Service)
    assert (service.part, service.reachable) == ("data", True), service.detail
    assert service.backend and service.detail


def test_iter_file_streams_the_bytes_of_get_file_in_chunks(data_store, fresh_name):
    name = fresh_name("repo")
    data_store.create_repo(name)
    data_store.put_files(name, "master", {"/big.bin": LARGE, "/empty.txt": b""})
    chunks = list(data_store.iter_file(name, "master", "/big.bin", chunk_size=1 << 16))
    assert b"".join(chunks) == LARGE == data_store.get_file(name, "master", "/big.bin")
    assert len(chunks) > 1 and max(len(c) for c in chunks) <= 1 << 16
    assert b"".join(data_store.iter_file(name, "master", "/empty.txt")) == b""
    with pytest.raises(NotFound) as e:
        data_store.iter_file(name, "master", "/nope.bin")  # before the first chunk
    one_sentence(e.value, "/nope.bin")


def test_a_folder_put_refuses_a_link_that_leads_outside_it_and_commits_nothing(data_store, fresh_name, tmp_path):
    """The one walk of a folder (rules.files_below) on both profiles: `cat.1.jpg -> ~/.ssh/id_rsa` must not land
    in a repo; a link inside the folder is taken."""
    name = fresh_name("repo")
    data_store.create_repo(name)
    secret = tmp_path / "secret"
    secret.write_text("not for the repo")
    folder = tmp_path / "upload"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "cat.1.jpg").write_bytes(b"a cat")
    (folder / "train" / "cat.2.jpg").symlink_to(folder / "train" / "cat.1.jpg")  # inside: fine
    (folder / "train" / "cat.3.jpg").symlink_to(secret)
    with pytest.raises(InvalidInput) as info:
        data_store.put_files(name, "master", {"/data": folder})
    one_sentence(info)
    assert "outside" in str(info.value)
    assert data_store.list_commits(name) == []
    (folder / "train" / "cat.3.jpg").unlink()
    data_store.put_files(name, "master", {"/data": folder})
    assert sorted(f.path for f in data_store.list_files(name, "master", "/data/train")) == [
        "/data/train/cat.1.jpg", "/data/train/cat.2.jpg"]
