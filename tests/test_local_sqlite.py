"""The local parts' SQLite: durable commits, and a close that never pulls a connection from a running transaction."""

from __future__ import annotations


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
