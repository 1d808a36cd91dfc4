"""Small blobs in packs: one pack file per put, indexed once durable, read back verified, collected when dead."""

from __future__ import annotations

import hashlib

from dlptui.platform.local.blobs import PACK_LIMIT
from dlptui.platform.local.datastore import LocalDataStore


def packs(store: LocalDataStore) -> set[str]:
    return {p.stem for p in store.blobs.packs.glob("*.pack")}


def indexed(store: LocalDataStore) -> dict[str, str]:
    with store.blobs.index.read() as db:
        return dict(db.execute("SELECT hash, pack FROM packed").fetchall())


def test_a_put_of_small_files_is_one_pack_and_no_file_per_blob(config):
    store = LocalDataStore(config)
    store.create_repo("r")
    files = {f"/img/{i}.jpg": f"photo {i}".encode() * 50 for i in range(300)}
    store.put_files("r", "master", files | {"/big.bin": b"x" * (PACK_LIMIT + 1)})
    assert len(packs(store)) == 1
    assert list(store.blobs.root.glob("??/*")) == [store.blobs.path(hashlib.sha256(b"x" * (PACK_LIMIT + 1)).hexdigest())]
    assert set(indexed(store)) == {hashlib.sha256(v).hexdigest() for v in files.values()}
    assert all(store.get_file("r", "master", p) == v for p, v in files.items())
    assert store.verify() == []
    reopened = LocalDataStore(config)  # another process's view: the index is on disk
    assert reopened.get_file("r", "master", "/img/7.jpg") == b"photo 7" * 50


def test_the_same_content_in_one_put_is_packed_once_and_a_reput_packs_nothing(config):
    store = LocalDataStore(config)
    store.create_repo("r")
    store.put_files("r", "master", {f"/{i}": b"same bytes" for i in range(20)})
    [pack] = packs(store)
    assert (store.blobs.packs / f"{pack}.pack").stat().st_size == len(b"same bytes")
    store.put_files("r", "master", {f"/{i}": b"same bytes" for i in range(20)})
    assert packs(store) == {pack}


def test_two_writers_packing_the_same_content_keep_one_place_and_both_read_back(config):
    first, second = LocalDataStore(config), LocalDataStore(config)
    first.create_repo("a")
    second.create_repo("b")
    ones = [first.blobs.stage(b"shared content", first_pack := first.blobs.new_pack())]
    twos = [second.blobs.stage(b"shared content", second_pack := second.blobs.new_pack())]
    assert first.blobs.publish(ones) == len(b"shared content")
    assert second.blobs.publish(twos) == 0  # packed meanwhile by the other: its first place stays
    digest = hashlib.sha256(b"shared content").hexdigest()
    assert indexed(first)[digest] == first_pack.id
    assert first.blobs.read(digest, "x") == second.blobs.read(digest, "x") == b"shared content"
    assert second_pack.id in packs(second)  # dead bytes until a sweep finds no blob of it indexed
    second.collect_garbage()
    assert second_pack.id not in packs(second)


def test_garbage_collection_removes_dead_packs_and_keeps_live_ones_whole(config):
    store = LocalDataStore(config)
    store.create_repo("gone")
    store.create_repo("kept")
    store.put_files("gone", "master", {"/a": b"only in gone", "/b": b"also only in gone"})
    [dead] = packs(store)
    store.put_files("kept", "master", {"/c": b"kept one", "/d": b"dropped later"})
    [live] = packs(store) - {dead}
    store.delete_files("kept", "master", ["/d"])
    store.delete_repo("gone")  # collects garbage
    assert packs(store) == {live}
    kept = store.list_commits("kept")
    assert store.get_file("kept", kept[-1].id, "/d") == b"dropped later"  # an older commit still needs it
    assert store.get_file("kept", "master", "/c") == b"kept one"
    assert hashlib.sha256(b"only in gone").hexdigest() not in indexed(store)
    assert store.verify() == []


def test_a_pack_renamed_but_never_indexed_goes_at_the_next_collection_and_a_temp_pack_is_never_read(config):
    store = LocalDataStore(config)
    store.create_repo("r")
    orphan = store.blobs.packs / ("0" * 32 + ".pack")
    orphan.write_bytes(b"a publisher died between the rename and the index")
    pack = store.blobs.new_pack()
    staged = store.blobs.stage(b"staged, not published", pack)
    assert staged.pack is pack and not store.blobs.has(staged.hash, staged.size)  # not in the store until published
    store.blobs.discard([staged])
    store.collect_garbage()
    assert not orphan.exists() and list(store.blobs.tmp.iterdir()) == []
