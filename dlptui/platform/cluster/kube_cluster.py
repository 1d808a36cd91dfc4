"""The cluster part of the cluster profile: Kubernetes nodes, GPUs and the platform's pods.

Reads the cluster of the kubeconfig's active context (or the profile's `kube_context`):
nodes with their CPU, memory and `nvidia.com/gpu` capacity and allocatable amounts, use
from the metrics API where it is installed (else None), and the pods of the platform's
namespaces with their phase and restarts.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dlptui.errors import InvalidInput, NotAvailable, PlatformError
from dlptui.platform.cluster.kube_connection import KubeClient, list_contexts, timestamp
from dlptui.platform.model import Node, Service, Workload

if TYPE_CHECKING:
    from dlptui.config import Config

GPU = "nvidia.com/gpu"
METRICS = ("metrics.k8s.io", "v1beta1")

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")


def parse_quantity(text: str | int | float | None) -> float:
    """A Kubernetes quantity as a number: "2" -> 2, "500m" -> 0.5, "16Gi" -> 17179869184, "1e3" -> 1000."""
    if text is None:
        return 0.0
    if isinstance(text, int | float):
        return float(text)
    match = _QUANTITY.match(text.strip())
    if not match:
        raise InvalidInput(f"{text!r} is not a Kubernetes quantity (like 2, 500m, 16Gi or 1e3).")
    number, exponent, suffix = match.groups()
    if exponent:
        return float(number + exponent)
    return float(number) * _SUFFIXES[suffix or ""]


class KubeCluster:
    """`ports.Cluster` over the Kubernetes API of the profile's kubeconfig context."""

    def __init__(self, config: Config, platform: Any = None) -> None:
        self.config = config
        self.kube = KubeClient(config)

    # --- the port -----------------------------------------------------------------

    def health(self) -> Service:
        service = Service(part="cluster", backend="Kubernetes API server", reachable=False)
        limit = self.config.timeout_s / 2  # two requests, together within the profile's timeout
        try:
            version = self.kube.call("read the server version", self.kube.version_api.get_code, timeout=limit)
        except PlatformError as e:
            return replace(service, detail=str(e), endpoint=self.kube.server)
        service = replace(service, reachable=True, version=version.git_version, endpoint=self.kube.server)
        try:
            nodes = self.kube.call("list the nodes", self.kube.core.list_node, timeout=limit).items
        except PlatformError as e:  # the server answers, but not with the nodes (RBAC, a timeout)
            return replace(service, detail=f"context {self.kube.context}: {e}")
        gpus = sum(int(parse_quantity((n.status.capacity or {}).get(GPU))) for n in nodes)
        return replace(service, detail=f"context {self.kube.context}: {len(nodes)} nodes, {gpus} GPUs")

    def context(self) -> dict[str, str]:
        """Profile, kube context, server URL and server version ("unreachable" when the server does not answer)."""
        self.kube.api  # noqa: B018 - builds the client: a bad kubeconfig raises here
        try:
            version = self.kube.call("read the server version", self.kube.version_api.get_code).git_version
        except PlatformError:
            version = "unreachable"
        return {
            "profile": self.config.profile,
            "kube_context": self.kube.context or "",
            "server": self.kube.server,
            "version": version,
        }

    def contexts(self) -> list[str]:
        """The contexts of the kubeconfig; switch with `kubeclient.with_context(config, name)` and a new Platform."""
        return list_contexts(self.config)[0]

    def nodes(self) -> list[Node]:
        items = sorted(self.kube.call("list the nodes", self.kube.core.list_node).items, key=lambda n: n.metadata.name)
        usage = self._metrics("nodes")
        return [self._node(n, usage) for n in items]

    def workloads(self) -> list[Workload]:
        result: list[Workload] = []
        for ns in self.config.cluster.platform_namespaces:
            pods = self.kube.call(f"list the pods of namespace {ns!r}", self.kube.core.list_namespaced_pod, ns).items
            usage = self._metrics("pods", ns) if pods else None
            result.extend(_workload(p, usage) for p in pods)
        return sorted(result, key=lambda w: (w.namespace, w.name))

    def close(self) -> None:
        self.kube.close()

    # --- helpers ------------------------------------------------------------------

    def _metrics(self, kind: str, namespace: str | None = None) -> dict[str, dict[str, float]] | None:
        """Use per node (or pod) from metrics.k8s.io, {name: {"cpu": cores, "memory": bytes}}; None without the API."""
        custom = self.kube.custom
        try:
            if namespace:
                listing = self.kube.call("read pod metrics", custom.list_namespaced_custom_object, *METRICS, namespace, kind)
            else:
                listing = self.kube.call("read node metrics", custom.list_cluster_custom_object, *METRICS, kind)
        except PlatformError:  # no metrics-server, a broken one, or no right to read it: use is unknown
            return None
        usage: dict[str, dict[str, float]] = {}
        for item in listing.get("items", []):
            parts = [item.get("usage", {})] if kind == "nodes" else [c.get("usage", {}) for c in item.get("containers", [])]
            usage[item["metadata"]["name"]] = {
                "cpu": sum(parse_quantity(u.get("cpu")) for u in parts),
                "memory": sum(parse_quantity(u.get("memory")) for u in parts),
            }
        return usage

    def _gpus_requested(self, node: str) -> int | None:
        """GPUs held by the pods placed on `node` that have not ended (what the scheduler counts); None if not allowed."""
        try:
            pods = self.kube.call(
                f"list the pods of node {node!r}",
                self.kube.core.list_pod_for_all_namespaces,
                field_selector=f"spec.nodeName={node},status.phase!=Succeeded,status.phase!=Failed",
            ).items
        except NotAvailable:
            return None
        return sum(_pod_gpus(p) for p in pods)

    def _node(self, n: Any, usage: dict | None) -> Node:
        capacity, allocatable = n.status.capacity or {}, n.status.allocatable or {}
        ready = any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        used = (usage or {}).get(n.metadata.name)
        gpu_capacity = int(parse_quantity(capacity.get(GPU)))
        return Node(
            name=n.metadata.name,
            ready=ready,
            cpu_capacity=parse_quantity(capacity.get("cpu")),
            cpu_allocatable=parse_quantity(allocatable.get("cpu")),
            cpu_used=used["cpu"] if used else None,
            memory_capacity=int(parse_quantity(capacity.get("memory"))),
            memory_allocatable=int(parse_quantity(allocatable.get("memory"))),
            memory_used=int(used["memory"]) if used else None,
            gpu_capacity=gpu_capacity,
            gpu_allocatable=int(parse_quantity(allocatable.get(GPU))),
            gpu_used=self._gpus_requested(n.metadata.name) if gpu_capacity else None,
            labels=dict(n.metadata.labels or {}),
        )


def _pod_gpus(pod: Any) -> int:
    total = 0
    for c in pod.spec.containers or []:
        resources = c.resources
        amount = ((resources and resources.limits) or {}).get(GPU) or ((resources and resources.requests) or {}).get(GPU)
        total += int(parse_quantity(amount))
    return total


def _workload(pod: Any, usage: dict | None) -> Workload:
    statuses = pod.status.container_statuses or []
    waiting = [s.state.waiting.reason for s in statuses if s.state and s.state.waiting and s.state.waiting.reason]
    phase = pod.status.phase or "Unknown"
    if pod.metadata.deletion_timestamp:
        phase = "Terminating"
    elif waiting and waiting[0] not in ("ContainerCreating", "PodInitializing"):
        phase = waiting[0]  # CrashLoopBackOff or ImagePullBackOff says more than "Pending" or "Running"
    used = (usage or {}).get(pod.metadata.name)
    return Workload(
        name=pod.metadata.name,
        namespace=pod.metadata.namespace,
        phase=phase,
        restarts=sum(s.restart_count or 0 for s in statuses),
        node=pod.spec.node_name,
        started=timestamp(pod.status.start_time),
        cpu_percent=used["cpu"] * 100 if used else None,
        memory_bytes=int(used["memory"]) if used else None,
    )


