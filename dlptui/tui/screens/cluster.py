"""Cluster: the nodes (CPU, memory, GPUs), the platform's parts and its processes or pods."""

from __future__ import annotations

from textual.app import ComposeResult

from dlptui.platform import PARTS
from dlptui.text import MISSING, since, size
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.widgets.resource_table import ResourceTable

BACKENDS = {  # what each part is, for a part that did not say (not built yet)
    "cluster": "host / Kubernetes",
    "data": "data store / pachd",
    "training": "trainer / Determined master",
    "registry": "model registry",
    "serving": "serving / Seldon",
    "pipelines": "pipeline runner / pachd",
}


def _share(used, total, unit=lambda v: f"{v:g}") -> str:
    if used is None:
        return f"- / {unit(total)}"
    pct = f" ({100 * used / total:.0f}%)" if total else ""
    return f"{unit(used)} / {unit(total)}{pct}"


class ClusterScreen(BaseScreen):
    TITLE = "Cluster"
    POLL_SECONDS = 2.0

    def compose_body(self) -> ComposeResult:
        yield ResourceTable(
            [("name", "NAME"), ("ready", "READY"), ("cpu", "CPU (cores)"), ("memory", "MEMORY"), ("gpu", "GPUS")],
            title="Nodes",
            id="nodes",
            classes="short",
        )
        yield ResourceTable(
            [("part", "PART"), ("backend", "BACKEND"), ("state", "STATE"), ("version", "VERSION"), ("detail", "DETAIL")],
            title="Services",
            id="services",
            classes="short",
        )
        pods = self.config.kind == "cluster"
        yield ResourceTable(
            [
                ("name", "NAME"),
                ("part", "NAMESPACE" if pods else "PART"),
                ("phase", "PHASE"),
                ("cpu", "CPU %"),
                ("memory", "MEMORY"),
                ("age", "AGE"),
                ("node", "NODE"),
            ],
            title="Pods of the platform" if pods else "Processes of this home",
            id="workloads",
        )

    def on_mount(self) -> None:
        self.app.health.signal.subscribe(self, lambda _: self._show_services())
        self._show_services()

    def fetch(self):
        cluster = self.platform.cluster
        return cluster.nodes(), cluster.workloads()

    def show(self, data) -> None:
        nodes, workloads = data
        self.query_one("#nodes", ResourceTable).update_rows(
            (
                n.name,
                (
                    n.name,
                    "yes" if n.ready else "no",
                    _share(n.cpu_used, n.cpu_capacity, lambda v: f"{v:.1f}"),
                    _share(n.memory_used, n.memory_capacity, size),
                    _share(n.gpu_used, n.gpu_capacity) if n.gpu_capacity else "0",
                ),
            )
            for n in nodes
        )
        self.query_one("#workloads", ResourceTable).update_rows(
            (
                f"{w.namespace}/{w.name}",
                (
                    w.name,
                    w.namespace,
                    w.phase,
                    MISSING if w.cpu_percent is None else f"{w.cpu_percent:.1f}",
                    size(w.memory_bytes),
                    since(w.started),
                    w.node or MISSING,
                ),
            )
            for w in workloads
        )
        if not workloads:
            self.state("No pods of the platform were found." if self.config.kind == "cluster" else "No platform processes are running.")

    def _show_services(self) -> None:
        health = self.app.health
        rows = []
        for part in PARTS:
            s = health.services.get(part)
            if part in health.slow:
                rows.append((part, (part, BACKENDS[part], "SLOW", "-", "It has not answered yet; still checking.")))
            elif s is None:
                rows.append((part, (part, BACKENDS[part], "checking...", "-", "")))
            else:
                state = "ok" if s.reachable else "DOWN"
                rows.append((part, (part, s.backend if s.backend != "-" else BACKENDS[part], state, s.version or "-", s.detail)))
        self.query_one("#services", ResourceTable).update_rows(rows)
