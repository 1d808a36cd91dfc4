"""The backend layer: one object per profile with its five parts. Never imports Textual.

    platform = Platform(load_config())
    platform.data.list_repos()

A platform opened read-only (`Config.read_only`: --read-only, DLPTUI_READ_ONLY) refuses every
port method marked `@changes` in `ports.py` with one sentence, whoever calls it: the CLI, the
console, a benchmark or a script.

A part is built on first use, so opening the platform costs nothing and a part whose
library is heavy (torch, determined, kubernetes, pachyderm) is imported only when asked
for. A part whose module is not there raises `NotAvailable`; a part whose backend does
not answer reports it through `health()`.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from dlptui.errors import NotAvailable, PlatformError, ReadOnlyError
from dlptui.platform.model import Service

if TYPE_CHECKING:
    from dlptui.config import Config
    from dlptui.platform.ports import Cluster, DataStore, Pipelines, Registry, Serving, Training

PARTS = ("cluster", "data", "training", "registry", "serving", "pipelines")

IMPLEMENTATIONS: dict[str, dict[str, str]] = {
    "local": {
        "cluster": "dlptui.platform.local.cluster:LocalCluster",
        "data": "dlptui.platform.local.datastore:LocalDataStore",
        "training": "dlptui.platform.local.training:LocalTraining",
        "registry": "dlptui.platform.local.registry:LocalRegistry",
        "serving": "dlptui.platform.local.serving:LocalServing",
        "pipelines": "dlptui.platform.local.pipelines:LocalPipelines",
    },
    "cluster": {
        "cluster": "dlptui.platform.cluster.kube_cluster:KubeCluster",
        "data": "dlptui.platform.cluster.pachyderm_data:PachydermDataStore",
        "training": "dlptui.platform.cluster.determined_training:DeterminedTraining",
        "registry": "dlptui.platform.cluster.determined_training:DeterminedRegistry",
        "serving": "dlptui.platform.cluster.seldon_serving:SeldonServing",
        "pipelines": "dlptui.platform.cluster.pachyderm_pipelines:PachydermPipelines",
    },
}


class ReadOnly:
    """A part seen through a read-only platform: its changing methods refuse, the rest pass through."""

    def __init__(self, part: Any, name: str) -> None:
        from dlptui.platform.ports import PORTS, changing_methods

        self._part = part
        self._name = name
        self._refused = changing_methods(PORTS[name])

    def __getattr__(self, attr: str) -> Any:
        if attr in self._refused:
            sentence = (
                f"dlptui runs read-only (--read-only or DLPTUI_READ_ONLY), and {self._name}.{attr} changes the platform; "
                "run it without --read-only."
            )

            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise ReadOnlyError(sentence)

            return refuse
        return getattr(self._part, attr)

    def __repr__(self) -> str:
        return f"ReadOnly({self._part!r})"


class Platform:
    """The five parts of the active profile. Each part class is built as `Class(config, platform)`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._parts: dict[str, Any] = {}
        # One lock for every build, on purpose: parts import their heavy libraries when built,
        # and parallel first imports of grpc, determined and kubernetes have deadlocked CPython.
        self._lock = threading.RLock()

    def part(self, name: str) -> Any:
        with self._lock:
            if name not in self._parts:
                if self.config.kind == "local" and not self._parts:
                    from dlptui.platform.local import private_home

                    private_home(self.config.home)
                target = IMPLEMENTATIONS[self.config.kind][name]
                module_name, class_name = target.split(":")
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError as e:
                    if e.name and e.name.startswith("dlptui"):
                        raise NotAvailable(
                            f"The {name} part is not available on the {self.config.profile} profile yet."
                        ) from None
                    raise NotAvailable(
                        f"The {name} part needs the Python package {e.name!r}; install dlptui's dependencies."
                    ) from None
                part = getattr(module, class_name)(self.config, self)
                self._parts[name] = ReadOnly(part, name) if self.config.read_only else part
            return self._parts[name]

    @property
    def cluster(self) -> Cluster:
        return self.part("cluster")

    @property
    def data(self) -> DataStore:
        return self.part("data")

    @property
    def training(self) -> Training:
        return self.part("training")

    @property
    def registry(self) -> Registry:
        return self.part("registry")

    @property
    def serving(self) -> Serving:
        return self.part("serving")

    @property
    def pipelines(self) -> Pipelines:
        return self.part("pipelines")

    def background(self) -> list:
        """The home's processes that run without the console (`model.BackgroundProcess`); none on a cluster,
        where the platform's processes are pods (`cluster.workloads()`)."""
        if self.config.kind != "local":
            return []
        from dlptui.platform.local import background

        return background.find(self.config.home)

    def stop_background(self, serving: bool = False) -> list[str]:
        """Stop the home's pipeline runner and datums (and with `serving` its model servers and Envoys); one
        sentence per thing stopped. Trainings are paused through the training part (`actions.background`)."""
        if self.config.read_only:
            raise ReadOnlyError("dlptui runs read-only (--read-only or DLPTUI_READ_ONLY), and stopping its processes "
                                "changes the platform; run it without --read-only.")
        if self.config.kind != "local":
            raise NotAvailable("Only the local profile has background processes to stop; a cluster's are its pods.")
        from dlptui.platform.local import background

        return background.stop(self.config.home, serving=serving)

    def health(self, name: str) -> Service:
        """The part's health; a missing part or a failing check is a Service with the reason."""
        try:
            return self.part(name).health()
        except PlatformError as e:
            return Service(part=name, backend="-", reachable=False, detail=str(e))
        except Exception as e:  # a health check must never take the caller down
            return Service(part=name, backend="-", reachable=False, detail=f"{type(e).__name__}: {e}")

    def status(self) -> list[Service]:
        """Every part's health, checked side by side so a dead backend costs one timeout, not five."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(PARTS)) as pool:
            return list(pool.map(self.health, PARTS))

    def close(self) -> None:
        with self._lock:
            parts = list(self._parts.values())
        for part in parts:
            close = getattr(part, "close", None)
            if close:
                close()
