"""ports.Training, once for both profiles: the local Trainer in child processes and a Determined master
(the stand-in). Finished experiments are seeded where each profile keeps them (see conftest.Seeder);
the state machine runs on a real experiment of each profile."""

from __future__ import annotations

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.model import Checkpoint, DataRef, Experiment, ExperimentState, MetricPoint, Service, Trial
from tests.contract.checks import one_sentence
from tests.standins import DATA_COMMIT, DATA_REPO

pytestmark = pytest.mark.timeout(120)

REPORTS = [
    ("training", 25, {"loss": 0.69}),
    ("training", 50, {"loss": 0.52}),
    ("validation", 50, {"validation_loss": 0.30, "accuracy": 0.70}),
    ("training", 75, {"loss": 0.41}),
    ("training", 100, {"loss": 0.33}),
    ("validation", 100, {"validation_loss": 0.40, "accuracy": 0.90}),
]
LOGS = ["starting trial", "training", "validating", "done"]


@pytest.fixture
def finished(seed):
    """A completed experiment: 100 batches, validations at 50 (the better validation_loss) and 100 (the
    better accuracy), a checkpoint after each, four log lines; its searcher metric is validation_loss."""
    return seed.experiment(reports=REPORTS, checkpoints=[50, 100], logs=LOGS, name="finished-run")


# --- reading a finished experiment ----------------------------------------------------------------


def test_a_finished_experiment_reads_back_with_its_data_and_progress(training, finished):
    experiment = training.get_experiment(finished.id)
    assert isinstance(experiment, Experiment)
    assert (experiment.id, experiment.name, experiment.state) == (finished.id, "finished-run", ExperimentState.COMPLETED)
    assert experiment.state.terminal and experiment.ended is not None and experiment.error is None
    assert (experiment.data_repo, experiment.data_commit) == (DATA_REPO, DATA_COMMIT)
    assert (experiment.batches_done, experiment.max_batches, experiment.progress) == (100, 100, 1.0)
    assert experiment.config["searcher"]["metric"] == "validation_loss"


def test_best_metrics_are_those_of_the_best_validation_by_the_searcher_metric(training, finished, seed):
    experiment = training.get_experiment(finished.id)
    assert (experiment.best_validation_loss, experiment.best_accuracy) == (0.30, 0.70)  # batch 50, not the best of each
    by_accuracy = seed.experiment(metric="accuracy", smaller_is_better=False, reports=REPORTS, checkpoints=[50, 100])
    experiment = training.get_experiment(by_accuracy.id)
    assert (experiment.best_validation_loss, experiment.best_accuracy) == (0.40, 0.90)


def test_list_experiments_is_newest_first_and_carries_the_searcher_metric(training, finished, seed):
    newer = seed.experiment(reports=REPORTS, checkpoints=[50], name="newer-run")
    listed = training.list_experiments()
    ids = [e.id for e in listed]
    assert ids.index(newer.id) < ids.index(finished.id)
    assert ids == sorted(ids, key=int, reverse=True)
    row = next(e for e in listed if e.id == finished.id)
    assert (row.name, row.state, row.data_commit, row.best_validation_loss) == ("finished-run", ExperimentState.COMPLETED, DATA_COMMIT, 0.30)


def test_metrics_come_in_report_order_and_a_cursor_gives_only_what_came_after(training, finished, seed):
    points, cursor = training.metrics(finished.id)
    assert all(isinstance(p, MetricPoint) for p in points)
    expected = [(batch, group, name, value) for group, batch, values in REPORTS for name, value in values.items()]
    assert [(p.batch, p.group, p.name, p.value) for p in points] == expected
    assert training.metrics(finished.id, cursor) == ([], cursor)  # polling again changes nothing
    seed.report(finished, "training", 101, {"loss": 0.30})
    fresh, later = training.metrics(finished.id, cursor)
    assert [(p.batch, p.group, p.name, p.value) for p in fresh] == [(101, "training", "loss", 0.30)]
    assert later != cursor and training.metrics(finished.id, later) == ([], later)


def test_logs_come_in_order_and_a_cursor_gives_only_the_new_lines(training, finished, seed):
    lines, cursor = training.logs(finished.id)
    assert [line.split("] ")[-1] for line in lines] == LOGS
    assert training.logs(finished.id, cursor) == ([], cursor)
    seed.log(finished, "one more line")
    fresh, later = training.logs(finished.id, cursor)
    assert fresh == ["one more line"] and training.logs(finished.id, later) == ([], later)


def test_checkpoints_in_batch_order_with_the_validation_metrics_of_their_batch(training, finished):
    checkpoints = training.checkpoints(finished.id)
    assert all(isinstance(c, Checkpoint) for c in checkpoints)
    assert [(c.uuid, c.batch, c.experiment_id) for c in checkpoints] == [
        (finished.checkpoints[0], 50, finished.id),
        (finished.checkpoints[1], 100, finished.id),
    ]
    assert checkpoints[0].metrics == {"validation_loss": 0.30, "accuracy": 0.70}
    assert all(c.location and c.trial_id for c in checkpoints)
    assert training.checkpoint(finished.checkpoints[1]) == checkpoints[1]


def test_an_experiment_without_reports_has_none(training, seed):
    empty = seed.experiment(state="paused")
    assert training.metrics(empty.id) == ([], 0)
    assert training.checkpoints(empty.id) == []
    experiment = training.get_experiment(empty.id)
    assert (experiment.state, experiment.batches_done, experiment.best_accuracy) == (ExperimentState.PAUSED, 0, None)


# --- state changes that the state forbids ---------------------------------------------------------


def test_a_finished_experiment_cannot_be_paused_resumed_or_killed(training, finished):
    for act in (training.pause, training.resume, training.kill):
        with pytest.raises(Conflict) as info:
            act(finished.id)
        one_sentence(info, finished.id, "completed")
    assert training.get_experiment(finished.id).state is ExperimentState.COMPLETED


def test_a_paused_experiment_cannot_be_paused_again(training, seed):
    paused = seed.experiment(state="paused")
    with pytest.raises(Conflict) as info:
        training.pause(paused.id)
    one_sentence(info, paused.id, "paused")
    assert training.get_experiment(paused.id).state is ExperimentState.PAUSED


# --- the state machine of a real experiment -------------------------------------------------------


def test_create_pins_the_data_then_pause_resume_kill(training, experiment_config, contract_platform):
    created = training.create_experiment(experiment_config, DataRef(DATA_REPO, "master"), name="contract-run")
    try:
        assert created.state in (ExperimentState.QUEUED, ExperimentState.RUNNING)
        assert created.name == "contract-run" and created.data_repo == DATA_REPO
        assert created.data_commit == contract_platform.data.resolve(DATA_REPO, "master").commit  # the full id
        assert training.list_experiments()[0].id == created.id  # the newest

        paused = training.pause(created.id)
        assert paused.state is ExperimentState.PAUSED and not paused.state.terminal
        with pytest.raises(Conflict) as info:
            training.pause(created.id)
        one_sentence(info, created.id)

        resumed = training.resume(created.id)
        assert resumed.state in (ExperimentState.QUEUED, ExperimentState.RUNNING)
        with pytest.raises(Conflict) as info:
            training.resume(created.id)
        one_sentence(info, created.id)
    finally:
        killed = training.kill(created.id)
    assert killed.state is ExperimentState.KILLED and killed.state.terminal and killed.ended is not None
    for act in (training.kill, training.resume, training.pause):
        with pytest.raises(Conflict) as info:
            act(created.id)
        one_sentence(info, created.id, "killed")
    assert training.get_experiment(created.id).state is ExperimentState.KILLED


def test_a_warm_start_and_the_job_that_started_it_are_recorded(training, experiment_config, finished):
    source = finished.checkpoints[1]
    created = training.create_experiment(experiment_config, DataRef(DATA_REPO, "master"), source_checkpoint=source, job="4f2a9c")
    try:
        assert (created.source_checkpoint, created.data_job) == (source, "4f2a9c")
        assert training.get_experiment(created.id).source_checkpoint == source
    finally:
        try:
            training.kill(created.id)
        except Conflict:  # it ended on its own already (the warm start's files are not there): nothing to stop
            pass


def test_a_warm_start_from_a_checkpoint_that_is_not_there_starts_nothing(training, experiment_config):
    before = [e.id for e in training.list_experiments()]
    with pytest.raises(NotFound) as info:
        training.create_experiment(experiment_config, DataRef(DATA_REPO, "master"), source_checkpoint="no-such-checkpoint")
    one_sentence(info, "no-such-checkpoint")
    assert [e.id for e in training.list_experiments()] == before


# --- trials -----------------------------------------------------------------------------------------


def test_a_single_searcher_experiment_has_one_trial_with_its_best(training, finished):
    [trial] = training.list_trials(finished.id)
    assert isinstance(trial, Trial) and trial.experiment_id == finished.id
    assert (trial.state, trial.batches_done) == (ExperimentState.COMPLETED, 100)
    assert trial.best_metric == 0.30  # the searcher metric's best (validation_loss, smaller is better)
    assert trial.best_checkpoint == finished.checkpoints[0]  # the checkpoint at batch 50
    assert training.get_trial(trial.id) == trial


def test_a_trials_metrics_and_logs_are_its_own_with_a_cursor(training, finished):
    [trial] = training.list_trials(finished.id)
    points, cursor = training.trial_metrics(trial.id)
    assert [(p.group, p.batch, p.name) for p in points] == [(p.group, p.batch, p.name) for p in training.metrics(finished.id)[0]]
    assert all(p.trial_id == trial.id for p in points)
    assert training.trial_metrics(trial.id, cursor) == ([], cursor)
    lines, cursor = training.trial_logs(trial.id)
    assert lines == LOGS and training.trial_logs(trial.id, cursor) == ([], cursor)


SEARCH = [  # (hyperparameters, reports, checkpoint batches) of each trial; accuracy is the searcher metric
    ({"learning_rate": 0.01}, [("validation", 50, {"accuracy": 0.6}), ("validation", 100, {"accuracy": 0.7})], [50, 100]),
    ({"learning_rate": 0.001}, [("validation", 50, {"accuracy": 0.8}), ("validation", 100, {"accuracy": 0.75})], [50, 100]),
    ({"learning_rate": 0.1}, [("training", 25, {"loss": 0.9}), ("validation", 50, {"accuracy": 0.5})], [50]),
]


def test_a_search_has_several_trials_each_with_its_own_best(training, registry, seed, fresh_name):
    search = seed.search(SEARCH)
    trials = training.list_trials(search.id)
    assert [t.id for t in trials] == search.trials and [int(t.id) for t in trials] == sorted(int(t.id) for t in trials)
    assert [t.hparams for t in trials] == [hp for hp, _, _ in SEARCH]  # only what the search drew
    assert [t.best_metric for t in trials] == [0.7, 0.8, 0.5]
    first, second, third = (search.checkpoints[0:2], search.checkpoints[2:4], search.checkpoints[4:])
    assert [t.best_checkpoint for t in trials] == [first[1], second[0], third[0]]
    assert {t.state for t in trials} == {ExperimentState.COMPLETED} and {t.experiment_id for t in trials} == {search.id}
    assert [training.get_trial(t.id) for t in trials] == trials
    assert training.get_experiment(search.id).best_accuracy == 0.8  # the best trial's
    assert {p.trial_id for p in training.metrics(search.id)[0]} == set(search.trials)
    points, _ = training.trial_metrics(trials[2].id)
    assert [(p.group, p.batch, p.name) for p in points] == [("training", 25, "loss"), ("validation", 50, "accuracy")]
    model = fresh_name("searched")
    assert registry.register(model, search.id).checkpoint_uuid == second[0]  # the best trial's best checkpoint
    assert registry.register(model, search.id, trial_id=trials[0].id).checkpoint_uuid == first[1]


@pytest.mark.parametrize("unknown", ["987654", "abc"])
def test_an_unknown_trial_is_not_found_everywhere(training, unknown):
    for call in (training.get_trial, training.trial_metrics, training.trial_logs):
        with pytest.raises(NotFound) as info:
            call(unknown)
        one_sentence(info, unknown)


# --- mistakes: one sentence each ----------------------------------------------------------------


@pytest.mark.parametrize("unknown", ["999", "abc"])
def test_an_unknown_experiment_is_not_found_everywhere(training, unknown):
    for call in (
        training.get_experiment, training.metrics, training.logs, training.checkpoints,
        training.pause, training.resume, training.kill,
    ):  # fmt: skip
        with pytest.raises(NotFound) as info:
            call(unknown)
        one_sentence(info, unknown)


def test_an_unknown_checkpoint_is_not_found(training):
    with pytest.raises(NotFound) as info:
        training.checkpoint("no-such-checkpoint")
    one_sentence(info, "no-such-checkpoint")


def test_a_missing_config_file_is_not_found(training, tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(NotFound) as info:
        training.create_experiment(missing)
    one_sentence(info, str(missing))


@pytest.mark.parametrize("text", ["name: [unclosed\n", "- a list\n- not a mapping\n"])
def test_a_config_that_is_not_a_yaml_mapping_is_invalid_and_starts_nothing(training, tmp_path, text):
    before = [e.id for e in training.list_experiments()]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(InvalidInput) as info:
        training.create_experiment(bad)
    one_sentence(info, str(bad))
    assert [e.id for e in training.list_experiments()] == before


def test_data_that_is_not_there_is_not_found_and_starts_nothing(training, experiment_config):
    before = [e.id for e in training.list_experiments()]
    with pytest.raises(NotFound) as info:
        training.create_experiment(experiment_config, DataRef("nothing-here", "master"))
    one_sentence(info, "nothing-here")
    with pytest.raises(NotFound) as info:
        training.create_experiment(experiment_config, DataRef(DATA_REPO, "no-such-branch"))
    one_sentence(info, "no-such-branch")
    assert [e.id for e in training.list_experiments()] == before


def test_health_is_a_reachable_service_of_the_training_part(training):
    service = training.health()
    assert isinstance(service, Service)
    assert (service.part, service.reachable) == ("training", True), service.detail
