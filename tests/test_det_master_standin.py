"""The master stand-in answers as a Determined 0.38.1 master does (master/internal at tag v0.38.1), asked
through the SDK's own generated bindings: each divergence the old stand-in had is asserted here on what the
server answers. The adapters' side of each is in test_determined.py and the contract tests."""

from __future__ import annotations

import time

import pytest
import yaml
from determined.common.api import authentication, bindings, errors

from tests.standins.det_master_state import CHECKPOINTS, PASSWORD, USER

pytestmark = pytest.mark.timeout(60)

SINGLE = {
    "name": "standin-check", "entrypoint": "model_def:DogCatTrial",
    "searcher": {"name": "single", "metric": "validation_loss", "smaller_is_better": True},
    "hyperparameters": {"max_batches": 100, "learning_rate": {"type": "log", "minval": -4, "maxval": -1, "base": 10}},
    "data": {"store": "pachyderm", "repo": "dogs-and-cats", "commit": "master"},
}
ASHA = {**SINGLE, "searcher": {"name": "adaptive_asha", "metric": "accuracy", "smaller_is_better": False, "max_trials": 5,
                               "max_concurrent_trials": 2, "time_metric": "batches", "max_time": 40, "divisor": 2,
                               "max_rungs": 3, "mode": "aggressive"}}


@pytest.fixture
def master(det_master_standin_server):
    det_master_standin_server.reset()
    yield det_master_standin_server
    det_master_standin_server.reset()


@pytest.fixture
def session(master):
    return authentication.login(master.url, USER, PASSWORD)


def create(session, config: dict, activate: bool = True) -> int:
    body = bindings.v1CreateExperimentRequest(config=yaml.safe_dump(config), activate=activate)
    return bindings.post_CreateExperiment(session, body=body).experiment.id


def refused(call) -> errors.APIException:
    with pytest.raises(errors.APIException) as caught:
        call()
    return caught.value


def until(check, what: str, deadline_s: float = 20.0):
    deadline = time.monotonic() + deadline_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)
    return found


# --- the experiment list --------------------------------------------------------------------------------


def test_the_list_carries_the_best_searcher_metric_only_with_show_trial_data(session):
    [plain] = bindings.get_GetExperiments(session).experiments
    assert plain.bestTrialSearcherMetric is None and plain.trialIds is None  # getExperimentColumns leaves both out
    [full] = bindings.get_GetExperiments(session, showTrialData=True).experiments
    assert full.bestTrialSearcherMetric == 0.36


def test_the_list_is_by_id_ascending_unless_asked(session):
    second, third = create(session, SINGLE), create(session, SINGLE)
    assert [e.id for e in bindings.get_GetExperiments(session).experiments] == [1, second, third]
    descending = bindings.get_GetExperiments(session, orderBy=bindings.v1OrderBy.DESC).experiments
    assert [e.id for e in descending] == [third, second, 1]


# --- states -----------------------------------------------------------------------------------------------


def test_active_is_refined_by_the_allocations_from_queued_to_running(session, master):
    with master.state.holding():
        exp = create(session, SINGLE)
        assert bindings.get_GetExperiment(session, experimentId=exp).experiment.state == bindings.experimentv1State.QUEUED
    seen = []

    def running():
        state = bindings.get_GetExperiment(session, experimentId=exp).experiment.state.value.removeprefix("STATE_")
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "RUNNING"

    until(running, "the experiment running")
    assert "ACTIVE" not in seen and seen[0] in ("QUEUED", "PULLING", "STARTING")
    order = ["QUEUED", "PULLING", "STARTING", "RUNNING"]
    assert seen == sorted(seen, key=order.index)  # never back
    [trial] = bindings.get_GetExperimentTrials(session, experimentId=exp).trials
    assert trial.state == bindings.trialv1State.RUNNING


def test_kill_goes_through_stopping_killed_and_waits_for_the_trials(session, master):
    exp = create(session, SINGLE)
    until(lambda: bindings.get_GetExperiment(session, experimentId=exp).experiment.state == bindings.experimentv1State.RUNNING,
          "the experiment running")
    with master.state.holding():
        bindings.post_KillExperiment(session, id=exp)
        stopping = bindings.get_GetExperiment(session, experimentId=exp).experiment
        [trial] = bindings.get_GetExperimentTrials(session, experimentId=exp).trials
        assert (stopping.state, stopping.endTime, trial.state) == (
            bindings.experimentv1State.STOPPING_KILLED, None, bindings.trialv1State.STOPPING_KILLED)
        bindings.post_KillExperiment(session, id=exp)  # killing a stopping-killed experiment is no error
        paused = refused(lambda: bindings.post_PauseExperiment(session, id=exp))
        assert (paused.status_code, paused.response_error["code"], paused.message) == (
            400, 9, "experiment in incompatible state STOPPING_KILLED")  # FailedPrecondition
    ended = until(lambda: (e := bindings.get_GetExperiment(session, experimentId=exp).experiment).endTime and e, "the end")
    assert ended.state == bindings.experimentv1State.CANCELED
    [trial] = bindings.get_GetExperimentTrials(session, experimentId=exp).trials
    assert trial.state == bindings.trialv1State.CANCELED and trial.endTime
    with pytest.raises(errors.NotFoundException, match=f"experiment not found: {exp}"):  # no actor is left to activate
        bindings.post_ActivateExperiment(session, id=exp)


# --- the searcher and ids -------------------------------------------------------------------------------------


def test_asha_creates_its_concurrent_trials_first_and_more_as_they_end(session, master):
    exp = create(session, ASHA)
    first = [t.id for t in bindings.get_GetExperimentTrials(session, experimentId=exp).trials]
    assert len(first) == 2  # min(max_concurrent_trials, max_trials)
    master.state.end_trial(first[0])
    now = [t.id for t in bindings.get_GetExperimentTrials(session, experimentId=exp).trials]
    assert len(now) == 3 and now[:2] == first and now[2] == max(first) + 1
    for trial in now:
        master.state.end_trial(trial)
    while len(trials := bindings.get_GetExperimentTrials(session, experimentId=exp).trials) < 5 or any(
            t.state != bindings.trialv1State.COMPLETED for t in trials):
        master.state.end_trial(next(t.id for t in trials if t.state != bindings.trialv1State.COMPLETED))
    assert len(trials) == 5  # max_trials, no more
    done = bindings.get_GetExperiment(session, experimentId=exp).experiment
    assert done.state == bindings.experimentv1State.COMPLETED and done.endTime


def test_standard_mode_splits_the_trials_into_brackets():
    from tests.standins.det_searcher import brackets

    config = {"searcher": {**ASHA["searcher"], "mode": "standard", "max_trials": 16, "max_concurrent_trials": 3}}
    # rungs = min(3, int(log2 40)+1, int(log2 16)+1) = 3; standard: brackets of 3 and 2 rungs, weights 4/3 and 1
    assert brackets(config) == [{"max": 10, "first": 2}, {"max": 6, "first": 1}]


def test_trial_ids_are_one_sequence_across_experiments(session):
    search = create(session, ASHA)
    single = create(session, SINGLE)
    searched = [t.id for t in bindings.get_GetExperimentTrials(session, experimentId=search).trials]
    [trial] = bindings.get_GetExperimentTrials(session, experimentId=single).trials
    assert trial.id == max(searched) + 1 and trial.id != single


# --- checkpoints ------------------------------------------------------------------------------------------------


def test_an_ended_experiment_keeps_each_trials_best_and_latest_checkpoint(session, master):
    state = master.state
    exp = create(session, SINGLE)
    trial = state.first_trial(exp)
    for batch, loss in ((10, 0.5), (20, 0.3), (30, 0.4), (40, 0.45)):
        state.report_metrics(trial, "validation", batch, {"validation_loss": loss})
        state.add_checkpoint(f"ckpt-{exp}-{batch}", trial, batch)
    state.add_checkpoint(f"ckpt-{exp}-45", trial, 45)  # no validation at its batch
    state.add_version("dogcat-model", f"ckpt-{exp}-10")  # a registered checkpoint is never collected
    bindings.post_KillExperiment(session, id=exp)
    until(lambda: bindings.get_GetExperiment(session, experimentId=exp).experiment.endTime, "the end")
    listed = bindings.get_GetExperimentCheckpoints(session, id=exp).checkpoints
    states = {c.uuid.rsplit("-", 1)[1]: c.state.value.removeprefix("STATE_") for c in listed}
    # save_trial_best 1 (batch 20, the lowest loss), save_trial_latest 1 (batch 45), the registered one (10)
    assert states == {"10": "COMPLETED", "20": "COMPLETED", "30": "DELETED", "40": "DELETED", "45": "COMPLETED"}
    gone = refused(lambda: bindings.post_PostModelVersion(
        session, modelName="dogcat-model", body=bindings.v1PostModelVersionRequest(checkpointUuid=f"ckpt-{exp}-30", modelName="dogcat-model")))
    assert gone.status_code == 500 and "must be in a COMPLETED state" in gone.message


# --- models ---------------------------------------------------------------------------------------------------


def test_an_identifier_of_digits_is_a_model_id_and_no_model_may_be_named_so(session):
    assert bindings.get_GetModel(session, modelName="1").model.name == "dogcat-model"
    assert bindings.get_GetModelVersion(session, modelName="1", modelVersionNum=1).modelVersion.checkpoint.uuid == CHECKPOINTS[0]
    for name, why in [("123", "model names cannot be only numbers"), ("a/b", "model names cannot have slashes"),
                      ("   ", "model names cannot be blank"), ("a  b", "model names cannot have excessive spacing")]:
        error = refused(lambda: bindings.post_PostModel(session, body=bindings.v1PostModelRequest(name=name)))
        assert (error.status_code, error.response_error["code"], error.message) == (400, 3, why)
    twin = refused(lambda: bindings.post_PostModel(session, body=bindings.v1PostModelRequest(name="dogcat-model")))
    assert (twin.status_code, twin.message) == (409, "avoid names equal to other models (case-sensitive)")


# --- the config check of CreateExperiment -----------------------------------------------------------------------


@pytest.mark.parametrize("change, says", [
    ({"bogus": 1}, "<config>: Additional properties are not allowed ('bogus' was unexpected)"),
    ({"searcher": {"name": "single"}}, "<config>.searcher: metric is a required property"),
    ({"searcher": {**ASHA["searcher"], "time_metric": None}},
     "the `adaptive_asha` searcher requires `max_time` and `time_metric` to be set"),
    ({"hyperparameters": {"lr": {"type": "double", "minval": 2, "maxval": 1}}}, "<config>.hyperparameters.lr: minval must be less than maxval"),
    ({"checkpoint_storage": {"type": "s3"}}, "<config>.checkpoint_storage: bucket is a required property"),
    ({"entrypoint": None}, "managed experiments require entrypoint"),
])
def test_a_config_is_checked_against_determineds_own_schemas(session, master, change, says):
    before = set(master.state.experiments)
    error = refused(lambda: create(session, {**SINGLE, **change}))
    assert (error.status_code, error.response_error["reason"]) == (500, "Internal")  # a plain error of the master
    assert says in error.message.splitlines()[-1] or says in error.message
    assert set(master.state.experiments) == before


def test_the_projects_own_configs_pass_the_real_schemas(session):
    from dlptui import resources

    for path in sorted(resources.trial_dir().glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        exp = create(session, config)
        assert bindings.get_GetExperiment(session, experimentId=exp).experiment.config["searcher"]["name"] == config["searcher"]["name"], path


# --- sessions ---------------------------------------------------------------------------------------------------


def test_sessions_expire(session, master):
    assert bindings.get_GetMe(session).user.username == USER
    master.state.expire_tokens()
    with pytest.raises(errors.UnauthenticatedException):
        bindings.get_GetMe(session)
    fresh = authentication.login(master.url, USER, PASSWORD)  # a new login is a new session
    assert bindings.get_GetMe(fresh).user.username == USER
    with pytest.raises(errors.UnauthenticatedException):  # 401 "invalid credentials", as a wrong password is
        authentication.login(master.url, USER, "not the password")


def test_errors_carry_the_grpc_code_and_its_name(session, master):
    import requests

    answer = requests.get(f"{master.url}/api/v1/experiments/999", headers={"Authorization": f"Bearer {session.token}"}, timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": 5, "reason": "NotFound", "error": "experiment not found: 999"}}
