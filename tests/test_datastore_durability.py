"""The data store's durability: renamed blobs are made durable in their folders before the commit, and the temp
files of dead writers go when a store is opened, while a live writer's (in another process) stay."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time

from dlptui.platform.local import blobs as blobs_module
from dlptui.platform.local.datastore import LocalDataStore

WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from dlptui.platform.local.datastore import LocalDataStore

    class Cfg:
        home = Path(sys.argv[1])

    store = LocalDataStore(Cfg())
    staged = store.blobs.stage(b"staged by a writer in another process")
    print(staged.tmp, flush=True)
    if sys.argv[2] == "die":
        os._exit(0)  # like kill -9: no cleanup of any kind runs
    sys.stdin.readline()  # the test opens a store meanwhile
    store.publish([staged])
    print(store.blobs.path(staged.hash), flush=True)
    """
)


def writer(config, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(config.home), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_open_removes_the_temp_files_of_a_dead_writer(config):
    LocalDataStore(config).close()
    child = writer(config, "die")
    tmp = child.stdout.readline().strip()
    assert child.wait(timeout=60) == 0
    store = LocalDataStore(config).blobs  # the dead writer's file is fresh: its free lock says it is dead
    assert tmp and not os.path.exists(tmp)
    assert list(store.tmp.iterdir()) == [] and list(store.writers.iterdir()) == []


def test_open_keeps_the_temp_files_of_a_live_writer_in_another_process(config):
    LocalDataStore(config).close()
    child = writer(config, "live")
    try:
        tmp = child.stdout.readline().strip()
        age(tmp, 10 * blobs_module.TMP_GRACE_S)  # however old: its writer is alive
        LocalDataStore(config).close()
        LocalDataStore(config).collect_garbage()
        assert os.path.exists(tmp)
        child.stdin.write("go\n")
        child.stdin.flush()
        published = child.stdout.readline().strip()
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
    with open(published, "rb") as f:
        assert f.read() == b"staged by a writer in another process"


def test_a_second_store_in_the_same_process_keeps_the_first_ones_temp_files(config):
    first = LocalDataStore(config)
    first.create_repo("r")
    staged = first.blobs.stage(b"not yet published")
    LocalDataStore(config).close()
    assert os.path.exists(staged.tmp)
    first.publish([staged])
    assert first.blobs.read(staged.hash, "x") == b"not yet published"


def test_lockless_temp_files_go_by_age(config):
    blobs = LocalDataStore(config).blobs
    old, fresh = blobs.tmp / "123-456-abcd", blobs.tmp / "123-789-abcd"  # the names before writer locks
    old.write_bytes(b"old")
    fresh.write_bytes(b"fresh")
    age(old, 2 * blobs_module.TMP_GRACE_S)
    LocalDataStore(config).close()
    assert not old.exists() and fresh.exists()


def test_folders_that_received_blobs_are_fsynced_once_each_before_the_commit(config, monkeypatch):
    store = LocalDataStore(config)
    store.create_repo("r")
    folders = {os.stat(p).st_ino: p.name for p in store.blobs.root.iterdir() if len(p.name) == 2 or p.name == "packs"}
    events: list[str] = []
    real_fsync, real_commit = os.fsync, store._new_commit

    def spy(fd):
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode) and st.st_ino in folders:
            events.append(folders[st.st_ino])
        return real_fsync(fd)

    def commit(*args):
        events.append("commit")
        return real_commit(*args)

    monkeypatch.setattr(os, "fsync", spy)
    monkeypatch.setattr(store, "_new_commit", commit)
    from dlptui.platform.local.blobs import PACK_LIMIT

    files = {f"/f{i}": f"content {i}".encode() * (PACK_LIMIT // 9 if i < 20 else 1) for i in range(200)}
    store.put_files("r", "master", files)
    touched = {e.hash[:2] for e in store.list_files("r", "master", "/", recursive=True) if e.size_bytes > PACK_LIMIT}
    assert len(touched) > 5 and events[-1] == "commit"
    # each folder once, however many blobs it received: the 20 large ones' and the packs' (the 180 small ones)
    assert sorted(events[:-1]) == sorted(touched | {"packs"})

    events.clear()
    store.put_files("r", "master", files)  # nothing new: no folder received a rename
    assert events == ["commit"]
