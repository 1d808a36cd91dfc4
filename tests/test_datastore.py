"""The embedded versioned data store: round trips, dedup, atomic commits under kill -9, concurrent writers."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.local.blobs import CorruptBlob
from dlptui.platform.local.datastore import LocalDataStore
from dlptui.platform.rules import clean_path, collect, local_target
from dlptui.platform.ports import DataStore


def blob_bytes(store: LocalDataStore) -> int:
    """The bytes of every blob on disk: loose files and packs."""
    return sum(p.stat().st_size for p in [*store.blobs.root.glob("??/*"), *store.blobs.packs.glob("*.pack")])


def corrupt(store: LocalDataStore, digest: str, data: bytes) -> None:
    """Overwrite a stored blob's bytes in place, loose or packed (what a failing disk does)."""
    if store.blobs.path(digest).exists():
        store.blobs.path(digest).write_bytes(data)
        return
    pack, offset, size = store.blobs.index.place(digest)
    assert len(data) == size
    with open(pack, "r+b") as f:
        f.seek(offset)
        f.write(data)


def make_tree(root: Path, n: int = 20, salt: str = "") -> Path:
    for i in range(n):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(f"{salt}content {i}".encode() * (i + 1))
    return root


def test_store_implements_the_port(platform):
    assert isinstance(platform.data, LocalDataStore)
    assert isinstance(platform.data, DataStore)


def test_round_trip_put_commit_list_get(platform, tmp_path):
    store = platform.data
    store.create_repo("images", description="test repo")
    files = collect([make_tree(tmp_path / "src")], "/data")
    first = store.put_files("images", "master", files, message="first")
    assert first.parent is None and first.files == 20 and first.message == "first"
    assert first.size_bytes == sum(p.stat().st_size for p in files.values())

    second = store.put_files("images", "master", {"/extra.txt": b"more"}, message="second")
    assert second.parent == first.id and second.files == 21

    top = store.list_files("images", "master")
    assert [(e.path, e.type) for e in top] == [("/data", "dir"), ("/extra.txt", "file")]
    assert top[0].size_bytes == first.size_bytes
    inner = store.list_files("images", "master", "/data/src")
    assert sorted(e.path for e in inner) == ["/data/src/a", "/data/src/b"]
    assert len(store.list_files("images", "master", "/data", recursive=True)) == 20

    local = tmp_path / "src" / "a" / "f3.bin"
    assert store.get_file("images", "master", "/data/src/a/f3.bin") == local.read_bytes()
    entry = store.list_files("images", "master", "/data/src/a/f3.bin")[0]
    assert entry.hash == hashlib.sha256(local.read_bytes()).hexdigest()
    # the old commit still reads as it was
    with pytest.raises(NotFound):
        store.get_file("images", first.id, "/extra.txt")
    assert store.get_file("images", first.id[:8], "/data/src/b/f0.bin") == b"content 0"

    assert [c.id for c in store.list_commits("images")] == [second.id, first.id]
    assert store.list_commits("images", limit=1)[0].id == second.id
    ref = store.resolve("images", "master")
    assert (ref.repo, ref.commit, ref.branch) == ("images", second.id, "master")
    assert store.resolve("images", first.id[:6]).commit == first.id
    repo = store.inspect_repo("images")
    assert (repo.commits, repo.size_bytes, repo.branches, repo.description) == (2, second.size_bytes, ("master",), "test repo")
    assert store.verify() == []


def test_branches_are_independent(platform):
    store = platform.data
    store.create_repo("r")
    store.put_files("r", "master", {"/a": b"1"})
    dev = store.put_files("r", "dev", {"/b": b"2"})
    assert dev.parent is None and dev.branch == "dev"
    assert store.list_branches("r") == ["dev", "master"]
    assert [e.path for e in store.list_files("r", "dev")] == ["/b"]
    assert [c.branch for c in store.list_commits("r", branch="dev")] == ["dev"]


def test_delete_files_makes_a_commit_without_them(platform):
    store = platform.data
    store.create_repo("r")
    store.put_files("r", "master", {"/d/x": b"1", "/d/y": b"2", "/z": b"3"})
    after = store.delete_files("r", "master", ["/d"], message="drop d")
    assert after.files == 1 and [e.path for e in store.list_files("r", "master")] == ["/z"]
    with pytest.raises(NotFound, match="/nope"):
        store.delete_files("r", "master", ["/nope"])


def test_reput_adds_no_blob_bytes(platform, tmp_path):
    store = platform.data
    store.create_repo("r")
    src = make_tree(tmp_path / "src", 30)
    store.put_files("r", "master", collect([src]))
    stored = blob_bytes(store)
    assert stored == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    again = store.put_files("r", "master", collect([src], "/copy"))
    assert again.files == 60
    assert blob_bytes(store) == stored
    store.put_files("r", "master", {"/twin1": b"same", "/twin2": b"same"})
    assert blob_bytes(store) == stored + 4


def test_delete_repo_removes_metadata_and_unshared_blobs(platform, tmp_path):
    store = platform.data
    store.create_repo("keep")
    store.create_repo("drop")
    store.put_files("keep", "master", {"/shared": b"both repos"})
    store.put_files("drop", "master", {"/shared": b"both repos", "/own": b"only in drop"})
    assert blob_bytes(store) == len(b"both repos") + len(b"only in drop")
    store.delete_repo("drop")
    assert [r.name for r in store.list_repos()] == ["keep"]
    assert blob_bytes(store) == len(b"both repos")
    assert store.get_file("keep", "master", "/shared") == b"both repos"
    with pytest.raises(NotFound, match="'drop'"):
        store.list_commits("drop")


def test_corrupt_blob_is_never_read_back(platform):
    store = platform.data
    store.create_repo("r")
    store.put_files("r", "master", {"/f": b"precious bytes"})
    digest = hashlib.sha256(b"precious bytes").hexdigest()
    corrupt(store, digest, b"precious bytez")
    with pytest.raises(CorruptBlob, match="corrupt"):
        store.get_file("r", "master", "/f")
    with pytest.raises(CorruptBlob, match="corrupt"):  # streamed: after the last chunk, so a caller keeps nothing
        list(store.iter_file("r", "master", "/f", chunk_size=4))
    assert store.verify() == [f"blob {digest} is missing or corrupt"]


def test_iter_file_streams_without_reading_the_whole_blob(platform, monkeypatch):
    from dlptui.platform.local import blobs

    store = platform.data
    store.create_repo("r")
    data = bytes(range(256)) * 4096 * 2  # 2 MiB: a loose blob
    small = bytes(range(256)) * 2048  # 512 KiB: packed
    store.put_files("r", "master", {"/big": data, "/small": small})
    assert store.blobs.path(hashlib.sha256(data).hexdigest()).exists()
    assert not store.blobs.path(hashlib.sha256(small).hexdigest()).exists()
    sizes = []
    real_open, real_pread = open, blobs.os.pread

    def spying_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if "b" in mode and str(path).startswith(str(store.blobs.root)):
            read = f.read
            f.read = lambda n=-1: sizes.append(n) or read(n)
        return f

    monkeypatch.setattr("builtins.open", spying_open)
    monkeypatch.setattr(blobs.os, "pread", lambda fd, n, offset: sizes.append(n) or real_pread(fd, n, offset))
    assert b"".join(store.iter_file("r", "master", "/big", chunk_size=65536)) == data
    assert sizes and all(0 < n <= 65536 for n in sizes)  # never one read of everything
    sizes.clear()
    assert b"".join(store.iter_file("r", "master", "/small", chunk_size=65536)) == small
    assert len(sizes) == 8 and all(0 < n <= 65536 for n in sizes)


@pytest.mark.parametrize(
    "path", ["../etc/passwd", "/a/../../b", "a//b", "a/./b", "bad\x00name", "/", "", "trailing/", "tab\there"]
)
def test_bad_paths_are_refused_in_one_sentence(platform, path):
    store = platform.data
    store.create_repo("r")
    with pytest.raises(InvalidInput) as info:
        store.put_files("r", "master", {path: b"x"})
    assert "\n" not in str(info.value) and str(info.value).endswith(".")
    assert store.list_commits("r") == []


def test_clean_path_and_local_targets(tmp_path):
    assert clean_path("train/cat.1.jpg") == "/train/cat.1.jpg"
    assert clean_path("/", folder=True) == "/" and clean_path("/a/", folder=True) == "/a"
    with pytest.raises(InvalidInput):
        local_target(tmp_path, "/../outside")
    assert local_target(tmp_path, "/in/side") == (tmp_path / "in" / "side").resolve()


def test_missing_things_are_named(platform):
    store = platform.data
    with pytest.raises(NotFound, match="no repo 'ghost'"):
        store.put_files("ghost", "master", {"/a": b"1"})
    with pytest.raises(InvalidInput, match="repo name"):
        store.create_repo("bad name")
    store.create_repo("r")
    with pytest.raises(Conflict, match="exists already"):
        store.create_repo("r")
    with pytest.raises(NotFound, match="no commits yet"):
        store.list_files("r", "master")
    store.put_files("r", "master", {"/d/f": b"1"})
    with pytest.raises(NotFound, match="deadbeef"):
        store.inspect_commit("r", "deadbeef")
    with pytest.raises(NotFound, match="/missing.txt"):
        store.get_file("r", "master", "/missing.txt")
    with pytest.raises(InvalidInput, match="is a folder"):
        store.get_file("r", "master", "/d")
    with pytest.raises(NotFound, match="no file or folder"):
        collect([Path("/no/such/place")])


def test_health_reports_path_and_repo_count(platform):
    platform.data.create_repo("r")
    health = platform.health("data")
    assert health.reachable and health.backend == "embedded store"
    assert str(platform.config.home / "data") in health.detail and "1 repo" in health.detail


# --- processes -------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import hashlib, sys, time
    from pathlib import Path
    from dlptui.platform.local.datastore import LocalDataStore

    class Cfg:
        home = Path(sys.argv[1])

    tag, files, commits = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = LocalDataStore(Cfg())
    go = Path(sys.argv[1]) / "go"
    while not go.exists():
        time.sleep(0.01)
    for c in range(commits):
        paths = [f"/{tag}/c{c}/f{i}.bin" for i in range(files)]
        store.put_files("r", "master", {p: hashlib.sha256(p.encode()).digest() * 64 for p in paths}, message=f"{tag} {c}")
    """
)


def content_ok(store: LocalDataStore, repo: str, commit_id: str) -> bool:
    entries = store.list_files(repo, commit_id, "/", recursive=True)
    return all(store.get_file(repo, commit_id, e.path) == hashlib.sha256(e.path.encode()).digest() * 64 for e in entries)


def spawn(home: Path, tag: str, files: int, commits: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(home), tag, str(files), str(commits)])


def wait_for_staging(store: LocalDataStore, child: subprocess.Popen) -> None:
    """Until a temp file appears in the store's tmp/ (the child staging a commit's blobs); looked at every
    millisecond, as staging one commit takes a few (a guard of a minute, not a timing assert)."""
    before = set(os.listdir(store.blobs.tmp))
    deadline = time.monotonic() + 60
    while not set(os.listdir(store.blobs.tmp)) - before:
        assert child.poll() is None and time.monotonic() < deadline, "the writer never staged a file"
        time.sleep(0.001)


def wait_for_commits(store: LocalDataStore, count: int, child: subprocess.Popen) -> None:
    """Until the child has landed `count` commits in all (a guard of a minute, not a timing assert)."""
    deadline = time.monotonic() + 60
    while len(store.list_commits("r")) < count:
        assert child.poll() is None and time.monotonic() < deadline, "the writer never committed"
        time.sleep(0.02)


def leftovers(store: LocalDataStore) -> int:
    """Traces of an interrupted commit: staged temp files, and blobs no commit refers to."""
    with store.meta.read() as db:
        referenced = {r[0] for r in db.execute("SELECT DISTINCT hash FROM entries")}
    blobs = {p.parent.name + p.name for p in store.blobs.root.glob("??/*")}
    with store.blobs.index.read() as db:
        packed = {r[0] for r in db.execute("SELECT hash FROM packed")}
        packs = {r[0] for r in db.execute("SELECT DISTINCT pack FROM packed")}
    unindexed = [p for p in store.blobs.packs.glob("*.pack") if p.stem not in packs]
    return len(list(store.blobs.tmp.iterdir())) + len(blobs - referenced) + len(packed - referenced) + len(unindexed)


def test_kill_9_mid_commit_leaves_whole_commits_or_none(config):
    store = LocalDataStore(config)
    store.create_repo("r")
    (config.home / "go").touch()
    files = 200
    interrupted = 0
    # killed at points the test sees, not after a pause: right after a commit landed, and while the writer has a
    # file of its own in the store's tmp/ (a commit's blobs being staged, not yet published or committed)
    for n, point in enumerate(("landed", "staging") * 3):
        child = spawn(config.home, f"run{n}", files, 1000)
        wait_for_commits(store, len(store.list_commits("r")) + 1, child)  # it is busy writing now
        if point == "staging":
            wait_for_staging(store, child)
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL  # killed mid-work, not finished
        before = leftovers(store)

        reopened = LocalDataStore(config)
        assert reopened.verify() == []
        commits = reopened.list_commits("r")
        for older, newer in zip(commits[1:], commits):
            assert newer.parent == older.id
        for c in commits:  # each commit holds all of its own files, never a part of them
            tag, index = c.message.split()
            assert len(reopened.list_files("r", c.id, f"/{tag}/c{index}", recursive=True)) == files
        assert content_ok(reopened, "r", "master")
        interrupted += before > 0
        reopened.collect_garbage()  # orphan blobs go, every commit still reads back
        assert reopened.verify() == [] and content_ok(reopened, "r", commits[-1].id)
    assert interrupted >= 1  # a kill landed inside a commit, leaving a half-staged one behind


def test_concurrent_writers_to_one_branch_both_land(config):
    store = LocalDataStore(config)
    store.create_repo("r")
    children = [spawn(config.home, tag, 200, 2) for tag in ("left", "right")]
    (config.home / "go").touch()
    assert [c.wait(timeout=120) for c in children] == [0, 0]
    commits = store.list_commits("r", branch="master")
    assert len(commits) == 4
    assert [c.parent for c in commits] == [c.id for c in commits[1:]] + [None]
    head = store.list_files("r", "master", "/", recursive=True)
    assert len(head) == 800
    assert {e.path.split("/")[1] for e in head} == {"left", "right"}
    assert content_ok(store, "r", "master") and store.verify() == []
