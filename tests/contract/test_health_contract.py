"""Part.health(), for every part of both profiles: a backend that is broken, dead or hung is a Service
that says so in one sentence, within the profile's timeout; health() never raises.

Locally the backend is the home folder (its databases and state files, broken after the parts
were built); on the cluster it is pachd, the Determined master and the API server, at an address
where nothing listens (dead) or where nothing answers (hung)."""

from __future__ import annotations

import sys
import time

import pytest

from dlptui.platform import PARTS
from dlptui.platform.model import Service
from tests.fixtures.kube import write_kubeconfig

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 1.0  # the profile's timeout_s in these tests
MARGIN_S = 3.0  # what a health check may take beyond it (connection set-up, a second request)


def _local_broken(home):
    from dlptui.config import load_config
    from dlptui.platform import Platform

    platform = Platform(load_config(profile="local"))
    for name in PARTS:
        assert platform.part(name).health().reachable, name  # built and answering first
    # serving: its backend, Envoy, is not there (a deployment whose state cannot be read is one failed
    # deployment, not a part that does not work: tests/test_serving_crash_safety.py)
    for db in ("data/meta.db", "training/training.db", "registry/registry.sqlite", "pipelines/meta.db"):
        for suffix in ("", "-wal", "-shm"):
            path = home / (db + suffix)
            if path.exists():
                path.write_bytes(b"not a database " * 512)
    return platform


def _cluster_down(monkeypatch, tmp_path, kube_cluster, address: str):
    from dlptui.config import load_config
    from dlptui.platform import Platform

    config_file = tmp_path / "short-timeout.toml"
    config_file.write_text(f'[profiles.cluster]\nkind = "cluster"\ntimeout_s = {TIMEOUT_S}\n')
    monkeypatch.setenv("DLPTUI_CONFIG", str(config_file))
    monkeypatch.setenv("PACHD_ADDRESS", f"grpc://{address}")
    monkeypatch.setenv("DET_MASTER", f"http://{address}")
    monkeypatch.setenv("DET_PASS", "x")
    kubeconfig = write_kubeconfig(tmp_path / "down.yaml", {"down": (f"https://{address}", "x")}, kube_cluster.ca)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for var in ("DLPTUI_KUBE_CONTEXT", "DET_TOKEN", "PACHD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return Platform(load_config(profile="cluster"))


CASES = [("local", "broken", p) for p in PARTS if p != "cluster"]  # this host is always there
CASES += [("cluster", how, p) for how in ("dead", "hung") for p in PARTS]


@pytest.mark.parametrize(("profile", "how", "part"), CASES, ids=[f"{a}-{b}-{c}" for a, b, c in CASES])
def test_a_backend_that_does_not_work_is_an_unreachable_service_in_one_sentence(
    profile, how, part, request, home, tmp_path, monkeypatch
):
    if profile == "local":
        platform = _local_broken(home)
        monkeypatch.setitem(sys.modules, "envoy", None)  # `import envoy` fails as on an install without it
    else:
        address = request.getfixturevalue("dead_address" if how == "dead" else "silent_address")
        platform = _cluster_down(monkeypatch, tmp_path, request.getfixturevalue("kube_cluster"), address)
    try:
        started = time.monotonic()
        service = platform.part(part).health()
        took = time.monotonic() - started
    finally:
        platform.close()
    assert isinstance(service, Service)
    assert (service.part, service.reachable) == (part, False), service
    assert service.detail and "\n" not in service.detail and "Traceback" not in service.detail, service.detail
    assert took < TIMEOUT_S + MARGIN_S if profile == "cluster" else took < MARGIN_S, f"health took {took:.1f} s"
