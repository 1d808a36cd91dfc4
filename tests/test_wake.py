"""The pipeline runner's sleep (`local/wake.py`): a write in a watched folder or a poke wakes it at once, nothing else
does, and it looks again a few times after each change; with inotify and with the once-a-second comparison."""

from __future__ import annotations

import threading
import time

import pytest

from dlptui.platform.local import wake


@pytest.fixture(params=["inotify", "comparison"])
def waker(request, tmp_path, monkeypatch):
    if request.param == "comparison":
        monkeypatch.setattr(wake, "_inotify", lambda folders: None)
    w = wake.Waker([tmp_path])
    assert w.watching is (request.param == "inotify")
    yield w
    w.close()


def timed(w, timeout):
    began = time.monotonic()
    return w.wait(timeout), time.monotonic() - began


def test_nothing_happening_is_a_full_sleep(waker):
    woke, took = timed(waker, 1.2)
    assert not woke and took >= 1.2


def test_a_write_in_the_folder_wakes_it_then_it_looks_again_and_sleeps(waker, tmp_path):
    timer = threading.Timer(0.3, lambda: (tmp_path / "meta.db-wal").write_bytes(b"frame"))
    timer.start()
    try:
        woke, took = timed(waker, 30)
        assert woke and took < 5  # inotify: at once; the comparison: within its second
        looks = [timed(waker, 30) for _ in wake.AFTER_S]  # the looks again after a change, without a change
        assert all(w for w, _ in looks) and sum(t for _, t in looks) < max(wake.AFTER_S) + 2
        assert timed(waker, 1.0) == (False, pytest.approx(1.0, abs=0.5))
    finally:
        timer.cancel()


def test_a_poke_wakes_it_at_once(waker):
    threading.Timer(0.2, waker.poke).start()
    woke, took = timed(waker, 30)
    assert woke and took < 2
