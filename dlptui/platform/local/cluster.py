"""The cluster part of the local profile: this host and the platform's own processes.

One `Node` (CPU, memory and GPUs of this machine, with what is in use) and one
`Workload` per process of the platform: training children, Seldon microservices,
gateways and the console itself. Processes are found two ways, so that a part needs
no registration with this module:

- a pid file (`*.pid`, holding the pid) anywhere up to three folders deep under
  `config.home`: the workload is named after the file and belongs to the part named
  by its first folder (`serving/dogcat-deploy.pid` -> part "serving");
- the mark in its environment that `processes.spawn` (or the training part) gives every child and
  its descendants, with the part it serves and the home it belongs to: a process of another home on
  the same machine is not this home's, and a command line proves nothing.

GPUs are counted by torch only when torch is already imported (importing it costs
seconds); otherwise `nvidia-smi` answers, and a host with neither has 0 GPUs.
"""

from __future__ import annotations

import os
import platform as pyplatform
import shutil
import socket
import subprocess
import sys
import threading
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import psutil

from dlptui import __version__
from dlptui.platform.local import processes
from dlptui.platform.model import Node, Service, Workload

PID_DEPTH = 3  # how deep under home pid files are looked for
GPU_CACHE_S = 10.0  # nvidia-smi is slow: ask it at most this often


@lru_cache(maxsize=None)
def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def parse_gpu_utilization(out: str) -> tuple[int, int]:
    """(GPUs, GPUs busy) from `nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits`."""
    values = [line.strip() for line in out.splitlines() if line.strip()]
    busy = sum(1 for v in values if v.isdigit() and int(v) > 0)  # "[N/A]" counts as a GPU, not busy
    return len(values), busy


class LocalCluster:
    """`ports.Cluster` for this host."""

    def __init__(self, config, platform=None) -> None:
        self.config = config
        self.platform = platform
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._procs: dict[int, psutil.Process] = {}  # kept between calls so cpu_percent has a baseline
        self._seen: dict[int, tuple[str, str] | None] = {}  # pid -> (name, part) of the platform's, or None
        self._gpu: tuple[float, int, int] | None = None  # (when, count, busy)
        psutil.cpu_percent(interval=None)  # the first reading is meaningless: take it now

    # -- Part ------------------------------------------------------------------

    def health(self) -> Service:
        cores = psutil.cpu_count() or 1
        memory = psutil.virtual_memory().total / 2**30
        return Service(
            part="cluster",
            backend="this host",
            reachable=True,
            detail=f"{self.host}: {cores} cores, {memory:.1f} GiB memory",
            version=pyplatform.python_version(),
            endpoint=self.host,
        )

    # -- Cluster ---------------------------------------------------------------

    def context(self) -> dict[str, str]:
        try:
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        except OSError:  # not on every system
            load = "-"
        return {
            "profile": self.config.profile,
            "host": self.host,
            "dlptui": __version__,
            "python": pyplatform.python_version(),
            "textual": _version("textual"),
            "load": load,
            "cpu": f"{psutil.cpu_percent(interval=None):.0f}%",
            "memory": f"{psutil.virtual_memory().percent:.0f}%",
        }

    def nodes(self) -> list[Node]:
        cores = float(psutil.cpu_count() or 1)
        memory = psutil.virtual_memory()
        gpus, busy = self._gpus()
        return [
            Node(
                name=self.host,
                ready=True,
                cpu_capacity=cores,
                cpu_allocatable=cores,
                cpu_used=round(psutil.cpu_percent(interval=None) / 100 * cores, 2),
                memory_capacity=memory.total,
                memory_allocatable=memory.available,
                memory_used=memory.total - memory.available,
                gpu_capacity=gpus,
                gpu_allocatable=gpus,
                gpu_used=busy,
                labels={"os": sys.platform, "arch": pyplatform.machine()},
            )
        ]

    def workloads(self) -> list[Workload]:
        found: dict[int, tuple[str, str]] = {}  # pid -> (name, part)
        for pid, name, part in self._pid_files():
            found[pid] = (name, part)
        pids = set(psutil.pids())
        with self._lock:
            for gone in set(self._seen) - pids:  # forget the dead, so a reused pid is looked at again
                del self._seen[gone]
            for pid in pids - set(self._seen):  # a command line is read once per process
                self._seen[pid] = self._classify(pid)
            matches = {pid: m for pid, m in self._seen.items() if m is not None}
        for pid, match in matches.items():
            found.setdefault(pid, match)
        return sorted(
            (w for pid, (name, part) in found.items() if (w := self._workload(pid, name, part))),
            key=lambda w: (w.namespace, w.name),
        )

    # -- helpers ---------------------------------------------------------------

    def _pid_files(self):
        root = Path(self.config.home)
        if not root.is_dir():
            return
        for depth in range(PID_DEPTH + 1):
            for path in root.glob("/".join(["*"] * depth + ["*.pid"])):
                try:
                    pid = int(path.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    continue
                parts = path.relative_to(root).parts
                yield pid, path.stem, parts[0] if len(parts) > 1 else "platform"

    def _classify(self, pid: int) -> tuple[str, str] | None:
        """(name, part) for a process of the platform, None for any other: a process is the platform's
        when dlptui started it (its environment carries the mark `processes.spawn` gives every child and
        its descendants, with the part it serves), never because its command line mentions something."""
        if pid == os.getpid():
            return "console", "console"
        try:
            proc = psutil.Process(pid)
            part = processes.marks(proc, self.config.home)
            name = proc.name() if part else ""
        except (psutil.Error, OSError):
            return None
        return (f"{name}-{pid}", part) if part else None

    def _workload(self, pid: int, name: str, part: str) -> Workload | None:
        with self._lock:
            proc = self._procs.get(pid)
            try:
                if proc is None or not proc.is_running():
                    proc = psutil.Process(pid)
                    proc.cpu_percent(interval=None)
                    self._procs[pid] = proc
                with proc.oneshot():
                    status = proc.status()
                    cpu = proc.cpu_percent(interval=None)
                    rss = proc.memory_info().rss
                    started = proc.create_time()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                self._procs.pop(pid, None)
                return None
            except psutil.AccessDenied:
                return Workload(name=name, namespace=part, phase="Unknown", node=self.host)
        phase = "Failed" if status == psutil.STATUS_ZOMBIE else "Running"
        return Workload(
            name=name,
            namespace=part,
            phase=phase,
            node=self.host,
            started=started,
            cpu_percent=round(cpu, 1),
            memory_bytes=rss,
        )

    def _gpus(self) -> tuple[int, int | None]:
        torch = sys.modules.get("torch")
        if torch is not None:
            try:
                if torch.cuda.is_available():
                    return torch.cuda.device_count(), None
            except Exception:  # a broken driver is "no GPU", not a crash
                pass
        now = time.monotonic()
        if self._gpu and now - self._gpu[0] < GPU_CACHE_S:
            return self._gpu[1], self._gpu[2]
        count, busy = 0, 0
        exe = shutil.which("nvidia-smi")
        if exe:
            try:
                out = subprocess.run(
                    [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                count, busy = parse_gpu_utilization(out)
            except (OSError, subprocess.SubprocessError):
                pass
        self._gpu = (now, count, busy)
        return count, busy
