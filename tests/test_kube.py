"""KubeCluster and the shared Kubernetes client against a real kube-apiserver (tests/fixtures/kube.py)."""

from __future__ import annotations

import socket
import uuid
from dataclasses import replace

import pytest

from dlptui.errors import InvalidInput, NotAvailable, Unreachable
from dlptui.platform.cluster.kube_cluster import KubeCluster, parse_quantity
from dlptui.platform.cluster.kube_connection import with_context
from tests.fixtures.kube import write_kubeconfig
from tests.fixtures.kube_cluster import CPU_NODE, GPU_NODE


@pytest.mark.parametrize(
    "text, value",
    [
        ("2", 2.0),
        ("500m", 0.5),
        ("7910m", 7.91),
        ("16Gi", 16 * 2**30),
        ("1000Ki", 1000 * 1024),
        ("15000Mi", 15000 * 2**20),
        ("1e3", 1000.0),
        ("1.5", 1.5),
        ("2k", 2000.0),
        ("100M", 1e8),
        ("250n", 250e-9),
        (None, 0.0),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "Gi", "16GB", "1.2.3", "ten"])
def test_parse_quantity_rejects_what_is_not_a_quantity(text):
    with pytest.raises(InvalidInput, match="is not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.fixture
def cluster(cluster_platform):
    part = cluster_platform.cluster
    assert isinstance(part, KubeCluster)
    return part


@pytest.fixture
def core(kube_cluster):
    from kubernetes import client

    api_client = kube_cluster.client()
    yield client.CoreV1Api(api_client)
    api_client.close()


def make_pod(core, namespace: str, name: str, node: str | None = None, gpus: int = 0) -> None:
    container = {"name": "main", "image": "busybox:1.36"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    spec = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    core.create_namespaced_pod(namespace, {"metadata": {"name": name}, "spec": spec})


def test_nodes_have_cpu_memory_and_gpu_capacity(cluster):
    nodes = {n.name: n for n in cluster.nodes()}
    assert {GPU_NODE, CPU_NODE} <= set(nodes)
    gpu, cpu = nodes[GPU_NODE], nodes[CPU_NODE]
    assert (gpu.gpu_capacity, gpu.gpu_allocatable) == (2, 2)
    assert (cpu.gpu_capacity, cpu.gpu_allocatable, cpu.gpu_used) == (0, 0, None)
    assert (gpu.cpu_capacity, gpu.cpu_allocatable) == (8.0, pytest.approx(7.91))
    assert (gpu.memory_capacity, gpu.memory_allocatable) == (32 * 2**30, 31 * 2**30)
    assert (cpu.memory_capacity, cpu.memory_allocatable) == (16393216 * 1024, 15000 * 2**20)
    assert gpu.ready is True and cpu.ready is False
    assert gpu.labels["cloud.google.com/gke-accelerator"] == "nvidia-tesla-t4"


def test_node_and_pod_use_come_from_the_metrics_api(cluster, core, kube_cluster):
    name = f"pachd-{uuid.uuid4().hex[:6]}"
    make_pod(core, "pachyderm", name)
    kube_cluster.kubelet.node_usage[GPU_NODE] = {"cpu": "1500m", "memory": "2Gi"}
    kube_cluster.kubelet.pod_usage[("pachyderm", name)] = {"cpu": "250m", "memory": "64Mi"}
    try:
        nodes = {n.name: n for n in cluster.nodes()}
        assert (nodes[GPU_NODE].cpu_used, nodes[GPU_NODE].memory_used) == (1.5, 2 * 2**30)
        assert (nodes[CPU_NODE].cpu_used, nodes[CPU_NODE].memory_used) == (None, None)  # no sample for it
        pod = next(w for w in cluster.workloads() if w.name == name)
        assert (pod.cpu_percent, pod.memory_bytes) == (25.0, 64 * 2**20)
    finally:
        kube_cluster.kubelet.node_usage.clear()
        kube_cluster.kubelet.pod_usage.clear()
        core.delete_namespaced_pod(name, "pachyderm", grace_period_seconds=0)


def test_a_broken_metrics_server_leaves_use_unknown(cluster, kube_cluster):
    kube_cluster.kubelet.node_usage[GPU_NODE] = {"cpu": "1", "memory": "1Gi"}
    kube_cluster.kubelet.metrics_broken = True
    try:
        gpu = next(n for n in cluster.nodes() if n.name == GPU_NODE)
        assert (gpu.gpu_capacity, gpu.cpu_used, gpu.memory_used) == (2, None, None)
    finally:
        kube_cluster.kubelet.metrics_broken = False
        kube_cluster.kubelet.node_usage.clear()


def test_without_a_metrics_server_use_is_unknown_not_zero(cluster, core, kube_cluster):
    """Takes the metrics API away for a moment and puts it back."""
    from tests.fixtures.kube_cluster import register_metrics_api, unregister_metrics_api

    name = f"det-{uuid.uuid4().hex[:6]}"
    make_pod(core, "determined", name)
    kube_cluster.kubelet.node_usage[GPU_NODE] = {"cpu": "1", "memory": "1Gi"}
    kube_cluster.kubelet.pod_usage[("determined", name)] = {"cpu": "1", "memory": "1Gi"}
    api_client = kube_cluster.client()
    unregister_metrics_api(api_client)
    try:
        gpu = next(n for n in cluster.nodes() if n.name == GPU_NODE)
        assert (gpu.cpu_used, gpu.memory_used) == (None, None)
        pod = next(w for w in cluster.workloads() if w.name == name)
        assert (pod.phase, pod.cpu_percent, pod.memory_bytes) == ("Pending", None, None)
    finally:
        kube_cluster.kubelet.node_usage.clear()
        kube_cluster.kubelet.pod_usage.clear()
        core.delete_namespaced_pod(name, "determined", grace_period_seconds=0)
        register_metrics_api(api_client, kube_cluster.kubelet.port)
        api_client.close()


def test_gpu_use_counts_the_pods_placed_on_the_node(cluster, core):
    name = f"trainer-{uuid.uuid4().hex[:6]}"
    before = next(n for n in cluster.nodes() if n.name == GPU_NODE).gpu_used
    assert before is not None
    make_pod(core, "determined", name, node=GPU_NODE, gpus=1)
    try:
        after = next(n for n in cluster.nodes() if n.name == GPU_NODE).gpu_used
        assert after == before + 1
    finally:
        core.delete_namespaced_pod(name, "determined", grace_period_seconds=0)


def test_workloads_are_the_pods_of_the_platform_namespaces(cluster, core):
    suffix = uuid.uuid4().hex[:6]
    core.create_namespace({"metadata": {"name": f"elsewhere-{suffix}"}})
    from tests.fixtures.kube_cluster import ensure_service_account

    ensure_service_account(core, f"elsewhere-{suffix}")
    make_pod(core, "pachyderm", f"pachd-{suffix}")
    make_pod(core, f"elsewhere-{suffix}", f"stranger-{suffix}")
    try:
        pods = {w.name: w for w in cluster.workloads()}
        pachd = pods[f"pachd-{suffix}"]
        assert (pachd.namespace, pachd.phase, pachd.restarts, pachd.node) == ("pachyderm", "Pending", 0, None)
        assert f"stranger-{suffix}" not in pods
    finally:
        core.delete_namespaced_pod(f"pachd-{suffix}", "pachyderm", grace_period_seconds=0)
        core.delete_namespaced_pod(f"stranger-{suffix}", f"elsewhere-{suffix}", grace_period_seconds=0)


def test_context_names_profile_context_server_and_version(cluster, kube_cluster):
    ctx = cluster.context()
    assert ctx == {"profile": "cluster", "kube_context": "local", "server": kube_cluster.url, "version": "v1.20.2"}


def test_health_reports_nodes_and_gpus(cluster, kube_cluster):
    service = cluster.health()
    assert service.reachable is True
    assert (service.part, service.version, service.endpoint) == ("cluster", "v1.20.2", kube_cluster.url)
    assert service.detail == "context local: 2 nodes, 2 GPUs"


@pytest.fixture
def two_contexts(kube_cluster, tmp_path, monkeypatch, cluster_config, dead_address):
    """A kubeconfig with the live server as "local" and a closed port as "dead"."""
    dead = f"https://{dead_address}"
    path = write_kubeconfig(
        tmp_path / "two.yaml", {"local": (kube_cluster.url, kube_cluster.token), "dead": (dead, "x")}, kube_cluster.ca
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(path))), dead


def test_contexts_are_listed_and_switchable(two_contexts):
    config, dead = two_contexts
    assert KubeCluster(config).contexts() == ["local", "dead"]
    switched = KubeCluster(with_context(config, "dead"))
    ctx = switched.context()
    assert (ctx["kube_context"], ctx["server"], ctx["version"]) == ("dead", dead, "unreachable")
    with pytest.raises(InvalidInput, match="has no context 'nowhere'; its contexts are: local, dead"):
        with_context(config, "nowhere")


def test_a_dead_api_server_is_one_clear_sentence(two_contexts):
    config, dead = two_contexts
    cluster = KubeCluster(with_context(config, "dead"))
    with pytest.raises(Unreachable) as caught:
        cluster.nodes()
    message = str(caught.value)
    assert message == (
        f"The Kubernetes API server at {dead} (context 'dead') cannot be reached (connection refused); "
        "check that the cluster is up and the kubeconfig points at it."
    )
    health = cluster.health()
    assert health.reachable is False and health.detail.startswith(f"The Kubernetes API server at {dead}")
    assert "\n" not in health.detail


def test_a_server_that_never_answers_is_cut_off_by_the_timeout(kube_cluster, tmp_path, cluster_config):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        path = write_kubeconfig(tmp_path / "silent.yaml", {"silent": (url, "x")}, kube_cluster.ca)
        config = replace(cluster_config, timeout_s=1.0, cluster=replace(cluster_config.cluster, kubeconfig=str(path)))
        with pytest.raises(Unreachable, match=rf"^The Kubernetes API server at {url} \(context 'silent'\) did not answer within 1 s"):
            KubeCluster(config).nodes()
        assert KubeCluster(config).health().reachable is False


def test_a_missing_kubeconfig_says_what_to_set(cluster_config, tmp_path):
    config = replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(tmp_path / "none.yaml")))
    with pytest.raises(Unreachable, match=r"^There is no kubeconfig at .*none\.yaml; set KUBECONFIG"):
        KubeCluster(config).nodes()
    assert "There is no kubeconfig" in KubeCluster(config).health().detail


def test_wrong_credentials_and_missing_rights_are_sentences(kube_cluster, tmp_path, cluster_config):
    path = write_kubeconfig(
        tmp_path / "users.yaml",
        {"stale": (kube_cluster.url, "not-a-token"), "nobody": (kube_cluster.url, kube_cluster.nobody_token)},
        kube_cluster.ca,
    )
    config = replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(path)))
    with pytest.raises(Unreachable, match="refused the credentials of the context; log in again"):
        KubeCluster(with_context(config, "stale")).nodes()
    with pytest.raises(NotAvailable, match=r"does not allow its user to list the nodes \(.*forbidden.*\); ask for the RBAC role\.$"):
        KubeCluster(with_context(config, "nobody")).nodes()
    assert KubeCluster(with_context(config, "stale")).health().reachable is False
    nobody = KubeCluster(with_context(config, "nobody")).health()  # the server answers; the nodes are hidden
    assert (nobody.reachable, nobody.version) == (True, "v1.20.2")
    assert nobody.detail.startswith("context nobody: The Kubernetes API server at ") and "does not allow its user to list the nodes" in nobody.detail


def test_kubeconfig_mistakes_are_sentences(kube_cluster, tmp_path, cluster_config):
    def profile(path, context=None):
        return replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(path), kube_context=context))

    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("clusters: [unclosed\n")
    with pytest.raises(InvalidInput, match=rf"^The kubeconfig {garbage} cannot be read \(.+\); fix it or point KUBECONFIG elsewhere\.$"):
        KubeCluster(profile(garbage)).nodes()

    no_current = write_kubeconfig(tmp_path / "nocurrent.yaml", {"a": (kube_cluster.url, kube_cluster.token)}, kube_cluster.ca)
    no_current.write_text(no_current.read_text().replace("current-context: a\n", ""))
    with pytest.raises(InvalidInput, match="names no current context; set kube_context in the cluster profile"):
        KubeCluster(profile(no_current)).nodes()
    assert KubeCluster(profile(no_current, "a")).context()["version"] == "v1.20.2"

    wrong = KubeCluster(profile(no_current, "b"))
    assert wrong.contexts() == ["a"]  # listing still works, to pick a right one
    with pytest.raises(InvalidInput, match="has no context 'b'; its contexts are: a"):
        wrong.nodes()


def test_a_server_certificate_the_kubeconfig_does_not_trust_is_a_sentence(kube_cluster, tmp_path, cluster_config):
    path = write_kubeconfig(tmp_path / "ca.yaml", {"other-ca": (kube_cluster.url, kube_cluster.token)}, kube_cluster.kubelet_ca)
    config = replace(cluster_config, cluster=replace(cluster_config.cluster, kubeconfig=str(path)))
    with pytest.raises(Unreachable) as caught:
        KubeCluster(config).nodes()
    assert str(caught.value) == (
        f"The Kubernetes API server at {kube_cluster.url} (context 'other-ca') failed the TLS handshake "
        "(certificate verify failed); check the kubeconfig's certificate authority."
    )
