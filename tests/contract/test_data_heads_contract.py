"""ports.DataStore, once for both profiles: which commit is data (dlptui/platform/data_rules.py), and prefixes.

A commit that ended with an error is made where each profile makes one: locally by the store's `commit_tree` with an
error (what the local pipeline runner will call for a failed job), on the pachd stand-in by python-pachyderm's own
client finishing a commit with an error (what pachd does to a failed job's output commit)."""

from __future__ import annotations

import uuid

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from tests.contract.checks import one_sentence

pytestmark = pytest.mark.timeout(60)


def failed_commit(profile, data_store, repo: str, branch: str, files: dict[str, bytes], error: str, tmp_path) -> str:
    """A commit on `branch` holding `files` (on top of its tree) that ended with `error`; its id."""
    if profile == "local":
        try:
            tree = {e.path: (e.hash, e.size_bytes) for e in data_store.list_files(repo, branch, recursive=True)}
        except NotFound:  # no commit yet
            tree = {}
        for path, data in files.items():
            local = tmp_path / uuid.uuid4().hex
            local.write_bytes(data)
            tree[path] = local
        return data_store.commit_tree(repo, branch, tree, error=error).id
    import python_pachyderm

    client = python_pachyderm.Client.new_from_pachd_address(data_store.config.cluster.pachd_address)
    commit = client.start_commit(repo, branch)
    for path, data in files.items():
        client.put_file_bytes(commit, path, data)
    client.finish_commit(commit, error=error)
    return commit.id


def test_a_commit_that_ended_with_an_error_is_never_taken_as_data(profile, data_store, fresh_name, tmp_path):
    repo = fresh_name("repo")
    data_store.create_repo(repo)
    good = data_store.put_files(repo, "master", {"/a.txt": b"alpha"}, message="good")
    bad = failed_commit(profile, data_store, repo, "master", {"/partial.txt": b"half"}, "datum 0f1e failed", tmp_path)
    assert data_store.inspect_commit(repo, "master") == good  # the branch's data head: the newest commit that is data
    assert data_store.resolve(repo, "master").commit == good.id
    assert [c.id for c in data_store.list_commits(repo)] == [good.id]
    assert [c.id for c in data_store.list_commits(repo, "master")] == [good.id]
    assert [e.path for e in data_store.list_files(repo, "master")] == ["/a.txt"]
    assert data_store.inspect_repo(repo).commits == 1
    for call in (lambda: data_store.inspect_commit(repo, bad), lambda: data_store.resolve(repo, bad[:10]),
                 lambda: data_store.get_file(repo, bad, "/partial.txt")):
        with pytest.raises(Conflict) as e:
            call()
        one_sentence(e.value, bad, repr(repo), "datum 0f1e failed")


def test_a_branch_whose_commits_all_failed_has_no_data_head(profile, data_store, fresh_name, tmp_path):
    repo = fresh_name("repo")
    data_store.create_repo(repo)
    bad = failed_commit(profile, data_store, repo, "master", {"/partial.txt": b"half"}, "the upload broke", tmp_path)
    for call in (lambda: data_store.inspect_commit(repo, "master"), lambda: data_store.resolve(repo, "master"),
                 lambda: data_store.list_files(repo, "master")):
        with pytest.raises(NotFound) as e:
            call()
        text = one_sentence(e.value, repr(repo), "'master'", bad)
        assert "ended with an error (the upload broke)" in text
    assert data_store.list_commits(repo) == []


def test_an_ambiguous_commit_prefix_is_invalid(data_store, fresh_name, monkeypatch):
    """Commit ids are random: two that share their first 4 digits are made by giving both profiles' uuid4 a prefix."""
    real = uuid.uuid4

    def prefixed():
        return uuid.UUID("abcd" + real().hex[4:])

    repo = fresh_name("repo")
    data_store.create_repo(repo)
    with monkeypatch.context() as m:
        m.setattr(uuid, "uuid4", prefixed)
        first = data_store.put_files(repo, "master", {"/a": b"1"})
        second = data_store.put_files(repo, "master", {"/b": b"2"})
    assert first.id[:4] == second.id[:4] == "abcd" and first.id != second.id
    for call in (lambda: data_store.inspect_commit(repo, "abcd"), lambda: data_store.resolve(repo, "ABCD"),
                 lambda: data_store.get_file(repo, "abcd", "/a")):
        with pytest.raises(InvalidInput) as e:
            call()
        one_sentence(e.value, repr(repo))
    assert data_store.inspect_commit(repo, first.id[:32]) == first
