"""The local registry over a really trained experiment: versions, aliases, audit history, errors."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.metrics import accuracy, best_checkpoint
from dlptui.platform.model import Checkpoint


def _experiment(platform):
    [experiment] = platform.training.list_experiments()
    return experiment


def test_register_takes_the_best_checkpoint_and_records_its_lineage(trained_platform):
    registry, training = trained_platform.registry, trained_platform.training
    experiment = _experiment(trained_platform)
    checkpoints = training.checkpoints(experiment.id)
    version = registry.register("dogcat-model", experiment.id, notes="first")

    assert version.version == 1 and version.model == "dogcat-model"
    assert version.checkpoint_uuid == best_checkpoint(checkpoints).uuid
    best = max(accuracy(c.metrics) for c in checkpoints)
    assert accuracy(training.checkpoint(version.checkpoint_uuid).metrics) == best
    assert version.experiment_id == experiment.id
    assert version.data_repo == "dogs-and-cats" and version.data_commit == experiment.data_commit
    assert version.checkpoint_location and version.metrics
    assert version.notes == "first"

    model = registry.get_model("dogcat-model")
    assert model.versions == 1 and model.aliases == {}
    assert [m.name for m in registry.list_models()] == ["dogcat-model"]


def test_register_a_chosen_checkpoint_and_refuse_twins(trained_platform):
    registry, training = trained_platform.registry, trained_platform.training
    experiment = _experiment(trained_platform)
    first, *_ = sorted(training.checkpoints(experiment.id), key=lambda c: c.batch)
    version = registry.register("dogcat-model", experiment.id, checkpoint_uuid=first.uuid)
    assert version.checkpoint_uuid == first.uuid
    with pytest.raises(Conflict, match="already version 1"):
        registry.register("dogcat-model", experiment.id, checkpoint_uuid=first.uuid)


def test_best_checkpoint_ties_go_to_the_latest():
    def ckpt(uuid, batch, acc):
        return Checkpoint(uuid, "1", "1", batch, float(batch), "/x", {"accuracy": acc} if acc is not None else {})

    assert best_checkpoint([ckpt("a", 10, 0.5), ckpt("b", 20, 0.5), ckpt("c", 30, 0.4)]).uuid == "b"
    assert best_checkpoint([ckpt("a", 10, 0.9), ckpt("b", 20, None)]).uuid == "a"
    assert best_checkpoint([]) is None


def _two_versions(platform):
    registry, training = platform.registry, platform.training
    experiment = _experiment(platform)
    a, b, *_ = sorted(training.checkpoints(experiment.id), key=lambda c: c.batch)
    registry.register("dogcat-model", experiment.id, a.uuid)
    registry.register("dogcat-model", experiment.id, b.uuid)
    return registry


def test_aliases_move_one_version_per_alias_and_history_records_from_and_to(trained_platform):
    registry = _two_versions(trained_platform)
    p1 = registry.promote("dogcat-model", 1, "staging", who="alice")
    assert (p1.from_version, p1.to_version, p1.who) == (None, 1, "alice")
    registry.promote("dogcat-model", 2, "staging", who="bob")
    registry.promote("dogcat-model", 1, "production")

    assert registry.get_model("dogcat-model").aliases == {"production": 1, "staging": 2}
    assert registry.get_version("dogcat-model", "staging").version == 2
    assert registry.get_version("dogcat-model", "production").version == 1
    assert registry.get_version("dogcat-model", "latest").version == 2
    assert registry.get_version("dogcat-model", "1").aliases == ("production",)
    versions = registry.list_versions("dogcat-model")
    assert [v.aliases for v in versions] == [("production",), ("staging",)]

    history = registry.history("dogcat-model")
    assert [(h.alias, h.from_version, h.to_version) for h in history] == [
        ("staging", None, 1),
        ("staging", 1, 2),
        ("production", None, 1),
    ]
    assert [h.who for h in history][:2] == ["alice", "bob"]
    assert history[2].who  # $USER or the login name
    assert history[0].time <= history[1].time <= history[2].time

    with sqlite3.connect(registry.path) as conn:  # one row per alias, whatever moved
        rows = conn.execute("SELECT alias, COUNT(*) FROM aliases GROUP BY alias").fetchall()
    assert sorted(rows) == [("production", 1), ("staging", 1)]


def test_concurrent_promotions_keep_history_and_alias_consistent(trained_platform):
    registry = _two_versions(trained_platform)
    threads = [
        threading.Thread(target=registry.promote, args=("dogcat-model", 1 + i % 2, "staging", f"user{i}"))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = registry.history("dogcat-model")
    assert len(history) == 8
    for before, after in zip(history, history[1:]):
        assert after.from_version == before.to_version  # each move saw the one before it
    assert registry.get_model("dogcat-model").aliases["staging"] == history[-1].to_version


def test_unknown_names_give_not_found_with_a_sentence(trained_platform):
    registry = trained_platform.registry
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        registry.get_model("ghost")
    with pytest.raises(NotFound):
        registry.history("ghost")
    with pytest.raises(NotFound):
        registry.register("dogcat-model", "999999")
    registry.register("dogcat-model", _experiment(trained_platform).id)
    with pytest.raises(NotFound, match="no version 7"):
        registry.get_version("dogcat-model", 7)
    with pytest.raises(NotFound, match="production"):
        registry.get_version("dogcat-model", "production")
    with pytest.raises(NotFound):
        registry.promote("dogcat-model", 5, "staging")
    with pytest.raises(InvalidInput, match="not an alias"):
        registry.promote("dogcat-model", 1, "canary")
    with pytest.raises(InvalidInput):
        registry.get_version("dogcat-model", "newest")
    with pytest.raises(InvalidInput):
        registry.register("bad name!", _experiment(trained_platform).id)
    with pytest.raises(NotFound):
        registry.register("dogcat-model", _experiment(trained_platform).id, checkpoint_uuid="no-such-checkpoint")


def test_health_counts_models(trained_platform):
    health = trained_platform.registry.health()
    assert health.reachable and health.detail == "0 models"
    trained_platform.registry.register("dogcat-model", _experiment(trained_platform).id)
    assert trained_platform.registry.health().detail == "1 models"


def test_lineage_of_a_version_down_to_the_data_commit(trained_platform):
    from dlptui.actions.lineage import trace

    experiment = _experiment(trained_platform)
    version = trained_platform.registry.register("dogcat-model", experiment.id)
    trained_platform.registry.promote("dogcat-model", version.version, "staging")
    chain = trace(trained_platform, "dogcat-model@staging")
    assert [s.kind for s in chain.steps] == ["version", "checkpoint", "experiment", "data commit"]
    assert [s.id for s in chain.steps] == [
        "dogcat-model@1",
        version.checkpoint_uuid,
        experiment.id,
        f"dogs-and-cats@{experiment.data_commit}",
    ]
    assert chain.missing == ""


def test_lineage_stops_with_a_sentence_where_a_link_is_gone(trained_platform):
    from dataclasses import replace

    from dlptui.actions.lineage import of_version, trace

    version = trained_platform.registry.register("dogcat-model", _experiment(trained_platform).id)
    broken = of_version(trained_platform, replace(version, checkpoint_uuid="deleted-checkpoint"))
    assert [s.kind for s in broken.steps] == ["version"]
    assert broken.missing.startswith("The chain stops at version dogcat-model@1")
    with pytest.raises(NotFound):
        trace(trained_platform, "dogcat-model@9")
    with pytest.raises(NotFound, match="no deployment"):
        trace(trained_platform, "no-such-deployment")
    with pytest.raises(InvalidInput):
        trace(trained_platform, "dogcat-model@")
