"""ports.Registry, once for both profiles: the embedded registry and Determined's model registry (the
master stand-in). The experiments it registers from are seeded where each profile keeps them."""

from __future__ import annotations

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import Model, ModelVersion, Promotion, Service
from tests.contract.checks import one_sentence
from tests.standins import DATA_COMMIT, DATA_REPO

pytestmark = pytest.mark.timeout(60)

# validation_loss is best at batch 50, accuracy at batch 100: the searcher metric decides
REPORTS = [
    ("validation", 50, {"validation_loss": 0.30, "accuracy": 0.70}),
    ("validation", 100, {"validation_loss": 0.40, "accuracy": 0.90}),
]


@pytest.fixture
def experiment(seed):
    return seed.experiment(reports=REPORTS, checkpoints=[50, 100])


@pytest.fixture
def model(fresh_name):
    return fresh_name("model")


@pytest.fixture
def two_versions(registry, experiment, model):
    """`model` with version 1 (the batch-50 checkpoint) and version 2 (the batch-100 one)."""
    first, second = experiment.checkpoints
    registry.register(model, experiment.id, first)
    registry.register(model, experiment.id, second)
    return model


# --- registering ---------------------------------------------------------------------------------


def test_register_takes_the_best_checkpoint_by_the_searcher_metric_and_records_lineage(registry, experiment, model):
    version = registry.register(model, experiment.id, notes="first cut")
    assert isinstance(version, ModelVersion)
    assert (version.model, version.version, version.checkpoint_uuid) == (model, 1, experiment.checkpoints[0])
    assert (version.experiment_id, version.data_repo, version.data_commit) == (experiment.id, DATA_REPO, DATA_COMMIT)
    assert version.metrics == {"validation_loss": 0.30, "accuracy": 0.70}
    assert version.checkpoint_location and version.notes == "first cut" and version.aliases == ()
    assert registry.get_version(model, 1) == version


def test_a_larger_is_better_searcher_metric_picks_the_largest(registry, seed, model):
    by_accuracy = seed.experiment(metric="accuracy", smaller_is_better=False, reports=REPORTS, checkpoints=[50, 100])
    assert registry.register(model, by_accuracy.id).checkpoint_uuid == by_accuracy.checkpoints[1]


def test_a_tie_on_the_searcher_metric_goes_to_the_later_checkpoint(registry, seed, model):
    tied = seed.experiment(
        reports=[("validation", 50, {"validation_loss": 0.3}), ("validation", 100, {"validation_loss": 0.3})],
        checkpoints=[50, 100],
    )
    assert registry.register(model, tied.id).checkpoint_uuid == tied.checkpoints[1]


def test_without_validations_the_latest_checkpoint_is_taken(registry, seed, model):
    unscored = seed.experiment(reports=[("training", 10, {"loss": 0.9})], checkpoints=[5, 10])
    assert registry.register(model, unscored.id).checkpoint_uuid == unscored.checkpoints[1]


def test_without_the_searcher_metric_the_highest_accuracy_is_taken(registry, seed, model):
    """Validations that lack the searcher metric (here validation_loss) but carry accuracy: both profiles take the
    highest accuracy, not the latest checkpoint (the experiment is paused: no checkpoint GC has run on a master)."""
    unscored = seed.experiment(reports=[("validation", 50, {"accuracy": 0.9}), ("validation", 100, {"accuracy": 0.7})],
                               checkpoints=[50, 100], state="paused")
    assert registry.register(model, unscored.id).checkpoint_uuid == unscored.checkpoints[0]


def test_versions_are_numbered_from_one_and_listed_in_order(registry, experiment, model, seed):
    assert model not in [m.name for m in registry.list_models()]
    first, second = experiment.checkpoints
    other = seed.experiment(reports=REPORTS, checkpoints=[50])
    numbers = [
        registry.register(model, experiment.id, second).version,
        registry.register(model, experiment.id, first).version,
        registry.register(model, other.id).version,
    ]
    assert numbers == [1, 2, 3]
    versions = registry.list_versions(model)
    assert [(v.version, v.checkpoint_uuid) for v in versions] == [(1, second), (2, first), (3, other.checkpoints[0])]
    assert [v.experiment_id for v in versions] == [experiment.id, experiment.id, other.id]
    shown = registry.get_model(model)
    assert isinstance(shown, Model) and (shown.name, shown.versions, shown.aliases) == (model, 3, {})
    listed = registry.list_models()
    assert model in [m.name for m in listed] and [m.name for m in listed] == sorted(m.name for m in listed)
    assert registry.get_version(model, "latest").version == 3
    assert registry.get_version(model, "2") == versions[1]


def test_registering_a_checkpoint_twice_is_a_conflict_and_adds_nothing(registry, experiment, model):
    first = registry.register(model, experiment.id)
    for again in (lambda: registry.register(model, experiment.id), lambda: registry.register(model, experiment.id, first.checkpoint_uuid)):
        with pytest.raises(Conflict) as info:
            again()
        one_sentence(info, first.checkpoint_uuid, model)
    assert [v.version for v in registry.list_versions(model)] == [1]


def test_the_same_checkpoint_may_be_a_version_of_two_models(registry, experiment, model):
    a = registry.register(model, experiment.id)
    b = registry.register(model + "-twin", experiment.id)
    assert (a.checkpoint_uuid, a.version) == (b.checkpoint_uuid, b.version)


def test_an_experiment_without_a_checkpoint_cannot_be_registered(registry, seed, model):
    bare = seed.experiment(reports=REPORTS, checkpoints=[])
    with pytest.raises(Conflict) as info:
        registry.register(model, bare.id)
    one_sentence(info, bare.id)
    assert model not in [m.name for m in registry.list_models()]


def test_a_checkpoint_of_another_experiment_is_refused(registry, experiment, seed, model):
    other = seed.experiment(reports=REPORTS, checkpoints=[50])
    with pytest.raises(InvalidInput) as info:
        registry.register(model, other.id, experiment.checkpoints[0])
    one_sentence(info, experiment.checkpoints[0], other.id)
    assert model not in [m.name for m in registry.list_models()]


def test_register_of_a_trial_takes_its_best_checkpoint_and_refuses_another_experiments(registry, training, experiment, seed, model):
    [trial] = [t.id for t in training.list_trials(experiment.id)]
    version = registry.register(model, experiment.id, trial_id=trial)
    assert version.checkpoint_uuid == experiment.checkpoints[0]  # the trial's best by validation_loss
    other = seed.experiment(reports=REPORTS, checkpoints=[50])
    with pytest.raises(InvalidInput) as info:
        registry.register(model, other.id, trial_id=trial)
    one_sentence(info, trial, other.id)
    with pytest.raises(NotFound) as info:
        registry.register(model, experiment.id, trial_id="987654")
    one_sentence(info, "987654")
    assert [v.version for v in registry.list_versions(model)] == [1]


def test_register_names_what_is_not_there(registry, experiment, model):
    for call, named in [
        (lambda: registry.register(model, "999"), "999"),
        (lambda: registry.register(model, "abc"), "abc"),
        (lambda: registry.register(model, experiment.id, "no-such-checkpoint"), "no-such-checkpoint"),
    ]:
        with pytest.raises(NotFound) as info:
            call()
        one_sentence(info, named)
    assert model not in [m.name for m in registry.list_models()]


@pytest.mark.parametrize("bad", ["bad name", "a/b", "", "-dash-first", "1", "123"])
def test_a_model_name_outside_the_rule_is_invalid(registry, experiment, bad):
    before = {m.name: m.versions for m in registry.list_models()}
    with pytest.raises(InvalidInput) as info:
        registry.register(bad, experiment.id)
    one_sentence(info, repr(bad))
    assert {m.name: m.versions for m in registry.list_models()} == before  # no version went anywhere


def test_a_name_of_digits_names_no_model(registry, two_versions):
    """On Determined an identifier of digits is a model id; no profile reads "1" as some other model."""
    for call in (lambda: registry.get_model("1"), lambda: registry.list_versions("1"), lambda: registry.get_version("1", 1),
                 lambda: registry.history("1"), lambda: registry.promote("1", 1, "staging")):
        with pytest.raises(NotFound) as info:
            call()
        one_sentence(info, "'1'")


# --- aliases and the audit history ------------------------------------------------------------------


def test_promote_moves_one_alias_per_model_and_the_history_is_oldest_first(registry, two_versions):
    model = two_versions
    first = registry.promote(model, 1, "production", who="alice")
    assert isinstance(first, Promotion)
    assert (first.model, first.alias, first.from_version, first.to_version, first.who) == (model, "production", None, 1, "alice")
    moved = registry.promote(model, 2, "production")
    assert (moved.from_version, moved.to_version) == (1, 2) and moved.who  # someone, by default the user
    registry.promote(model, 1, "staging", who="bob")

    assert registry.get_model(model).aliases == {"production": 2, "staging": 1}
    assert {v.version: v.aliases for v in registry.list_versions(model)} == {1: ("staging",), 2: ("production",)}
    assert registry.get_version(model, "production").version == 2
    assert registry.get_version(model, "staging").version == 1
    history = registry.history(model)
    assert [(h.alias, h.from_version, h.to_version) for h in history] == [("production", None, 1), ("production", 1, 2), ("staging", None, 1)]
    assert [h.who for h in history][::2] == ["alice", "bob"]
    assert [h.time for h in history] == sorted(h.time for h in history)


def test_one_version_may_hold_both_aliases(registry, two_versions):
    registry.promote(two_versions, 2, "staging")
    registry.promote(two_versions, 2, "production")
    assert registry.get_version(two_versions, 2).aliases == ("production", "staging")


def test_a_model_without_promotions_has_an_empty_history(registry, two_versions):
    assert registry.history(two_versions) == []


def test_promote_mistakes_change_nothing(registry, two_versions):
    model = two_versions
    registry.promote(model, 1, "production")
    with pytest.raises(InvalidInput) as info:
        registry.promote(model, 2, "canary")
    one_sentence(info, "canary")
    with pytest.raises(NotFound) as info:
        registry.promote(model, 9, "production")
    one_sentence(info, "9", model)
    assert registry.get_model(model).aliases == {"production": 1}
    assert len(registry.history(model)) == 1


# --- mistakes: one sentence each ----------------------------------------------------------------


def test_an_unknown_model_is_not_found_everywhere(registry, fresh_name):
    ghost = fresh_name("ghost")
    for call in (
        lambda: registry.get_model(ghost),
        lambda: registry.list_versions(ghost),
        lambda: registry.get_version(ghost, 1),
        lambda: registry.get_version(ghost, "latest"),
        lambda: registry.history(ghost),
        lambda: registry.promote(ghost, 1, "staging"),
    ):
        with pytest.raises(NotFound) as info:
            call()
        one_sentence(info, ghost)
    assert ghost not in [m.name for m in registry.list_models()]


def test_version_refs_that_name_nothing(registry, two_versions):
    model = two_versions
    for ref in (9, "9", 0):
        with pytest.raises(NotFound) as info:
            registry.get_version(model, ref)
        one_sentence(info, str(ref), model)
    with pytest.raises(NotFound) as info:  # an alias nobody holds yet
        registry.get_version(model, "production")
    one_sentence(info, "production", model)
    for ref in ("v7", "-1", "newest"):
        with pytest.raises(InvalidInput) as info:
            registry.get_version(model, ref)
        one_sentence(info, ref, model)


def test_health_is_a_reachable_service_of_the_registry_part(registry):
    service = registry.health()
    assert isinstance(service, Service)
    assert (service.part, service.reachable) == ("registry", True), service.detail
