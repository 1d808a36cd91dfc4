"""The console's Pilot tests rerun on the cluster profile.

One cluster-profile Config points at the real kube-apiserver of tests/fixtures/kube.py (its
kubeconfig, the SeldonDeployment CRD, the GPU and the NotReady nodes) and at the pachd and
Determined master stand-ins (tests/standins/); every screen is driven by keys, and what a key
changed is checked through the adapters or the kubernetes client.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from textual.widgets import Log, Select, Tree

from dlptui.platform import Platform
from dlptui.platform.cluster.determined_registry import META_KEY
from dlptui.platform.model import ExperimentState
from dlptui.tui.dialogs.confirm import ConfirmDialog
from dlptui.tui.dialogs.deploy import DeployDialog
from dlptui.tui.dialogs.prompt import InputDialog
from dlptui.tui.screens.cluster import ClusterScreen
from dlptui.tui.screens.data import CommitsScreen, DataScreen, FilesScreen
from dlptui.tui.screens.deployments import DeploymentsScreen
from dlptui.tui.screens.experiment import ExperimentScreen
from dlptui.tui.screens.experiments import ExperimentsScreen
from dlptui.tui.screens.models import ModelsScreen, VersionsScreen
from dlptui.tui.screens.predict import PredictScreen
from dlptui.tui.widgets.metric_chart import MetricChart
from dlptui.tui.widgets.resource_table import ResourceTable
from tests.fixtures.kube_cluster import CPU_NODE, GPU_NODE
from tests.standins import DATA_COMMIT, DATA_REPO
from tests.fixtures.tui import SIZE, answer, drawn, make_app, wait_for

GROUP, VERSION, PLURAL = "machinelearning.seldon.io", "v1", "seldondeployments"


@pytest.fixture
def seldon_namespace(kube_api) -> str:
    """A namespace of this test's own for its SeldonDeployments (the API server is shared by the session)."""
    from tests.fixtures.kube_cluster import ensure_service_account

    name = f"seldon-{uuid.uuid4().hex[:8]}"
    kube_api[1].create_namespace({"metadata": {"name": name}})
    ensure_service_account(kube_api[1], name)
    return name


@pytest.fixture
def full_config(cluster_config, standin_cluster_env, seldon_namespace):
    """The cluster profile with all five parts live: kubeconfig, Seldon CRD, pachd and Determined stand-ins."""
    from dlptui.config import load_config

    config = load_config(profile="cluster")  # both fixtures have set their environment by now
    assert config.cluster.kubeconfig == cluster_config.cluster.kubeconfig
    assert config.cluster.pachd_address and config.cluster.det_master
    return replace(config, cluster=replace(config.cluster, seldon_namespace=seldon_namespace))


@pytest.fixture
def full_platform(full_config):
    platform = Platform(full_config)
    yield platform
    platform.close()


def table(app, name: str) -> ResourceTable:
    return app.screen.query_one(f"#{name}", ResourceTable)


def state_line(app) -> str:
    return str(app.screen.query_one("#state").render())


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


def header(app) -> str:
    from dlptui.tui.widgets.header import DlpHeader

    return app.screen.query_one(DlpHeader).render().plain


async def test_cluster_screen_shows_the_real_nodes_parts_and_pods(full_config, full_platform, kube_api):
    core = kube_api[1]
    pod = f"pachd-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod("pachyderm", {"metadata": {"name": pod}, "spec": {"containers": [{"name": "pachd", "image": "pachyderm/pachd:2.7.0"}]}})
    app = make_app(full_config, full_platform)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert isinstance(app.screen, ClusterScreen)
            nodes = table(app, "nodes")
            await wait_for(pilot, lambda: {GPU_NODE, CPU_NODE} <= set(nodes.all_keys), what="the two nodes")
            gpu, cpu = nodes.get_row(GPU_NODE), nodes.get_row(CPU_NODE)
            assert (gpu[1], cpu[1]) == ("yes", "no")
            assert " / 2" in str(gpu[4]), gpu  # used of the node's two nvidia.com/gpu
            assert str(cpu[4]) == "0"
            assert str(gpu[2]).split("/")[1].split()[0] == "8.0"  # capacity: 8 cores

            services = table(app, "services")
            await wait_for(
                pilot, lambda: all(services.get_row(p)[2] == "ok" for p in ("cluster", "data", "training", "registry", "serving")),
                what="all five parts ok",
            )
            assert services.get_row("cluster")[1] == "Kubernetes API server"
            assert "2 GPUs" in str(services.get_row("cluster")[4])
            assert services.get_row("serving")[1] == "Seldon Core"
            assert services.get_row("data")[1] == "pachd"
            assert services.get_row("training")[1] == services.get_row("registry")[1] == "Determined master"
            assert services.get_row("registry")[3] == "0.38.1-standin"

            workloads = table(app, "workloads")
            await wait_for(pilot, lambda: f"pachyderm/{pod}" in workloads.all_keys, what="the pachd pod")
            row = workloads.get_row(f"pachyderm/{pod}")
            assert (row[1], row[2]) == ("pachyderm", "Pending")
            assert "─ Pods of the platform ─" in drawn(app)[0]  # the pane's title, as drawn
            await wait_for(pilot, lambda: "context local" in header(app), what="the kube context in the header")
            assert "kubernetes v1.20.2" in header(app) and "profile cluster" in header(app)
            assert "● cluster Kubernetes API server" in header(app) and "✖" not in header(app)
    finally:
        core.delete_namespaced_pod(pod, "pachyderm", grace_period_seconds=0)


async def test_data_screen_lists_pachd_repos_drills_down_and_creates_one(full_config, full_platform):
    app = make_app(full_config, full_platform, start="data")
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, DataScreen)
        repos = table(app, "repos")
        await wait_for(pilot, lambda: DATA_REPO in repos.all_keys, what="the stand-in's repo")
        assert repos.get_row(DATA_REPO)[2] == "1"  # one commit
        repos.focus()
        repos.move_cursor(row=repos.shown_keys.index(DATA_REPO))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CommitsScreen), what="the commits screen")
        commits = table(app, "commits")
        await wait_for(pilot, lambda: commits.all_keys == [DATA_COMMIT], what="the stand-in's commit")
        assert commits.get_row(DATA_COMMIT)[1] == "master"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FilesScreen), what="the files screen")
        tree = app.screen.query_one("#files", Tree)
        await wait_for(pilot, lambda: tree.root.children, what="the file tree")
        labels: list[str] = []

        def walk(node) -> None:
            labels.append(str(node.label))
            for child in node.children:
                walk(child)

        walk(tree.root)
        assert {label.split()[0] for label in labels} >= {"train/", "eval/"}  # folders open when asked
        assert "4 files" in state_line(app)
        await pilot.press("slash", *"jpg", "enter")  # every file below, through pachd's listing
        await wait_for(pilot, lambda: "4 of 4 files match" in state_line(app), what="the files found")
        text = drawn(app)[0]
        assert all(name in text for name in ("train/", "eval/", "cat.1.jpg", "dog.1.jpg", "cat.2.jpg", "dog.2.jpg"))
        await pilot.press("escape")  # the filter cleared
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CommitsScreen), what="back to the commits")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), what="back to the repos")

        name = f"pets-{uuid.uuid4().hex[:6]}"
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, InputDialog), what="the name dialog")
        await pilot.press(*name, "enter")
        await wait_for(pilot, lambda: name in table(app, "repos").all_keys, what="the new repo in the table")
        assert name in [r.name for r in full_platform.data.list_repos()]  # it is on pachd
        assert full_platform.data.inspect_repo(name).commits == 0


async def test_experiments_screen_live_view_and_pause_on_the_master(full_config, full_platform, tmp_path):
    app = make_app(full_config, full_platform, start="experiments")
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, ExperimentsScreen)
        experiments = table(app, "experiments")
        await wait_for(pilot, lambda: "1" in experiments.all_keys, what="the master's experiment")
        row = experiments.get_row("1")
        assert (row[1], str(row[2])) == ("dogcat-resnet", "completed")
        assert str(row[4]) == "100/100" and str(row[6]) == "0.36"  # the listing carries the searcher metric
        assert str(row[7]) == f"{DATA_REPO}@{DATA_COMMIT[:12]}"

        # a completed experiment cannot be paused: one sentence from the master's answer
        experiments.focus()
        experiments.move_cursor(row=experiments.shown_keys.index("1"))
        await pilot.press("p")
        await wait_for(pilot, lambda: any("cannot be paused" in n for n in notes(app)), what="the conflict sentence")
        assert full_platform.training.get_experiment("1").state is ExperimentState.COMPLETED

        # the live view: its metrics in the charts, its log lines in the tail
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentScreen), what="the live view")
        loss = app.screen.query_one("#loss", MetricChart)
        accuracy = app.screen.query_one("#accuracy", MetricChart)
        await wait_for(pilot, lambda: loss.points == 6 and accuracy.points == 2, what="every metric point charted")
        assert set(loss.series) == {"training loss", "validation loss"}
        assert set(accuracy.series) == {"validation accuracy"}
        log = app.screen.query_one("#log", Log)
        await wait_for(pilot, lambda: log.line_count == 5, what="the log tail")
        assert "[rank=0] loading data dogs-and-cats" in log.lines
        checkpoints = table(app, "checkpoints")
        await wait_for(pilot, lambda: checkpoints.row_count == 2, what="the two checkpoints")
        summary = app.screen.query_one("#summary")
        await wait_for(pilot, lambda: "best accuracy 86.0%" in str(summary.render()), what="the best accuracy")
        assert "completed" in str(summary.render()) and "100/100 batches" in str(summary.render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen), what="back to the list")

        # a running experiment on the master: p pauses it, k asks and "No" keeps it, y kills it
        trial = tmp_path / "trial"
        trial.mkdir()
        (trial / "const.yaml").write_text(
            "name: dogcat-running\nentrypoint: model_def:DogCatTrial\n"
            "searcher: {name: single, metric: validation_loss, smaller_is_better: true, max_length: {batches: 20}}\n"
            f"data: {{store: pachyderm, repo: {DATA_REPO}, commit: master}}\n"
        )
        (trial / "model_def.py").write_text("class DogCatTrial:\n    pass\n")
        running = full_platform.training.create_experiment(trial / "const.yaml")
        await wait_for(pilot, lambda: running.id in experiments.all_keys, what="the running experiment's row")
        experiments.move_cursor(row=experiments.shown_keys.index(running.id))
        await pilot.press("p")
        await wait_for(
            pilot, lambda: full_platform.training.get_experiment(running.id).state is ExperimentState.PAUSED, what="the pause"
        )
        await wait_for(pilot, lambda: str(experiments.get_row(running.id)[2]) == "paused", what="paused on screen")
        await pilot.press("c")
        await wait_for(
            pilot, lambda: full_platform.training.get_experiment(running.id).state is ExperimentState.RUNNING, what="the resume"
        )
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        assert app.focused is not None and app.focused.id == "no"
        kills = []  # what the screen asks the master to kill
        kill = full_platform.training.kill
        full_platform.training.kill = lambda experiment_id: kills.append(experiment_id) or kill(experiment_id)
        await answer(pilot, "enter", lambda: isinstance(app.screen, ExperimentsScreen))
        assert kills == [] and full_platform.training.get_experiment(running.id).state is ExperimentState.RUNNING
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(
            pilot, lambda: full_platform.training.get_experiment(running.id).state is ExperimentState.KILLED, what="the kill"
        )
        assert kills == [running.id]  # the "y" alone


async def test_models_screen_promotes_on_the_master(full_config, full_platform, det_master_standin_server):
    registry = full_platform.registry
    assert registry.get_model("dogcat-model").aliases == {}
    app = make_app(full_config, full_platform, start="models")
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, ModelsScreen)
        models = table(app, "models")
        await wait_for(pilot, lambda: "dogcat-model" in models.all_keys, what="the master's model")
        assert models.get_row("dogcat-model")[1] == "1"
        models.focus()
        models.move_cursor(row=models.shown_keys.index("dogcat-model"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionsScreen), what="the versions screen")
        versions, history = table(app, "versions"), table(app, "history")
        await wait_for(pilot, lambda: versions.all_keys == ["dogcat-model@1"], what="version 1")
        row = versions.get_row("dogcat-model@1")
        assert (str(row[1]), row[2], row[5]) == ("-", "78.0%", "1")  # accuracy as every face writes it
        assert str(row[6]) == f"{DATA_REPO}@{DATA_COMMIT[:12]}"  # dlptui.text.data_ref, as on every screen
        assert history.row_count == 0

        versions.focus()
        await pilot.press("P")
        await wait_for(pilot, lambda: history.row_count == 1, what="the promotion in the history")
        newest = [str(c) for c in history.get_row(history.shown_keys[0])]
        assert newest[1:5] == ["production", "-", "v1", "determined"]
        await wait_for(pilot, lambda: str(versions.get_row("dogcat-model@1")[1]) == "production", what="the alias on screen")
        # the alias lives in the model's metadata on the master
        assert registry.get_model("dogcat-model").aliases == {"production": 1}
        stored = det_master_standin_server.state.models["dogcat-model"]["metadata"][META_KEY]
        assert stored["aliases"] == {"production": 1} and stored["history"][0]["to_version"] == 1

        await pilot.press("s")
        await wait_for(pilot, lambda: history.row_count == 2, what="the staging promotion")
        assert registry.get_model("dogcat-model").aliases == {"production": 1, "staging": 1}


async def test_deployments_and_predict_screens_on_the_api_server(full_config, full_platform, kube_api, seldon_namespace):
    custom = kube_api[0]
    app = make_app(full_config, full_platform, start="deployments")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DeploymentsScreen)
        await wait_for(pilot, lambda: "Nothing is deployed" in state_line(app), what="the empty state")
        deployments = table(app, "deployments")

        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, DeployDialog), what="the deploy dialog")
        assert app.screen.query_one("#name").value == "dogcat-deploy"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: not isinstance(app.screen, DeployDialog), what="the dialog to close")
        await wait_for(pilot, lambda: "dogcat-deploy" in deployments.all_keys, what="the deployment row")
        assert str(deployments.get_row("dogcat-deploy")[1]) == "dogcat-model@1"
        assert str(deployments.get_row("dogcat-deploy")[3]) == "starting"
        assert "The Seldon operator has not reported on it yet." in state_line(app)
        log = screen.query_one("#log", Log)  # no pod yet: the log pane says so, the list still shows
        await wait_for(pilot, lambda: any("has no pod yet" in line for line in log.lines), what="the no-pod sentence")
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, seldon_namespace, PLURAL, "dogcat-deploy")
        assert obj["kind"] == "SeldonDeployment"
        params = {p["name"]: p["value"] for p in obj["spec"]["predictors"][0]["graph"]["parameters"]}
        assert (params["model_name"], params["version"]) == ("dogcat-model", "1")
        # where the registry's version 1 lies (the stand-in's shared_fs storage), resolved here, not in the pod
        assert params["checkpoint_uri"].startswith("/mnt/checkpoints/determined-checkpoint/")
        [container] = obj["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"]
        assert "envFrom" not in container

        # play the Seldon operator: the deployment is built
        address = f"http://dogcat-deploy-default.{seldon_namespace}.svc.cluster.local:8000/api/v1.0/predictions"
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, seldon_namespace, PLURAL, "dogcat-deploy", {
            "status": {"state": "Available", "replicas": 1, "address": {"url": address}},
        })  # fmt: skip
        await wait_for(pilot, lambda: str(deployments.get_row("dogcat-deploy")[3]) == "available", what="available")
        assert str(deployments.get_row("dogcat-deploy")[4]) == address

        # the Predict screen offers it
        await pilot.press("6")
        await wait_for(pilot, lambda: isinstance(app.screen, PredictScreen), what="the predict screen")
        select = app.screen.query_one("#deployment", Select)
        await wait_for(pilot, lambda: not select.is_blank() and select.value == "dogcat-deploy", what="the deployment offered")
        await pilot.press("5")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the deployments screen")

        # undeploy asks; "No" keeps it on the API server, "y" deletes it there
        deployments.focus()
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        assert app.focused is not None and app.focused.id == "no"
        undeploys = []  # what the screen asks the API server to delete
        undeploy = full_platform.serving.undeploy
        full_platform.serving.undeploy = lambda name: undeploys.append(name) or undeploy(name)
        await answer(pilot, "enter", lambda: app.screen is screen)
        assert undeploys == [] and [d.name for d in full_platform.serving.list_deployments()] == ["dogcat-deploy"]
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: deployments.row_count == 0, what="the row to go")
        assert undeploys == ["dogcat-deploy"]  # the "y" alone
        listed = custom.list_namespaced_custom_object(GROUP, VERSION, seldon_namespace, PLURAL)["items"]
        assert [o["metadata"]["name"] for o in listed] == []


async def test_a_dead_pachd_shows_in_the_header_and_the_other_screens_work(full_config, dead_address):
    config = replace(full_config, cluster=replace(full_config.cluster, pachd_address=f"grpc://{dead_address}"))
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "data" in app.health.services, timeout=config.timeout_s + 30, what="the data part's health")
        assert not app.health.services["data"].reachable
        assert app.health.services["data"].detail.startswith(f"pachd at {dead_address} does not answer;")
        await wait_for(pilot, lambda: "✖ data" in header(app), what="the dead part in the header")
        assert f"data: pachd at {dead_address} does not answer" in header(app)
        await wait_for(pilot, lambda: app.health.services.get("training") and app.health.services["training"].reachable, what="training ok")

        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), what="the data screen")
        await wait_for(pilot, lambda: "does not answer" in state_line(app), what="the data screen's state")
        assert table(app, "repos").row_count == 0

        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen), what="the experiments screen")
        await wait_for(pilot, lambda: "1" in table(app, "experiments").all_keys, what="the experiments from the master")
        await pilot.press("1")
        await wait_for(pilot, lambda: GPU_NODE in table(app, "nodes").all_keys, what="the nodes")
        assert app.is_running
