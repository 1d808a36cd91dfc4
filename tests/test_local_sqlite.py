"""The local parts' SQLite: durable commits, and a close that never pulls a connection from a running transaction."""

from __future__ import annotations

import sqlite3

import pytest


def test_closing_waits_for_a_transaction_in_another_thread(tmp_path):
    """close() must not pull a connection from under a running transaction (SQLite can crash then)."""
    import threading

    from dlptui.platform.local.sqlite import Database

    db = Database(tmp_path / "t.db", "CREATE TABLE IF NOT EXISTS t (x INTEGER)", busy="The test database is", timeout_s=2)
    inside, release, finished = threading.Event(), threading.Event(), []

    def reader() -> None:
        with db.read() as conn:
            inside.set()
            release.wait(5)
            finished.append(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])  # still usable

    thread = threading.Thread(target=reader)
    thread.start()
    assert inside.wait(5)
    closer = threading.Thread(target=db.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() did not wait for the transaction"
    release.set()
    thread.join(5)
    closer.join(5)
    assert finished == [0] and not closer.is_alive()
    with db.write() as conn:  # a new connection after the close
        conn.execute("INSERT INTO t VALUES (1)")
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1


def test_commits_are_synced_to_disk(tmp_path):
    from dlptui.platform.local.sqlite import Database

    db = Database(tmp_path / "t.db", "CREATE TABLE IF NOT EXISTS t (x INTEGER)", busy="The test database is", timeout_s=2)
    with db.read() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


STORES = [
    ("data/meta.db", ("data", "repos")),
    ("data/blobs/packs.db", ("data", "repos")),
    ("pipelines/meta.db", ("pipeline", "list")),
    ("training/training.db", ("experiment", "list")),
    ("registry/registry.sqlite", ("model", "list")),
]


@pytest.mark.parametrize("relative, argv", STORES, ids=[s[0] for s in STORES])
def test_an_overwritten_store_file_is_one_sentence_naming_it(home, capsys, relative, argv):
    from tests.helpers import run

    code, _, err = run(capsys, *argv)  # the store's first use makes its file
    assert code == 0, err
    path = home / relative
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    path.write_bytes(b"these bytes were never a database\n" * 200)
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err == f"dlptui: {path} is damaged (SQLite: file is not a database); restore it from a backup, or move it " \
                  "aside so that dlptui starts an empty one (what it recorded is then lost).\n"


def test_a_damaged_prediction_log_is_one_sentence_and_a_missing_one_is_empty(tmp_path):
    from dlptui.errors import PlatformError
    from dlptui.platform.local import prediction_log

    log = tmp_path / "predictions.sqlite"
    readers = {
        "read": (lambda: prediction_log.read(log, "d"), []),
        "get": (lambda: prediction_log.get(log, "d", 1), None),
        "get_many": (lambda: prediction_log.get_many(log, "d", [1, 2]), {}),
        "find": (lambda: prediction_log.find(log, "d", ["1", "x"]), [None, None]),
        "summaries": (lambda: prediction_log.summaries(log), []),
        "summary": (lambda: prediction_log.summary(log), {}),
        "agreement": (lambda: prediction_log.agreement(log), None),
        "compare": (lambda: prediction_log.compare(log, 0.0, 1, 2, "canary")[2:], (0, 0, ())),
    }
    assert {name: call() for name, (call, _) in readers.items()} == {name: empty for name, (_, empty) in readers.items()}
    made = sqlite3.connect(log)  # a log its server has not made its table in yet: empty too
    made.execute("CREATE TABLE other (x INTEGER)")
    made.commit()
    made.close()
    assert {name: call() for name, (call, _) in readers.items()} == {name: empty for name, (_, empty) in readers.items()}
    log.write_bytes(b"\x00garbage" * 500)
    for name, (call, _) in readers.items():
        with pytest.raises(PlatformError, match=f"^{log} is damaged"):
            call()


def test_a_damaged_file_met_inside_a_transaction_is_the_same_sentence(tmp_path):
    """A file damaged while the store is open (another process overwrote it): the next transaction says so."""
    from dlptui.errors import PlatformError
    from dlptui.platform.local.sqlite import Database

    path = tmp_path / "t.db"
    db = Database(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER)", busy="The test database is", timeout_s=2)
    try:
        db.close()
        for leftover in (path.with_name("t.db-wal"), path.with_name("t.db-shm")):
            leftover.unlink(missing_ok=True)
        path.write_bytes(b"garbage " * 1000)
        with pytest.raises(PlatformError, match=f"^{path} is damaged"):
            with db.read() as conn:
                conn.execute("SELECT COUNT(*) FROM t").fetchone()
    finally:
        db.close()
