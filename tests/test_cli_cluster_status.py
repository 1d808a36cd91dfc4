"""`dlptui --profile cluster status --json`, run as a user runs it, against the test kube-apiserver."""

from __future__ import annotations

from tests.fixtures.kube import write_kubeconfig
from tests.helpers import run_cluster_status


def test_status_reports_the_cluster_and_seldon(kube_cluster, home):
    code, parts, stderr = run_cluster_status(home, KUBECONFIG=str(kube_cluster.kubeconfig))
    from dlptui.platform import PARTS

    assert set(parts) == set(PARTS) and {"cluster", "data", "training", "registry", "serving", "pipelines"} == set(PARTS), stderr
    cluster, serving = parts["cluster"], parts["serving"]
    assert cluster["reachable"] is True, cluster
    assert (cluster["backend"], cluster["version"], cluster["endpoint"]) == ("Kubernetes API server", "v1.20.2", kube_cluster.url)
    assert cluster["detail"].startswith("context local: ") and cluster["detail"].endswith(" nodes, 2 GPUs")
    assert serving["reachable"] is True, serving
    assert serving["backend"] == "Seldon Core"
    assert serving["detail"].startswith("SeldonDeployment CRD installed; ")
    assert "Traceback" not in stderr
    # Pachyderm and Determined are not running here: the command says so with exit status 5 (unreachable)
    assert code == (0 if all(p["reachable"] for p in parts.values()) else 5)


def test_status_with_a_dead_api_server_is_a_sentence_per_part(kube_cluster, home, tmp_path, dead_address):
    dead = f"https://{dead_address}"
    kubeconfig = write_kubeconfig(tmp_path / "dead.yaml", {"dead": (dead, "x")}, kube_cluster.ca)
    code, parts, stderr = run_cluster_status(home, KUBECONFIG=str(kubeconfig))
    assert code == 5 and "Traceback" not in stderr
    for part in ("cluster", "serving"):
        assert parts[part]["reachable"] is False
        assert parts[part]["detail"] == (
            f"The Kubernetes API server at {dead} (context 'dead') cannot be reached (connection refused); "
            "check that the cluster is up and the kubeconfig points at it."
        )
