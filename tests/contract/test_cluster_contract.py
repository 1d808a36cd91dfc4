"""ports.Cluster, once for both profiles: this host, and Kubernetes (the real kube-apiserver with two Nodes)."""

from __future__ import annotations

import pytest

from dlptui.platform.model import Node, Service, Workload

pytestmark = pytest.mark.timeout(60)


def test_health_is_a_reachable_service_of_the_cluster_part(cluster_part):
    service = cluster_part.health()
    assert isinstance(service, Service)
    assert (service.part, service.reachable) == ("cluster", True), service.detail
    assert service.backend and service.detail and service.version


def test_context_names_the_profile_in_text(cluster_part, profile):
    context = cluster_part.context()
    assert context["profile"] == profile
    assert context and all(isinstance(k, str) and isinstance(v, str) for k, v in context.items())


def test_nodes_are_sorted_with_capacity_at_least_what_is_allocatable(cluster_part):
    nodes = cluster_part.nodes()
    assert nodes and all(isinstance(n, Node) for n in nodes)
    names = [n.name for n in nodes]
    assert names == sorted(names) and len(set(names)) == len(names)
    for n in nodes:
        assert n.cpu_capacity > 0 and n.memory_capacity > 0
        assert n.cpu_capacity >= n.cpu_allocatable >= 0
        assert n.memory_capacity >= n.memory_allocatable >= 0
        assert n.gpu_capacity >= n.gpu_allocatable >= 0
        assert n.gpu_used is None or 0 <= n.gpu_used <= n.gpu_capacity


@pytest.fixture
def a_workload(profile, kube_platform, request, fresh_name):
    """A process of the platform (a pid file under home) or a pod in a platform namespace: its (namespace, name)."""
    name = fresh_name("seeded")
    if profile == "local":
        import subprocess
        import sys

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        folder = kube_platform.config.home / "serving"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.pid").write_text(f"{child.pid}\n")
        yield "serving", name
        child.kill()
        child.wait()
    else:
        _, core = request.getfixturevalue("kube_api")
        pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "model", "image": "registry.example/x:1"}]}}
        core.create_namespaced_pod("seldon", pod)
        yield "seldon", name
        core.delete_namespaced_pod(name, "seldon", grace_period_seconds=0)


def test_workloads_are_sorted_by_part_then_name(cluster_part, a_workload):
    workloads = cluster_part.workloads()
    assert a_workload in [(w.namespace, w.name) for w in workloads]
    assert all(isinstance(w, Workload) for w in workloads)
    keys = [(w.namespace, w.name) for w in workloads]
    assert keys == sorted(keys)
    assert all(w.phase and w.restarts >= 0 for w in workloads)
