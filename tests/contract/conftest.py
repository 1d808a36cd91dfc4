"""Fixtures of the contract suite: every port fixture is parametrised over the two profiles.

- `profile`: "local" or "cluster"; every test that uses a port fixture runs once per profile.
- `data_store`: LocalDataStore over a fresh home, or PachydermDataStore on the pachd stand-in.
- `training`, `registry`: the local parts, or DeterminedTraining / DeterminedRegistry on the
  master stand-in (with the data part on the pachd stand-in, which pins data commits).
- `seed`: a `Seeder` that puts a finished experiment where the profile keeps it, as the trial
  would have left it: locally through the training records the child process writes
  (training_db.py), on the cluster through the master stand-in's state. Both get the same
  reports, in the same order, and the same checkpoint uuids.
- `serving`, `cluster_part`: the local parts, or SeldonServing / KubeCluster on the real
  kube-apiserver (its binaries: tests/fixtures/kube.py).
- `experiment_config`: a config file each profile's `create_experiment` accepts, on
  `dogs-and-cats`, long enough that it is still running when the test acts on it.
- `one_sentence(error, *names)`: the check every error of the suite passes.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.contract.checks")

PROFILES = ("local", "cluster")


# Fixtures that make a test train or serve for real on the local profile (on the cluster the master stand-in and
# the API server only hold objects): such a test is `slow` there, as one taking a fixture of REAL_WORK_FIXTURES.
LOCAL_REAL_WORK_FIXTURES = {"experiment_config", "versions"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (callspec is not None and callspec.params.get("profile") == "local"
                and LOCAL_REAL_WORK_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(params=PROFILES)
def profile(request) -> str:
    return request.param


def _open(config):
    from dlptui.platform import Platform

    return Platform(config)


@pytest.fixture
def contract_platform(profile, request, home):
    """The platform of the profile. The cluster one reaches the stand-ins; its cluster and serving
    parts reach the kube-apiserver only when a test asks for `serving` or `cluster_part`."""
    from dlptui.config import load_config

    if profile == "local":
        config = load_config(profile="local")
    else:
        config = request.getfixturevalue("standin_cluster_env")
    platform = _open(config)
    yield platform
    platform.close()


@pytest.fixture
def data_store(contract_platform):
    return contract_platform.data


@pytest.fixture
def training(contract_platform):
    return contract_platform.training


@pytest.fixture
def registry(contract_platform):
    return contract_platform.registry


@pytest.fixture
def gateway(profile, monkeypatch):
    """On the cluster, the Istio gateway in front of Seldon (tests/standins/gateway.py: the model behind it checks
    each request as the project's model server does), with the serving token in the environment; None locally,
    where each deployment's own Envoy is its gateway."""
    if profile != "cluster":
        yield None
        return
    from tests.standins.gateway import GatewayStandin

    token = "c0" * 20
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", token)
    standin = GatewayStandin(token).start()
    yield standin
    standin.stop()


@pytest.fixture
def kube_platform(profile, request, home):
    """A platform whose cluster and serving parts are live: local, or the cluster profile on the kube-apiserver
    (its predictions through the `gateway` stand-in)."""
    from dataclasses import replace

    from dlptui.config import load_config

    if profile == "local":
        config = load_config(profile="local")
    else:
        config = request.getfixturevalue("cluster_config")
        ingress = request.getfixturevalue("gateway").url
        config = replace(config, cluster=replace(config.cluster, istio_ingress=ingress))
    platform = _open(config)
    yield platform
    platform.close()


@pytest.fixture
def serving(kube_platform):
    return kube_platform.serving


@pytest.fixture
def cluster_part(kube_platform):
    return kube_platform.cluster


@pytest.fixture
def serving_ready(profile, serving):
    """`serving_ready(name)`: once the deployment answers. Locally its model server has loaded; on the cluster the
    gateway stand-in routes to the model at once (no operator runs here to report the pods)."""
    from dlptui.platform.model import DeploymentState
    from tests.fixtures.serving import wait_state

    def ready(name: str) -> None:
        if profile == "local":
            deployment = wait_state(serving, name)
            assert deployment.state is DeploymentState.AVAILABLE, deployment.detail

    return ready


@pytest.fixture
def take_down(profile, kube_platform, request):
    """`take_down(name)`: the deployment stops serving while it is still deployed. Locally its model server is
    killed (kill -9); on the cluster its pods are gone, so the gateway's Envoy has no ready endpoint for it."""
    import json
    import os
    import signal

    def down(name: str) -> None:
        if profile == "cluster":
            request.getfixturevalue("gateway").down.add(name)
            return
        import psutil

        state = json.loads((kube_platform.config.home / "serving" / name / "state.json").read_text())
        server = psutil.Process(state["primary"]["pid"])
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)

    return down


# --- seeding a finished experiment ------------------------------------------------------


@dataclass
class Seeded:
    id: str
    checkpoints: list[str] = field(default_factory=list)  # uuids, in batch order
    trial: str = ""  # its (first) trial's id (on a master, trial ids are one sequence apart from experiment ids)
    trials: list[str] = field(default_factory=list)  # a search's trial ids, in order


class Seeder:
    """Puts experiments where the profile keeps them, as a trial that ran would have left them."""

    def __init__(self, profile: str, platform, master_state=None) -> None:
        self.profile = profile
        self.platform = platform
        self.master = master_state

    def experiment(
        self,
        *,
        metric: str = "validation_loss",
        smaller_is_better: bool = True,
        reports: list[tuple[str, int, dict[str, float]]] = (),
        checkpoints: list[int] = (),
        logs: list[str] = (),
        state: str = "completed",
        max_batches: int = 100,
        name: str = "seeded",
    ) -> Seeded:
        """An experiment with `reports` ((group, batch, metrics), in the order reported), a checkpoint
        after each batch in `checkpoints` (its validation metrics are those reported at that batch)
        and the log `lines`."""
        from tests.standins import DATA_COMMIT, DATA_REPO

        config = {
            "name": name,
            "entrypoint": "model_def:DogCatTrial",
            "searcher": {"name": "single", "metric": metric, "smaller_is_better": smaller_is_better,
                         "max_length": {"batches": max_batches}},
            "data": {"store": "pachyderm" if self.profile == "cluster" else "local", "repo": DATA_REPO, "commit": DATA_COMMIT},
        }
        uuids = [str(uuid.uuid4()) for _ in checkpoints]
        if self.profile == "local":
            return self._local(config, reports, checkpoints, uuids, logs, state, max_batches, name)
        return self._cluster(config, reports, checkpoints, uuids, logs, state)

    def _local(self, config, reports, batches, uuids, logs, state, max_batches, name) -> Seeded:
        from dlptui.platform.model import ExperimentState
        from tests.standins import DATA_COMMIT, DATA_REPO

        training = self.platform.training
        db = training.db
        number = db.insert(name=name, config_file="/seeded/const.yaml", trial_dir="/seeded", config=config,
                           data_repo=DATA_REPO, data_commit=DATA_COMMIT, max_batches=max_batches)
        for group, batch, metrics in reports:  # as training_runner reports them
            db.add_metrics(number, number, group, [(batch, k, v) for k, v in metrics.items()])
        for ckpt, batch in zip(uuids, batches):
            db.add_checkpoint(ckpt, number, number, batch, f"determined/{ckpt}")
        if logs:
            (training.root / "logs" / f"{number}.log").write_text("".join(line + "\n" for line in logs))
        db.update(number, state=ExperimentState(state), ended=time.time() if state != "paused" else None)
        return Seeded(str(number), uuids, str(number))

    def _cluster(self, config, reports, batches, uuids, logs, state) -> Seeded:
        """As a master leaves it: an ended experiment has been through the checkpoint GC (each trial keeps its
        best checkpoint by the searcher metric and its latest, MASTER_STORAGE's policy)."""
        s = self.master
        with s.lock:
            number = next(s.ids)
            states = {"completed": "COMPLETED", "paused": "PAUSED", "killed": "CANCELED", "error": "ERROR"}
            now = time.time()
            [trial] = s.add_experiment(number, config, states[state], now - 600, ended=None if state == "paused" else now)
            for i, (group, batch, metrics) in enumerate(reports):
                s.report_metrics(trial, group, batch, metrics, now - 500 + i)
            for ckpt, batch in zip(uuids, batches):
                s.add_checkpoint(ckpt, trial, batch, when=now - 400 + batch)
            for line in logs:
                s.add_log(trial, line)
            if state != "paused":
                s.collect_garbage(number)
        return Seeded(str(number), uuids, str(trial))


    def search(self, trials: list[tuple[dict, list, list[int]]], name: str = "seeded-search") -> Seeded:
        """A completed random search of accuracy (larger is better) over the learning rate, one trial per entry:
        (its hyperparameters, its reports as in `experiment`, the batches of its checkpoints). The Seeded's
        `checkpoints` are those uuids, trial after trial; `trials` (the attribute) their trial ids in order."""
        from tests.standins import DATA_COMMIT, DATA_REPO

        config = {
            "name": name, "entrypoint": "model_def:DogCatTrial",
            "searcher": {"name": "random", "metric": "accuracy", "smaller_is_better": False, "max_trials": len(trials),
                         "max_length": {"batches": 100}},
            "hyperparameters": {"learning_rate": {"type": "log", "minval": -4, "maxval": -1, "base": 10}, "max_batches": 100},
            "data": {"store": "pachyderm" if self.profile == "cluster" else "local", "repo": DATA_REPO, "commit": DATA_COMMIT},
        }
        now, ids, uuids = time.time(), [], []
        if self.profile == "local":
            from dlptui.platform.model import ExperimentState

            db = self.platform.training.db
            number = db.insert(name=name, config_file="/seeded/search.yaml", trial_dir="/seeded", config=config,
                               data_repo=DATA_REPO, data_commit=DATA_COMMIT, max_batches=100 * len(trials))
            for hparams, reports, batches in trials:
                trial = db.insert_trial(number, hparams, 100)
                for group, batch, metrics in reports:
                    db.add_metrics(number, trial, group, [(batch, k, v) for k, v in metrics.items()])
                for batch in batches:
                    uuids.append(str(uuid.uuid4()))
                    db.add_checkpoint(uuids[-1], number, trial, batch, f"determined/{uuids[-1]}")
                db.update_trial(trial, state=ExperimentState.COMPLETED, ended=now)
                ids.append(str(trial))
            db.update(number, state=ExperimentState.COMPLETED, ended=now)
        else:
            s = self.master
            with s.lock:
                number = next(s.ids)
                for trial, (hparams, reports, batches) in zip(s.add_experiment(number, config, "COMPLETED", now - 600, ended=now,
                                                                               trials=len(trials)), trials):
                    s.trials[trial].update(hparams={**hparams, "max_batches": 100}, end=now)
                    for i, (group, batch, metrics) in enumerate(reports):
                        s.report_metrics(trial, group, batch, metrics, now - 500 + i)
                    for batch in batches:
                        uuids.append(str(uuid.uuid4()))
                        s.add_checkpoint(uuids[-1], trial, batch, when=now - 400 + batch)
                    ids.append(str(trial))
                s.collect_garbage(number)
        return Seeded(str(number), uuids, ids[0], ids)

    # --- what a running trial adds later -------------------------------------------------

    def report(self, seeded: Seeded, group: str, batch: int, metrics: dict[str, float]) -> None:
        if self.profile == "local":
            number = int(seeded.id)
            self.platform.training.db.add_metrics(number, number, group, [(batch, k, v) for k, v in metrics.items()])
        else:
            self.master.report_metrics(int(seeded.trial), group, batch, metrics)

    def log(self, seeded: Seeded, line: str) -> None:
        if self.profile == "local":
            with open(self.platform.training.root / "logs" / f"{seeded.id}.log", "a") as f:
                f.write(line + "\n")
        else:
            self.master.add_log(int(seeded.trial), line)


@pytest.fixture
def seed(profile, contract_platform, request) -> Seeder:
    master = request.getfixturevalue("det_master_standin_server").state if profile == "cluster" else None
    return Seeder(profile, contract_platform, master)


# --- a config that starts a real experiment on each profile --------------------------------

CLUSTER_TRIAL_CONFIG = """\
name: contract-run
entrypoint: model_def:DogCatTrial
searcher: {name: single, metric: accuracy, smaller_is_better: false, max_length: {batches: 5000}}
data: {store: pachyderm, repo: dogs-and-cats, commit: master, image_size: 64}
"""


@pytest.fixture
def experiment_config(profile, tmp_path, request) -> Path:
    """A config long enough (5000 batches) to be running while a test pauses, resumes and kills it;
    its data is the head of `dogs-and-cats` on the profile's data store."""
    if profile == "cluster":
        folder = tmp_path / "trial"
        folder.mkdir()
        (folder / "model_def.py").write_text("class DogCatTrial:\n    pass\n")
        path = folder / "const.yaml"
        path.write_text(CLUSTER_TRIAL_CONFIG)
        return path
    import yaml

    from tests.fixtures.training import TINY

    from dlptui.actions.datasets import import_kaggle

    import_kaggle(request.getfixturevalue("contract_platform").data, request.getfixturevalue("sample_dir"), repo="dogs-and-cats")
    conf = yaml.safe_load(TINY.read_text())
    conf["name"] = "contract-run"
    conf["hyperparameters"]["max_batches"] = 5000
    conf["min_validation_period"] = {"batches": 1000}
    conf["min_checkpoint_period"] = {"batches": 1000}
    path = tmp_path / "contract-run.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


_names = itertools.count(1)


@pytest.fixture
def fresh_name():
    """A name no test has used in this session (the stand-ins are shared by the session)."""
    return lambda prefix="c": f"{prefix}-{uuid.uuid4().hex[:6]}{next(_names)}"
