"""infra/rbac.yaml against the real kube-apiserver (RBAC on): the read-only console's reads work with
the dlptui-viewer ClusterRole alone, and a change is refused in one sentence; dlptui-deployer may deploy."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace

import pytest
import yaml

from dlptui.errors import NotAvailable
from dlptui.platform.cluster.kube_cluster import KubeCluster
from dlptui.platform.cluster.kube_connection import with_context
from dlptui.platform.cluster.seldon_serving import SeldonServing
from dlptui.platform.model import CheckpointStorage
from tests.fixtures.kube import write_kubeconfig
from tests.fixtures.serving import version_of
from tests.helpers import INFRA

ROLES = list(yaml.safe_load_all((INFRA / "rbac.yaml").read_text()))


def in_bucket(version):
    """The version with the place a serving pod reads its checkpoint from (the registry's answer on a cluster)."""
    return replace(version, checkpoint_storage=CheckpointStorage("gcs", version.checkpoint_uuid, bucket="dlp-checkpoints"))


@pytest.fixture
def rbac_user(kube_cluster, tmp_path):
    """A service account with a token (TokenRequest), and a way to bind it to the shipped roles."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = kube_cluster.client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    for role in ROLES:  # as install.sh applies them
        try:
            if role["kind"] == "ClusterRole":
                rbac.create_cluster_role(role)
            else:
                rbac.create_namespaced_role(role["metadata"]["namespace"], role)
        except ApiException as e:
            if e.status != 409:
                raise
    name = f"watcher-{secrets.token_hex(3)}"
    core.create_namespaced_service_account("default", {"metadata": {"name": name}})
    token = core.create_namespaced_service_account_token(name, "default", {"spec": {"audiences": []}}).status.token
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": "default"}]
    made = []

    def bind(role: str, namespace: str | None = None) -> None:
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role" if namespace else "ClusterRole", "name": role}
        body = {"metadata": {"name": f"{name}-{role}"}, "roleRef": ref, "subjects": subject}
        if namespace:
            rbac.create_namespaced_role_binding(namespace, body)
        else:
            rbac.create_cluster_role_binding(body)
        made.append((namespace, body["metadata"]["name"]))

    kubeconfig = write_kubeconfig(tmp_path / "watcher.yaml", {name: (kube_cluster.url, token)}, kube_cluster.ca)
    yield name, kubeconfig, bind
    for namespace, binding in made:
        if namespace:
            rbac.delete_namespaced_role_binding(binding, namespace)
        else:
            rbac.delete_cluster_role_binding(binding)
    core.delete_namespaced_service_account(name, "default")
    api.close()


def test_the_viewer_role_reads_everything_the_console_shows_and_changes_nothing(rbac_user, cluster_config):
    name, kubeconfig, bind = rbac_user
    config = with_context(replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(kubeconfig))), name)
    serving = SeldonServing(config)
    with pytest.raises(NotAvailable, match="ask for the RBAC role"):  # before the binding: nothing
        KubeCluster(config).nodes()

    bind("dlptui-viewer")
    cluster = KubeCluster(config)
    assert len(cluster.nodes()) >= 2 and all(n.name for n in cluster.nodes())
    cluster.workloads()
    assert isinstance(serving.list_deployments(), list)
    with pytest.raises(NotAvailable) as refused:
        serving.deploy("rbac-watcher", in_bucket(version_of(INFRA, 1)))
    assert "does not allow its user to" in str(refused.value) and "\n" not in str(refused.value)


def test_the_deployer_role_may_deploy_in_seldon(rbac_user, cluster_config, kube_api):
    name, kubeconfig, bind = rbac_user
    config = with_context(replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(kubeconfig))), name)
    bind("dlptui-viewer")
    bind("dlptui-deployer", "seldon")
    serving = SeldonServing(config)
    deployed = serving.deploy("rbac-deployer", in_bucket(version_of(INFRA, 1)))
    try:
        assert deployed.name == "rbac-deployer"
        assert "rbac-deployer" in {d.name for d in serving.list_deployments()}
    finally:
        serving.undeploy("rbac-deployer")


def test_the_predictor_role_reads_the_serving_token_and_nothing_else(rbac_user, cluster_config, kube_api):
    import base64

    from kubernetes.client.exceptions import ApiException

    from dlptui.platform.cluster.kube_connection import KubeClient
    from dlptui.platform.cluster.seldon_token import serving_token

    name, kubeconfig, bind = rbac_user
    config = with_context(replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(kubeconfig))), name)
    token = secrets.token_hex(20)
    body = {"metadata": {"name": "dlptui-serving-token"}, "data": {"token": base64.b64encode(token.encode()).decode()}}
    try:
        kube_api[1].create_namespaced_secret("seldon", body)
    except ApiException as e:
        if e.status != 409:
            raise
        kube_api[1].replace_namespaced_secret("dlptui-serving-token", "seldon", body)
    kube = KubeClient(config)
    try:
        with pytest.raises(NotAvailable) as refused:  # the viewer and the deployer read no Secret
            bind("dlptui-viewer")
            bind("dlptui-deployer", "seldon")
            serving_token(kube, "seldon", "dlptui-serving-token", env={})
        assert str(refused.value) == ("Your Kubernetes user may not read the Secret seldon/dlptui-serving-token (key token), "
                                      "which holds the serving token: bind it to the Role dlptui-predictor of infra/rbac.yaml, "
                                      "or set DLPTUI_SERVING_TOKEN.")
        bind("dlptui-predictor", "seldon")
        deadline = time.monotonic() + 30  # the API server's authorizer sees a new binding through its watch
        while True:
            try:
                found = serving_token(kube, "seldon", "dlptui-serving-token", env={})
                break
            except NotAvailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert found == token
        with pytest.raises(NotAvailable, match="does not allow its user"):
            kube.call("read another Secret", kube.core.read_namespaced_secret, "dlptui-credentials", "seldon")
    finally:
        kube.close()
        kube_api[1].delete_namespaced_secret("dlptui-serving-token", "seldon")
