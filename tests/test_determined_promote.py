"""Two consoles promoting on one Determined master (the stand-in, tests/standins/det_master.py) lose no update.

The master's PatchModel replaces a model's metadata whole, so a promotion is read-modify-write;
the stand-in's request hook plays the interleavings that lose one.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from dlptui.errors import Conflict
from dlptui.platform.cluster import determined_registry
from dlptui.platform.cluster.determined_registry import DeterminedRegistry
from tests.standins.det_master_state import CHECKPOINTS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def consoles(standin_cluster_env):
    a, b = DeterminedRegistry(standin_cluster_env), DeterminedRegistry(standin_cluster_env)
    model = f"dogcat-{uuid.uuid4().hex[:6]}"
    a.register(model, "1")
    a.register(model, "1", CHECKPOINTS[0])
    return a, b, model


def late_write(state, path: str) -> threading.Event:
    """Install on the stand-in: the first PATCH of `path` (console A's) is held until the second (B's) has
    landed, and lands right after it, before B hears back. Returns the event set once A's write is on its way."""
    a_sent, b_applied, a_applied = threading.Event(), threading.Event(), threading.Event()
    counts = {"before": 0, "after": 0}
    lock = threading.Lock()

    def interleave(method, where, stage):
        if (method, where) != ("PATCH", path):
            return
        with lock:
            counts[stage] += 1
            n = counts[stage]
        if stage == "before" and n == 1:
            a_sent.set()
            b_applied.wait(30)
        elif stage == "after" and n == 1:
            b_applied.set()
            a_applied.wait(30)
        elif stage == "after" and n == 2:
            a_applied.set()

    interleave.counts = counts
    state.hook = interleave
    return a_sent


def test_a_write_that_lands_late_does_not_erase_the_other_consoles_promotion(consoles, det_master_standin_server):
    """A reads, B reads, B writes, A's slower write lands on top of B's: today B's promotion is gone."""
    a, b, model = consoles
    a_sent = late_write(det_master_standin_server.state, f"/api/v1/models/{model}")
    done: dict = {}
    first = threading.Thread(target=lambda: done.setdefault("a", a.promote(model, 1, "staging", who="alice")))
    first.start()
    assert a_sent.wait(30)
    by_b = b.promote(model, 2, "production", who="bob")
    first.join(30)
    interleave_counts = det_master_standin_server.state.hook.counts
    det_master_standin_server.state.hook = None

    assert done["a"].to_version == 1 and by_b.to_version == 2
    assert a.get_model(model).aliases == {"staging": 1, "production": 2}
    assert sorted((h.alias, h.to_version, h.who) for h in a.history(model)) == [("production", 2, "bob"), ("staging", 1, "alice")]
    assert interleave_counts["before"] >= 3  # B saw its write undone and wrote again


def test_the_same_alias_moved_by_two_consoles_keeps_a_true_history(consoles, det_master_standin_server):
    """Both move production; the one that retried records the version it really replaced."""
    a, b, model = consoles
    a_sent = late_write(det_master_standin_server.state, f"/api/v1/models/{model}")
    first = threading.Thread(target=a.promote, args=(model, 1, "production", "alice"))
    first.start()
    assert a_sent.wait(30)
    b.promote(model, 2, "production", who="bob")
    first.join(30)
    det_master_standin_server.state.hook = None

    history = [(h.from_version, h.to_version, h.who) for h in a.history(model)]
    assert history == [(None, 1, "alice"), (1, 2, "bob")]
    assert a.get_model(model).aliases == {"production": 2}


def test_a_promotion_undone_on_every_attempt_ends_in_one_conflict_sentence(consoles, det_master_standin_server, monkeypatch):
    a, _, model = consoles
    monkeypatch.setattr(determined_registry, "PROMOTE_BACKOFF_S", 0.0)
    state = det_master_standin_server.state
    path = f"/api/v1/models/{model}"
    writes = []

    def rival(method, where, stage):  # another console's write lands right after each of ours
        if (method, where, stage) == ("PATCH", path, "after"):
            writes.append(where)
            with state.lock:
                state.models[model]["metadata"] = {"dlptui": {"aliases": {"production": 2}, "history": [
                    {"alias": "production", "from_version": None, "to_version": 2, "who": "rival", "time": float(len(writes))}]}}

    state.hook = rival
    with pytest.raises(Conflict) as caught:
        a.promote(model, 1, "staging")
    state.hook = None
    assert str(caught.value) == (
        f"Version 1 of {model!r} could not be promoted to staging: other consoles changed the model's aliases "
        f"during each of {determined_registry.PROMOTE_ATTEMPTS} attempts; look at its history and try again."
    )
    assert len(writes) == determined_registry.PROMOTE_ATTEMPTS


def test_an_undisturbed_promotion_writes_once(consoles, det_master_standin_server):
    a, _, model = consoles
    writes = []
    det_master_standin_server.state.hook = lambda m, p, s: writes.append(p) if (m, s) == ("PATCH", "before") else None
    a.promote(model, 2, "production")
    det_master_standin_server.state.hook = None
    assert writes == [f"/api/v1/models/{model}"]
    assert a.get_model(model).aliases == {"production": 2}
