"""The Determined adapters through the determined SDK against the master stand-in (tests/standins/det_master.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from dlptui.config import load_config
from dlptui.platform import Platform
from dlptui.platform.cluster.determined_training import DeterminedRegistry, DeterminedTraining
from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound, PlatformError, Unreachable
from dlptui.platform.model import DataRef, ExperimentState
from tests.helpers import run_cluster_status
from tests.standins import DATA_COMMIT
from tests.standins.det_master_state import CHECKPOINTS, TOKEN

pytestmark = pytest.mark.timeout(60)

TRIAL_CONFIG = """\
name: dogcat-test
entrypoint: model_def:DogCatTrial
searcher: {name: single, metric: validation_loss, smaller_is_better: true, max_length: {batches: 20}}
checkpoint_storage: {type: s3, bucket: dlp-checkpoints, prefix: runs}
data: {store: pachyderm, repo: dogs-and-cats, commit: master, image_size: 224}
"""


@pytest.fixture
def platform(standin_cluster_env):
    p = Platform(standin_cluster_env)
    yield p
    p.close()


@pytest.fixture
def training(platform) -> DeterminedTraining:
    return platform.training


@pytest.fixture
def registry(platform) -> DeterminedRegistry:
    return platform.registry


@pytest.fixture
def trial_dir(tmp_path):
    folder = tmp_path / "trial"
    folder.mkdir()
    (folder / "const.yaml").write_text(TRIAL_CONFIG)
    (folder / "model_def.py").write_text("class DogCatTrial:\n    pass\n")
    return folder


def test_the_cluster_profile_builds_the_determined_parts(training, registry):
    assert isinstance(training, DeterminedTraining) and isinstance(registry, DeterminedRegistry)


def test_health_names_the_master_its_version_and_user(training, registry, det_master_standin):
    for part, service in (("training", training.health()), ("registry", registry.health())):
        assert service.reachable, service.detail
        assert (service.part, service.backend, service.version) == (part, "Determined master", "0.38.1-standin")
        assert service.detail == f"{det_master_standin} as determined"


def test_the_completed_experiment_with_its_state_progress_and_data(training):
    exp = training.get_experiment("1")
    assert (exp.name, exp.state) == ("dogcat-resnet", ExperimentState.COMPLETED)
    assert (exp.batches_done, exp.max_batches, exp.progress) == (100, 100, 1.0)
    assert (exp.best_validation_loss, exp.best_accuracy) == (0.36, 0.86)
    assert (exp.data_repo, exp.data_commit) == ("dogs-and-cats", DATA_COMMIT)
    assert exp.ended is not None and exp.ended > exp.created
    listed = {e.id: e for e in training.list_experiments()}
    assert listed["1"].state is ExperimentState.COMPLETED and listed["1"].batches_done == 100
    assert listed["1"].best_validation_loss == 0.36  # the searcher metric, which a listing carries


def test_metrics_come_in_report_order_and_the_cursor_skips_what_was_seen(training):
    points, cursor = training.metrics("1")
    assert [(p.group, p.batch) for p in points if p.name == "loss"] == [("training", b) for b in (25, 50, 75, 100)]
    validation = [(p.batch, p.name, p.value) for p in points if p.group == "validation"]
    assert validation == [(50, "validation_loss", 0.48), (50, "accuracy", 0.78), (100, "validation_loss", 0.36), (100, "accuracy", 0.86)]
    assert cursor == 6  # six reports: four training, two validation
    assert training.metrics("1", cursor) == ([], cursor)


def test_logs_with_a_cursor(training):
    lines, cursor = training.logs("1")
    assert lines[0] == "[rank=0] starting trial 1" and len(lines) == cursor == 5
    assert training.logs("1", cursor) == ([], 5)


def test_checkpoints_with_batch_metrics_and_location(training):
    ckpts = training.checkpoints("1")
    assert [(c.uuid, c.batch) for c in ckpts] == [(CHECKPOINTS[0], 50), (CHECKPOINTS[1], 100)]
    last = ckpts[1]
    assert (last.experiment_id, last.trial_id) == ("1", "1")
    assert last.metrics == {"validation_loss": 0.36, "accuracy": 0.86}
    assert last.location == f"/mnt/checkpoints/determined-checkpoint/{CHECKPOINTS[1]}"
    assert training.checkpoint(CHECKPOINTS[1]) == last


def test_create_on_a_data_commit_then_pause_resume_kill(training, trial_dir, det_master_standin_server):
    data = DataRef("dogs-and-cats", DATA_COMMIT[:8], "master")  # a prefix is pinned to the full id
    with det_master_standin_server.state.holding():  # no allocation yet, however slow the machine
        exp = training.create_experiment(trial_dir / "const.yaml", data, name="from-the-console")
    assert exp.state is ExperimentState.QUEUED and exp.name == "from-the-console"
    assert exp.config["data"] == {"store": "pachyderm", "repo": "dogs-and-cats", "commit": DATA_COMMIT, "branch": "master", "image_size": 224}
    assert (exp.data_repo, exp.data_commit, exp.max_batches) == ("dogs-and-cats", DATA_COMMIT, 20)
    assert det_master_standin_server.state.uploads[int(exp.id)] == ["const.yaml", "model_def.py"]
    assert exp.data_job is None
    retrained = training.create_experiment(trial_dir / "const.yaml", data, job="4f2a9c", coalesce="dogs-and-cats-retrain")
    assert retrained.config["data"]["job"] == "4f2a9c" and retrained.data_job == "4f2a9c"  # started by a pipeline job
    assert retrained.config["data"]["coalesce"] == "dogs-and-cats-retrain"  # accepted and recorded; the master schedules
    training.kill(retrained.id)

    assert training.pause(exp.id).state is ExperimentState.PAUSED
    with pytest.raises(Conflict, match=f"Experiment {exp.id} is paused; it cannot be paused now."):
        training.pause(exp.id)
    assert training.resume(exp.id).state in (ExperimentState.QUEUED, ExperimentState.RUNNING)  # a new allocation
    killed = training.kill(exp.id)
    assert killed.state is ExperimentState.KILLED and killed.state.terminal
    with pytest.raises(Conflict, match="is killed; it cannot be resumed"):
        training.resume(exp.id)


def test_live_metrics_and_logs_arrive_after_the_cursor(training, trial_dir, det_master_standin_server):
    exp = training.create_experiment(trial_dir / "const.yaml")
    assert training.metrics(exp.id) == ([], 0) and training.logs(exp.id) == ([], 0)
    state = det_master_standin_server.state
    trial = state.first_trial(int(exp.id))  # one sequence of trial ids on the master, not the experiment's id
    state.report_metrics(trial, "training", 5, {"loss": 0.7})
    state.add_log(trial, "batch 5")
    points, cursor = training.metrics(exp.id)
    assert [(p.batch, p.name, p.value) for p in points] == [(5, "loss", 0.7)] and cursor == 1
    state.report_metrics(trial, "validation", 10, {"validation_loss": 0.5, "accuracy": 0.7})
    points, cursor = training.metrics(exp.id, cursor)
    assert [(p.group, p.name) for p in points] == [("validation", "validation_loss"), ("validation", "accuracy")]
    assert cursor == 2
    assert training.logs(exp.id) == (["batch 5"], 1)
    assert training.get_experiment(exp.id).batches_done == 10
    training.kill(exp.id)


SEARCH_CONFIG = """\
name: dogcat-search
entrypoint: model_def:DogCatTrial
hyperparameters:
  max_batches: 40
  learning_rate: {type: log, minval: -4, maxval: -1, base: 10}
  freeze_backbone: {type: categorical, vals: [true, false]}
  momentum: 0.9
searcher: {name: adaptive_asha, metric: accuracy, smaller_is_better: false, max_trials: MAX_TRIALS,
           max_concurrent_trials: 2, time_metric: batches, max_time: 40, divisor: 2, max_rungs: 3, mode: aggressive}
data: {store: pachyderm, repo: dogs-and-cats, commit: master}
"""


def search_dir(tmp_path, max_trials: int) -> Path:
    folder = tmp_path / "search"
    folder.mkdir(exist_ok=True)
    (folder / "search.yaml").write_text(SEARCH_CONFIG.replace("MAX_TRIALS", str(max_trials)))
    (folder / "model_def.py").write_text("class DogCatTrial:\n    pass\n")
    return folder / "search.yaml"


def test_a_search_goes_to_the_master_as_it_is_with_its_trials_in_their_states(training, registry, tmp_path, det_master_standin_server):
    import time

    state = det_master_standin_server.state
    with state.holding():  # the trials stay queued while the test looks, however slow the machine
        exp = training.create_experiment(search_dir(tmp_path, 4))
        assert state.experiments[int(exp.id)]["config"]["searcher"]["name"] == "adaptive_asha"  # the config as written
        trials = training.list_trials(exp.id)
        # adaptive ASHA starts min(max_concurrent_trials, max_trials) trials; the others come as these end
        assert len(trials) == 2 and all(t.state is ExperimentState.QUEUED for t in trials)  # not running yet
    assert {tuple(sorted(t.hparams)) for t in trials} == {("freeze_backbone", "learning_rate")}  # only the searched ones
    assert len({t.hparams["learning_rate"] for t in trials}) == 2
    deadline = time.monotonic() + 30
    while (states := {t.state for t in training.list_trials(exp.id)}) != {ExperimentState.RUNNING}:
        assert time.monotonic() < deadline, f"the trials never all ran: {states}"
        time.sleep(0.05)
    second = trials[1]
    state.report_metrics(int(second.id), "training", 10, {"loss": 0.6})
    state.report_metrics(int(second.id), "validation", 10, {"accuracy": 0.7, "validation_loss": 0.5})
    state.report_metrics(int(trials[0].id), "validation", 10, {"accuracy": 0.6, "validation_loss": 0.6})
    state.add_checkpoint("ckpt-second-10", int(second.id), 10)
    state.add_log(int(second.id), "trial two, batch 10")
    points, cursor = training.trial_metrics(second.id)
    assert [(p.group, p.batch, p.trial_id) for p in points][:1] == [("training", 10, second.id)] and cursor == 2
    assert training.trial_metrics(second.id, cursor) == ([], cursor)
    assert training.trial_logs(second.id) == (["trial two, batch 10"], 1)
    got = training.get_trial(second.id)
    assert (got.best_metric, got.best_checkpoint, got.batches_done) == (0.7, "ckpt-second-10", 10)
    assert training.get_experiment(exp.id).best_accuracy == 0.7  # the best trial's, not the first one's
    assert {p.trial_id for p in training.metrics(exp.id)[0]} == {trials[0].id, second.id}
    version = registry.register(f"searched-{uuid.uuid4().hex[:6]}", exp.id, trial_id=second.id)
    assert version.checkpoint_uuid == "ckpt-second-10"
    state.end_trial(int(trials[0].id))  # the searcher stopped it: the next trial starts in its place
    third = [t for t in training.list_trials(exp.id) if t.id not in {trials[0].id, second.id}]
    assert len(third) == 1 and int(third[0].id) > int(second.id)
    assert training.get_trial(trials[0].id).state is ExperimentState.COMPLETED
    with pytest.raises(Conflict, match=f"Trial {third[0].id} of experiment {exp.id} has no checkpoint yet"):
        registry.register("searched-x", exp.id, trial_id=third[0].id)
    with pytest.raises(NotFound):
        training.get_trial("987654")
    state.experiments[int(exp.id)]["state"] = "STOPPING_COMPLETED"  # what the master shows as a search winds down
    assert training.get_experiment(exp.id).state is ExperimentState.RUNNING
    state.experiments[int(exp.id)]["state"] = "ACTIVE"
    killed = training.kill(exp.id)  # STOPPING_KILLED on the master first: kill waits for the trials' teardown
    assert killed.state is ExperimentState.KILLED and killed.ended is not None
    assert state.experiments[int(exp.id)]["state"] == "CANCELED"
    ended = {t.id: t.state for t in training.list_trials(exp.id)}  # a killed search creates no more trials
    assert ended == {trials[0].id: ExperimentState.COMPLETED, second.id: ExperimentState.KILLED, third[0].id: ExperimentState.KILLED}


def test_trials_are_read_over_every_page(training, tmp_path, det_master_standin_server):
    folder = tmp_path / "random"
    folder.mkdir()
    (folder / "model_def.py").write_text("class DogCatTrial:\n    pass\n")
    config = folder / "random.yaml"
    config.write_text(SEARCH_CONFIG.replace("MAX_TRIALS", "150").replace("adaptive_asha", "random")
                      .replace("max_concurrent_trials: 2", "max_concurrent_trials: 0")
                      .replace(", time_metric: batches, max_time: 40, divisor: 2, max_rungs: 3, mode: aggressive", ""))
    exp = training.create_experiment(config)  # a random search with no concurrency limit starts every trial at once
    state = det_master_standin_server.state
    before = getattr(state, "pages_served", 0)
    trials = training.list_trials(exp.id)
    assert len(trials) == 150 and len({t.id for t in trials}) == 150  # the master gives 100 at most per page
    assert state.pages_served - before >= 2
    assert [int(t.id) for t in trials] == sorted(int(t.id) for t in trials)
    assert training.get_experiment(exp.id).max_batches == 150 * 40
    training.kill(exp.id)


def test_mistakes_give_one_sentence(training, tmp_path):
    with pytest.raises(NotFound, match="There is no experiment 999 on the Determined master"):
        training.get_experiment("999")
    with pytest.raises(NotFound, match="experiment ids are numbers"):
        training.metrics("abc")
    with pytest.raises(NotFound, match="checkpoint 'nope'"):
        training.checkpoint("nope")
    with pytest.raises(NotFound, match="missing.yaml does not exist"):
        training.create_experiment(tmp_path / "missing.yaml")
    local = tmp_path / "local.yaml"
    local.write_text("entrypoint: model_def:DogCatTrial\ndata: {store: local, repo: dogs-and-cats}\n")
    with pytest.raises(InvalidInput, match="the cluster profile trains on Pachyderm"):
        training.create_experiment(local)
    with pytest.raises(NotFound, match="There is no repo 'nothing-here' on pachd"):
        training.create_experiment(local, DataRef("nothing-here", "master"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: no-entrypoint\nsearcher: {name: single, metric: accuracy}\ndata: {store: folder, path: /data}\n")
    with pytest.raises(InvalidInput) as refused:
        training.create_experiment(bad)
    assert str(refused.value) == (f"The Determined master refused the experiment config {bad}: managed experiments require "
                                  "entrypoint; fix it and start again.")


def test_register_the_best_checkpoint_then_promote_and_record_history(registry):
    model = f"dogcat-{uuid.uuid4().hex[:6]}"
    best = registry.register(model, "1")
    assert (best.model, best.version, best.checkpoint_uuid) == (model, 1, CHECKPOINTS[1])  # lowest validation_loss
    assert (best.experiment_id, best.data_repo, best.data_commit) == ("1", "dogs-and-cats", DATA_COMMIT)
    assert best.metrics["accuracy"] == 0.86
    chosen = registry.register(model, "1", CHECKPOINTS[0], notes="the earlier one")
    assert (chosen.version, chosen.checkpoint_uuid, chosen.notes) == (2, CHECKPOINTS[0], "the earlier one")
    assert [v.version for v in registry.list_versions(model)] == [1, 2]

    first = registry.promote(model, 1, "production", who="alice")
    assert (first.from_version, first.to_version, first.who) == (None, 1, "alice")
    moved = registry.promote(model, 2, "production")
    assert (moved.from_version, moved.to_version, moved.who) == (1, 2, "determined")
    registry.promote(model, 1, "staging")

    assert registry.get_model(model).aliases == {"production": 2, "staging": 1}
    assert registry.get_version(model, "production").version == 2
    assert registry.get_version(model, "latest").version == 2
    assert {v.version: v.aliases for v in registry.list_versions(model)} == {1: ("staging",), 2: ("production",)}
    history = registry.history(model)
    assert [(h.alias, h.from_version, h.to_version) for h in history] == [
        ("production", None, 1),
        ("production", 1, 2),
        ("staging", None, 1),
    ]
    assert history[0].time <= history[1].time <= history[2].time
    assert model in [m.name for m in registry.list_models()]


def test_registry_mistakes_give_one_sentence(registry):
    assert registry.get_model("dogcat-model").versions >= 1
    with pytest.raises(NotFound, match="There is no model 'absent'"):
        registry.history("absent")
    with pytest.raises(InvalidInput, match="is not an alias"):
        registry.promote("dogcat-model", 1, "canary")
    with pytest.raises(NotFound, match="version 99 of model 'dogcat-model'"):
        registry.promote("dogcat-model", 99, "staging")
    with pytest.raises(InvalidInput, match="'v7' is not a version of 'dogcat-model'"):
        registry.get_version("dogcat-model", "v7")
    with pytest.raises(NotFound, match="There is no checkpoint 'nope'"):
        registry.register("dogcat-model", "1", "nope")
    with pytest.raises(Conflict, match=f"Checkpoint {CHECKPOINTS[0]} is already version 1 of 'dogcat-model'"):
        registry.register("dogcat-model", "1", CHECKPOINTS[0])
    with pytest.raises(InvalidInput, match="not a valid model name"):
        registry.register("bad name", "1")
    with pytest.raises(NotFound, match="There is no experiment 404"):
        registry.register("dogcat-model", "404")


def test_register_refuses_a_checkpoint_of_another_experiment_and_an_experiment_without_one(
    registry, training, trial_dir, det_master_standin_server
):
    fresh = training.create_experiment(trial_dir / "const.yaml")
    with pytest.raises(Conflict, match=f"Experiment {fresh.id} has no checkpoint yet"):
        registry.register("dogcat-model", fresh.id)
    with pytest.raises(InvalidInput, match=f"belongs to experiment 1, not {fresh.id}"):
        registry.register("dogcat-model", fresh.id, CHECKPOINTS[1])
    training.kill(fresh.id)


def test_a_token_from_the_environment_is_enough(standin_cluster_env, monkeypatch):
    monkeypatch.delenv("DET_PASS")
    monkeypatch.setenv("DET_TOKEN", TOKEN)
    assert DeterminedTraining(standin_cluster_env).get_experiment("1").id == "1"


def test_a_wrong_password_is_refused_in_one_sentence(standin_cluster_env, monkeypatch, det_master_standin):
    monkeypatch.setenv("DET_PASS", "wrong")
    with pytest.raises(PlatformError, match=f"The Determined master at {det_master_standin} refused user 'determined'"):
        DeterminedTraining(standin_cluster_env).list_experiments()


def test_a_dead_master_is_one_unreachable_sentence(home, monkeypatch, dead_address):
    monkeypatch.setenv("DET_MASTER", f"http://{dead_address}")
    monkeypatch.setenv("DET_PASS", "any")
    config = load_config(profile="cluster")
    expected = f"The Determined master at http://{dead_address} does not answer; check DET_MASTER and that the master is up, then retry."
    with pytest.raises(Unreachable) as caught:
        DeterminedTraining(config).list_experiments()
    assert str(caught.value) == expected
    with pytest.raises(Unreachable):
        DeterminedRegistry(config).list_models()
    service = DeterminedRegistry(config).health()
    assert not service.reachable and service.detail == expected


def test_no_master_set_says_what_to_set(home, monkeypatch):
    monkeypatch.delenv("DET_MASTER", raising=False)
    with pytest.raises(Unreachable, match="set DET_MASTER"):
        DeterminedTraining(load_config(profile="cluster")).list_experiments()


def test_a_hung_master_is_unreachable_after_the_configured_timeout(short_timeout_config, monkeypatch, silent_address):
    monkeypatch.setenv("DET_MASTER", f"http://{silent_address}")
    monkeypatch.setenv("DET_PASS", "any")
    training = DeterminedTraining(load_config(profile="cluster"))
    assert training.config.timeout_s == 1.0
    with pytest.raises(Unreachable, match=f"The Determined master at http://{silent_address} does not answer"):
        training.list_experiments()
    assert not training.health().reachable


def test_the_projects_own_trial_config_starts_on_a_pinned_commit(training, det_master_standin_server):
    trial = Path(__file__).resolve().parents[1] / "trial"
    exp = training.create_experiment(trial / "const.yaml")  # its data section names the branch master
    assert exp.data_commit == DATA_COMMIT and exp.config["data"]["store"] == "pachyderm"
    assert exp.config["data"]["host"] == "pachd.pachyderm.svc.cluster.local"  # the rest of the section stays
    assert exp.max_batches == exp.config["hyperparameters"]["max_batches"] and "max_length" not in exp.config["searcher"]
    uploaded = det_master_standin_server.state.uploads[int(exp.id)]
    assert {"const.yaml", "model_def.py", "train.py", "data.py"} <= set(uploaded)
    assert not any("__pycache__" in p for p in uploaded)  # .detignore is honoured
    training.kill(exp.id)


def test_status_of_the_cluster_profile_on_the_standins(platform, pachd_standin, det_master_standin):
    services = {s.part: s for s in platform.status()}
    assert services["data"].reachable and services["data"].endpoint == pachd_standin.removeprefix("grpc://")
    assert services["training"].reachable and services["training"].endpoint == det_master_standin
    assert services["registry"].reachable and services["registry"].version == "0.38.1-standin"


def test_the_experiment_trained_on_a_commit_that_pachd_holds(platform):
    exp = platform.training.get_experiment("1")
    assert platform.data.resolve(exp.data_repo, exp.data_commit).commit == exp.data_commit


def test_dlptui_status_on_the_standins_and_on_dead_backends(home, pachd_standin, det_master_standin, dead_address):
    from tests.standins.det_master_state import PASSWORD

    _, parts, stderr = run_cluster_status(home, PACHD_ADDRESS=pachd_standin, DET_MASTER=det_master_standin, DET_PASS=PASSWORD)
    assert all(parts[p]["reachable"] for p in ("data", "training", "registry")), parts
    assert "Traceback" not in stderr

    code, parts, stderr = run_cluster_status(home, PACHD_ADDRESS=f"grpc://{dead_address}", DET_MASTER=f"http://{dead_address}", DET_PASS="x")
    assert code == 5 and "Traceback" not in stderr
    assert parts["data"]["detail"].startswith(f"pachd at {dead_address} does not answer;")
    assert parts["training"]["detail"].startswith(f"The Determined master at http://{dead_address} does not answer;")
    assert parts["registry"]["detail"] == parts["training"]["detail"]


def test_a_token_cached_by_det_user_login_is_used(standin_cluster_env, monkeypatch, det_master_standin, home):
    from determined.common import api
    from determined.common.api import authentication

    monkeypatch.delenv("DET_PASS")
    store = authentication.TokenStore(api.canonicalize_master_url(det_master_standin))
    assert str(store.path).startswith(str(home.parent))  # the test's own config dir, not the user's
    store.set_token("determined", TOKEN)
    assert [e.id for e in DeterminedTraining(standin_cluster_env).list_experiments()] == ["1"]


def test_no_credentials_is_one_sentence_not_an_empty_password(standin_cluster_env, monkeypatch):
    monkeypatch.delenv("DET_PASS")
    monkeypatch.delenv("DET_TOKEN", raising=False)
    with pytest.raises(NotAvailable, match=r"There are no credentials for user .* set DET_PASS \(or DET_TOKEN\)"):
        DeterminedTraining(standin_cluster_env).list_experiments()


@pytest.mark.parametrize("master, allowed", [
    ("http://10.0.0.5:8080", False), ("http://master.example:8080", False),
    ("http://localhost:8443", True), ("http://127.0.0.1:9", True), ("https://10.0.0.5:8443", True),
])
def test_credentials_never_go_over_plain_http_to_another_machine(standin_cluster_env, master, allowed):
    from dlptui.platform.cluster.determined_connection import Master as MasterConnection

    config = replace(standin_cluster_env, cluster=replace(standin_cluster_env.cluster, det_master=master))
    connection = MasterConnection(config)
    from determined.common import api

    if allowed:
        connection._check_transport(api.canonicalize_master_url(master))
    else:
        with pytest.raises(NotAvailable, match="plain HTTP from another machine"):
            connection._check_transport(api.canonicalize_master_url(master))
        insecure = replace(config, cluster=replace(config.cluster, allow_insecure_http=True))
        MasterConnection(insecure)._check_transport(api.canonicalize_master_url(master))  # the profile accepts the risk


def test_train_uploads_the_trial_folder_never_the_configs_own(standin_cluster_env, tmp_path, monkeypatch):
    import shutil

    from dlptui import resources
    from dlptui.platform.cluster import determined_training

    home_like = tmp_path / "home"
    home_like.mkdir()
    (home_like / ".env").write_text("DET_PASS=s3cr3t\n")
    config = home_like / "x.yaml"
    shutil.copy(resources.trial_dir() / "const.yaml", config)
    assert determined_training.trial_folder(config) == resources.trial_dir()
    own_trial = tmp_path / "my-trial"
    shutil.copytree(resources.trial_dir(), own_trial, ignore=shutil.ignore_patterns("__pycache__"))
    assert determined_training.trial_folder(own_trial / "const.yaml") == own_trial.resolve()
    ignored = (resources.trial_dir() / ".detignore").read_text().split()
    assert {".env*", ".git/", "*.key", "*.pem"} <= set(ignored)
