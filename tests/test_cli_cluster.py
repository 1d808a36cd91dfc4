"""The training, registry and serving steps of the workflow as a user runs them with `--profile cluster`: the
headless CLI against the Determined master stand-in (with the pachd stand-in for the data it pins) and, for
serving, the real kube-apiserver holding the SeldonDeployment CRD. Each step also against a dead backend:
exit 5 and one sentence naming the part that does not answer."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest

from tests.fixtures.kube import write_kubeconfig
from tests.helpers import run, run_json
from tests.standins.det_master_state import CHECKPOINTS

pytestmark = pytest.mark.timeout(120)

CLUSTER = ("--profile", "cluster")


def dead_sentence(err: str, part: str) -> None:
    """One line on stderr, `dlptui: <sentence>`, naming the part that does not answer; no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlptui: ") and lines[0].endswith("."), err
    assert part in lines[0] and "Traceback" not in err, err


@pytest.fixture
def cli(standin_cluster_env, det_master_standin_server):
    """The stand-ins at their fixed state; the master's state to play the trials."""
    return det_master_standin_server.state


@pytest.fixture
def dead_master(cli, monkeypatch, dead_address):
    monkeypatch.setenv("DET_MASTER", f"http://{dead_address}")
    return f"The Determined master at http://{dead_address} does not answer"


@pytest.fixture
def trial(tmp_path):
    """The project's trial folder, as a user's checkout holds it."""
    from dlptui import resources

    folder = tmp_path / "trial"
    shutil.copytree(resources.trial_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def play(state, before: set[int], reports: int = 2) -> threading.Thread:
    """A trial of the next experiment, as the master's agents would run it: once it runs, it reports training
    and validation metrics, saves a checkpoint and returns (the experiment then completes)."""

    def run_trial() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state.settle()
            new = [e for e in state.experiments if e not in before]
            running = [t for e in new for t in state.experiment_trials(e) if state.trials[t]["allocation"] == "RUNNING"]
            if running:
                break
            time.sleep(0.05)
        else:
            return
        trial = running[0]
        for n in range(1, reports + 1):
            state.report_metrics(trial, "training", 10 * n, {"loss": 0.7 / n})
        state.report_metrics(trial, "validation", 10 * reports, {"accuracy": 0.8, "validation_loss": 0.4})
        state.add_checkpoint(f"cli-{trial}", trial, 10 * reports)
        state.add_log(trial, "done")
        state.end_trial(trial)

    thread = threading.Thread(target=run_trial, daemon=True)
    thread.start()
    return thread


# --- train --wait and trials --------------------------------------------------------------------------------


def test_train_wait_follows_the_master_to_completion(cli, trial, capsys):
    player = play(cli, set(cli.experiments))
    code, out, err = run(capsys, *CLUSTER, "train", "--config", str(trial / "const.yaml"), "--name", "cli-run", "--wait", "--json")
    player.join(timeout=10)
    assert code == 0, err
    done = json.loads(out)
    assert (done["name"], done["state"], done["batches_done"]) == ("cli-run", "completed", 20)
    assert done["best_accuracy"] == 0.8 and done["data_commit"] and done["ended"]
    assert cli.experiments[int(done["id"])]["original"]["name"] == "cli-run"  # what went to the master


def test_train_with_the_search_and_trials(cli, trial, capsys):
    code, out, err = run(capsys, *CLUSTER, "train", "--config", str(trial / "search.yaml"), "--data", "dogs-and-cats@master", "--json")
    assert code == 0, err
    search = json.loads(out)
    rows = run_json(capsys, *CLUSTER, "trials", search["id"])
    assert len(rows) == 2 and {tuple(sorted(r["hparams"])) for r in rows} == {("freeze_backbone", "learning_rate")}
    assert all(r["state"] in ("queued", "running") for r in rows)
    cli.end_trial(int(rows[0]["id"]))
    code, out, _ = run(capsys, *CLUSTER, "trials", search["id"])
    assert code == 0 and len([line for line in out.splitlines() if line.split()[:1] and line.split()[0].isdigit()]) == 3
    assert run(capsys, *CLUSTER, "experiment", "kill", search["id"], "--yes")[0] == 0


def test_a_config_the_master_refuses_exits_2_with_its_reason(cli, trial, capsys):
    config = trial / "broken.yaml"
    config.write_text((trial / "search.yaml").read_text().replace("  time_metric: batches\n", ""))
    before = set(cli.experiments)
    code, _, err = run(capsys, *CLUSTER, "train", "--config", str(config), "--data", "dogs-and-cats@master")
    assert code == 2 and set(cli.experiments) == before
    assert err.strip() == (f"dlptui: The Determined master refused the experiment config {config}: the `adaptive_asha` "
                           "searcher requires `max_time` and `time_metric` to be set; fix it and start again.")


def test_train_and_trials_with_a_dead_master(dead_master, trial, capsys):
    code, _, err = run(capsys, *CLUSTER, "train", "--config", str(trial / "const.yaml"), "--wait")
    assert code == 5
    dead_sentence(err, dead_master)
    code, _, err = run(capsys, *CLUSTER, "trials", "1")
    assert code == 5
    dead_sentence(err, dead_master)


# --- model register and promote ---------------------------------------------------------------------------------


def test_model_register_and_promote(cli, capsys):
    first = run_json(capsys, *CLUSTER, "model", "register", "--experiment", "1", "--model", "cli-model")
    assert (first["version"], first["checkpoint_uuid"]) == (1, CHECKPOINTS[1])  # the lowest validation_loss
    second = run_json(capsys, *CLUSTER, "model", "register", "--experiment", "1", "--checkpoint", CHECKPOINTS[0], "--model", "cli-model")
    assert second["version"] == 2
    code, out, err = run(capsys, *CLUSTER, "model", "promote", "cli-model", "2", "--to", "production")
    assert (code, out.strip()) == (0, "cli-model: production moved from no version to version 2."), err
    assert cli.models["cli-model"]["metadata"]["dlptui"]["aliases"] == {"production": 2}  # what the master keeps
    versions = run_json(capsys, *CLUSTER, "model", "versions", "cli-model")
    assert [(v["version"], v["aliases"]) for v in versions] == [(1, []), (2, ["production"])]
    code, _, err = run(capsys, *CLUSTER, "model", "register", "--experiment", "1", "--model", "42")
    assert code == 2 and "'42' is not a valid model name" in err
    assert [v["checkpoint"] for v in cli.models["dogcat-model"]["versions"]] == [CHECKPOINTS[0]]  # model id 1 untouched


def test_model_register_and_promote_with_a_dead_master(dead_master, capsys):
    for argv in (("model", "register", "--experiment", "1", "--model", "cli-model"),
                 ("model", "promote", "dogcat-model", "1", "--to", "staging")):
        code, _, err = run(capsys, *CLUSTER, *argv)
        assert code == 5
        dead_sentence(err, dead_master)


# --- deploy, canary, rollback on the kube-apiserver ---------------------------------------------------------------


@pytest.fixture
def serving_env(cli, cluster_config, namespace, monkeypatch, tmp_path):
    """The master stand-in for versions, the kube-apiserver for SeldonDeployments in a fresh namespace."""
    profile = tmp_path / "config.toml"
    profile.write_text(f'[profiles.cluster]\nkind = "cluster"\nseldon_namespace = "{namespace}"\n'
                       'serving_image = "registry.example/dlptui-serving:0.1.0"\n')
    monkeypatch.setenv("DLPTUI_CONFIG", str(profile))
    cli.add_version("dogcat-model", CHECKPOINTS[1])  # version 2
    return namespace


def test_deploy_canary_and_rollback(serving_env, kube_api, capsys):
    from dlptui.platform.cluster.seldon_serving import GROUP, PLURAL, VERSION

    def stored() -> dict:
        return kube_api[0].get_namespaced_custom_object(GROUP, VERSION, serving_env, PLURAL, "cli-deploy")

    code, out, err = run(capsys, *CLUSTER, "deploy", "dogcat-model@1", "--name", "cli-deploy")
    assert code == 0 and out.startswith("Deploying dogcat-model@1 as cli-deploy: starting"), err
    assert stored()["spec"]["predictors"][0]["labels"] == {"dlptui.io/model-version": "v1"}

    canary = run_json(capsys, *CLUSTER, "deploy", "dogcat-model@1", "--name", "cli-deploy", "--canary", "2", "--traffic", "20")
    assert (canary["version"], canary["canary_version"], canary["canary_traffic"]) == (1, 2, 20)
    assert [(p["name"], p["traffic"]) for p in stored()["spec"]["predictors"]] == [("main", 80), ("canary", 20)]

    code, out, err = run(capsys, *CLUSTER, "deploy", "dogcat-model@2", "--name", "cli-deploy", "--canary", "2", "--traffic", "0")
    assert code == 0 and "Updated cli-deploy from version 1 to" in out, err
    assert [p["name"] for p in stored()["spec"]["predictors"]] == ["main"]
    code, out, err = run(capsys, *CLUSTER, "rollback", "cli-deploy")
    assert (code, out.strip()) == (0, "Rolled cli-deploy back from version 2 to version 1."), err
    assert stored()["spec"]["predictors"][0]["labels"] == {"dlptui.io/model-version": "v1"}


def test_deploy_canary_and_rollback_with_a_dead_backend(serving_env, capsys, monkeypatch, tmp_path, kube_cluster, dead_address):
    assert run(capsys, *CLUSTER, "deploy", "dogcat-model@1", "--name", "cli-dead")[0] == 0
    dead_api = f"https://{dead_address}"
    dead_kube = write_kubeconfig(tmp_path / "dead.yaml", {"dead": (dead_api, "x")}, kube_cluster.ca)
    monkeypatch.setenv("KUBECONFIG", str(dead_kube))
    for argv in (("deploy", "dogcat-model@2", "--name", "cli-dead"),
                 ("deploy", "dogcat-model@1", "--name", "cli-dead", "--canary", "2"), ("rollback", "cli-dead")):
        code, _, err = run(capsys, *CLUSTER, *argv)
        assert code == 5, err
        dead_sentence(err, f"The Kubernetes API server at {dead_api}")
    monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig))
    monkeypatch.setenv("DET_MASTER", f"http://{dead_address}")  # the versions come from the master
    for argv in (("deploy", "dogcat-model@2", "--name", "cli-dead"), ("deploy", "dogcat-model@1", "--name", "cli-dead", "--canary", "2")):
        code, _, err = run(capsys, *CLUSTER, *argv)
        assert code == 5, err
        dead_sentence(err, f"The Determined master at http://{dead_address} does not answer")


def test_drift_on_the_cluster_says_it_keeps_no_prediction_log(serving_env, capsys):
    assert run(capsys, *CLUSTER, "deploy", "dogcat-model@1", "--name", "cli-drift")[0] == 0
    code, out, err = run(capsys, *CLUSTER, "drift", "cli-drift")
    assert code == 6 and out == "", err
    dead_sentence(err, "The cluster keeps no prediction log dlptui can read, so the drift of cli-drift cannot be judged here")


def test_kept_inputs_and_replay_on_the_cluster_are_one_sentence(serving_env, capsys):
    assert run(capsys, *CLUSTER, "deploy", "dogcat-model@1", "--name", "cli-kept")[0] == 0
    for argv in (("deployment", "keep-inputs", "cli-kept", "10"), ("replay", "cli-kept", "--to", "dogcat-model@1")):
        code, out, err = run(capsys, *CLUSTER, *argv)
        assert code == 6 and out == "", err
        dead_sentence(err, "The cluster keeps no prediction log, so it keeps no inputs to look at or replay")
