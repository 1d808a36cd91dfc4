"""The Determined adapters against what a 0.38.1 master does that the old stand-in did not (tests/standins/
det_master*.py): the list's trial data, the config check, the state machine's refusals, the kill's teardown,
checkpoints the GC deleted, expiring sessions. Each test asserts what the user gets or what the master received."""

from __future__ import annotations

import shutil

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError
from dlptui.platform import Platform
from dlptui.platform.cluster.determined_training import DeterminedTraining
from dlptui.platform.model import DataRef, ExperimentState
from tests.contract.checks import one_sentence
from tests.standins import DATA_COMMIT, DATA_REPO

pytestmark = pytest.mark.timeout(60)

CONFIG = """\
name: lifecycle
entrypoint: model_def:DogCatTrial
hyperparameters: {max_batches: 100}
searcher: {name: single, metric: accuracy, smaller_is_better: false}
data: {store: pachyderm, repo: dogs-and-cats, commit: master}
"""


@pytest.fixture
def platform(standin_cluster_env):
    p = Platform(standin_cluster_env)
    yield p
    p.close()


@pytest.fixture
def state(det_master_standin_server):
    return det_master_standin_server.state


def trial_config(tmp_path, text: str = CONFIG, name: str = "const.yaml"):
    folder = tmp_path / "trial"
    folder.mkdir(exist_ok=True)
    (folder / "model_def.py").write_text("class DogCatTrial:\n    pass\n")
    (folder / name).write_text(text)
    return folder / name


def test_the_experiment_list_asks_for_the_best_trials_metric(platform, state):
    [listed] = platform.training.list_experiments()
    assert listed.best_validation_loss == 0.36  # the searcher metric of experiment 1
    asked = [q for m, p, q in state.requests if (m, p) == ("GET", "/api/v1/experiments")]
    assert asked and all(q.get("showTrialData") == ["true"] for q in asked)


@pytest.mark.parametrize("change, says", [
    ("searcher: {name: adaptive_asha, metric: accuracy, max_trials: 4}",
     "the `adaptive_asha` searcher requires `max_time` and `time_metric` to be set"),
    ("searcher: {name: single, metric: accuracy, max_lenght: 10}",
     "<config>.searcher: Additional properties are not allowed ('max_lenght' was unexpected)"),
    ("searcher: {name: single}", "<config>.searcher: metric is a required property"),
])
def test_a_config_the_master_refuses_is_one_sentence_naming_the_file(platform, tmp_path, state, change, says):
    config = trial_config(tmp_path, CONFIG.replace("searcher: {name: single, metric: accuracy, smaller_is_better: false}", change))
    before = set(state.experiments)
    with pytest.raises(InvalidInput) as refused:
        platform.training.create_experiment(config)
    text = one_sentence(refused, str(config))
    assert text.startswith(f"The Determined master refused the experiment config {config}: ") and says in text
    assert set(state.experiments) == before


def test_the_projects_shipped_configs_start_on_the_cluster(platform, tmp_path, state):
    from dlptui import resources

    trial = tmp_path / "shipped"
    shutil.copytree(resources.trial_dir(), trial, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("const.yaml", "search.yaml", "local.yaml", "tiny.yaml"):  # as `dlptui train --config ... --data` sends them
        created = platform.training.create_experiment(trial / name, DataRef(DATA_REPO, "master"))
        assert created.data_commit == DATA_COMMIT, name
        assert state.experiments[int(created.id)]["original"]["searcher"] == resources_searcher(trial / name), name
        platform.training.kill(created.id)


def resources_searcher(path):
    import yaml

    return yaml.safe_load(path.read_text())["searcher"]


def test_a_search_shows_its_first_trials_then_the_next_as_one_ends(platform, tmp_path, state):
    from dlptui import resources

    trial = tmp_path / "shipped"
    shutil.copytree(resources.trial_dir(), trial, ignore=shutil.ignore_patterns("__pycache__"))
    search = platform.training.create_experiment(trial / "search.yaml", DataRef(DATA_REPO, "master"))
    try:
        first = platform.training.list_trials(search.id)
        assert len(first) == 2  # max_concurrent_trials of trial/search.yaml, not its max_trials (6)
        state.end_trial(int(first[0].id))
        now = platform.training.list_trials(search.id)
        assert [t.id for t in now[:2]] == [t.id for t in first] and len(now) == 3
        assert now[0].state is ExperimentState.COMPLETED
    finally:
        platform.training.kill(search.id)


def test_a_change_the_masters_state_machine_refuses_is_a_conflict(platform, tmp_path, state):
    created = platform.training.create_experiment(trial_config(tmp_path))
    state.experiments[int(created.id)]["state"] = "STOPPING_COMPLETED"  # the master winds it down; dlptui shows it running
    with pytest.raises(Conflict) as refused:
        platform.training.pause(created.id)
    one_sentence(refused, created.id, "STOPPING_COMPLETED")
    state.experiments[int(created.id)]["state"] = "ACTIVE"
    platform.training.kill(created.id)


def test_kill_waits_for_the_trials_teardown(platform, tmp_path, state):
    created = platform.training.create_experiment(trial_config(tmp_path))
    mark = len(state.requests)
    killed = platform.training.kill(created.id)
    assert (killed.state, state.experiments[int(created.id)]["state"]) == (ExperimentState.KILLED, "CANCELED")
    assert killed.ended is not None
    looks = [p for m, p, _ in state.requests[mark:] if (m, p) == ("GET", f"/api/v1/experiments/{created.id}")]
    assert len(looks) >= 2  # it looked again while the master was still STOPPING_KILLED


def test_a_checkpoint_the_gc_deleted_is_not_found_everywhere(platform, tmp_path, state):
    created = platform.training.create_experiment(trial_config(tmp_path))
    trial = state.first_trial(int(created.id))
    for batch, accuracy in ((10, 0.6), (20, 0.8), (30, 0.7)):
        state.report_metrics(trial, "validation", batch, {"accuracy": accuracy})
        state.add_checkpoint(f"gc-{created.id}-{batch}", trial, batch)
    platform.training.kill(created.id)  # ended: the GC keeps the best (20) and the latest (30)
    gone = f"gc-{created.id}-10"
    assert [c.uuid for c in platform.training.checkpoints(created.id)] == [f"gc-{created.id}-20", f"gc-{created.id}-30"]
    for call in (lambda: platform.training.checkpoint(gone),
                 lambda: platform.registry.register(f"gc-{created.id}", created.id, gone),
                 lambda: platform.training.create_experiment(trial_config(tmp_path), source_checkpoint=gone)):
        with pytest.raises(NotFound) as info:
            call()
        assert "deleted by the Determined master's checkpoint garbage collection" in one_sentence(info, gone)


def test_an_expired_session_is_renewed_with_the_password(platform, state):
    assert platform.training.get_experiment("1").id == "1"
    logins = sum(1 for m, p, _ in state.requests if (m, p) == ("POST", "/api/v1/auth/login"))
    state.expire_tokens()
    assert platform.training.get_experiment("1").id == "1"  # the same part, a new session
    assert sum(1 for m, p, _ in state.requests if (m, p) == ("POST", "/api/v1/auth/login")) == logins + 1


def test_an_expired_token_without_a_password_is_one_sentence(standin_cluster_env, monkeypatch, state, det_master_standin):
    monkeypatch.delenv("DET_PASS")
    monkeypatch.setenv("DET_TOKEN", state.new_token())
    training = DeterminedTraining(standin_cluster_env)
    assert training.get_experiment("1").id == "1"
    state.expire_tokens()
    with pytest.raises(PlatformError) as refused:
        training.get_experiment("1")
    assert str(refused.value) == (
        f"The Determined master at {det_master_standin} does not accept the token of user 'determined' (expired or revoked); "
        f"log in again with `det -m {det_master_standin} user login determined`, or set DET_PASS."
    )
