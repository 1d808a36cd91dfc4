"""The local profile's cluster part: this host as one node, the platform's processes as workloads."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from dlptui.platform.local import processes
from dlptui.platform.local.cluster import LocalCluster
from dlptui.platform.ports import Cluster


def sleeper(*extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *extra])


def test_it_is_a_cluster_part_and_healthy(config):
    cluster = LocalCluster(config)
    assert isinstance(cluster, Cluster)
    health = cluster.health()
    assert health.part == "cluster" and health.reachable
    assert str(psutil.cpu_count()) in health.detail


def test_the_node_is_this_host_with_capacity_and_use(config):
    (node,) = LocalCluster(config).nodes()
    assert node.ready
    assert node.cpu_capacity == psutil.cpu_count()
    assert 0 <= node.cpu_used <= node.cpu_capacity
    assert node.memory_capacity == psutil.virtual_memory().total
    assert 0 < node.memory_used < node.memory_capacity


def test_gpus_are_counted_from_nvidia_smi(config, tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '37\\n0\\n'\n")  # two GPUs, one busy
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # only the fake: a real nvidia-smi of the machine is not asked
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # imported by an earlier test: CUDA's count would answer
    (node,) = LocalCluster(config).nodes()
    assert (node.gpu_capacity, node.gpu_allocatable, node.gpu_used) == (2, 2, 1)
    fake.unlink()
    (node,) = LocalCluster(config).nodes()  # a fresh part: no nvidia-smi, no GPU
    assert node.gpu_capacity == 0


def test_context_names_profile_host_versions_and_load(config):
    context = LocalCluster(config).context()
    assert context["profile"] == "local"
    assert context["python"].startswith("3.11")
    assert context["textual"].count(".") >= 1
    assert len(context["load"].split()) == 3


def test_counting_gpus_does_not_import_torch(home):
    code = (
        "import sys; from dlptui.config import load_config; from dlptui.platform.local.cluster import LocalCluster;"
        "c = LocalCluster(load_config()); c.nodes(); c.workloads(); c.context();"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "False"


def test_workloads_come_from_pid_files_and_the_mark_of_their_spawn(config, home):
    cluster = LocalCluster(config)
    by_pidfile = sleeper()
    by_cmdline = sleeper(str(home / "training" / "exp-1"))  # mentions the home: not a reason to count it
    env = {**os.environ, processes.TOKEN_VAR: "t", processes.PART_VAR: "training", processes.HOME_VAR: str(home.resolve())}
    marked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    # dlptui's, with the same part, but another home's (another console, a test, a benchmark on this machine)
    elsewhere = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 env={**env, processes.HOME_VAR: str(home.parent / "another-home")})
    unhomed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],  # an older dlptui's: no home
                               env={k: v for k, v in env.items() if k != processes.HOME_VAR})
    try:
        (home / "serving").mkdir()
        (home / "serving" / "dogcat-deploy.pid").write_text(f"{by_pidfile.pid}\n")
        workloads = {w.name: w for w in cluster.workloads()}
        assert workloads["dogcat-deploy"].namespace == "serving"
        assert workloads["dogcat-deploy"].phase == "Running"
        assert workloads["dogcat-deploy"].memory_bytes > 0
        assert not [w for w in workloads.values() if w.name.endswith(f"-{by_cmdline.pid}")]
        named = [w for w in workloads.values() if w.name.endswith(f"-{marked.pid}")]
        assert len(named) == 1 and named[0].namespace == "training"
        assert not [w for w in workloads.values() if w.name.endswith((f"-{elsewhere.pid}", f"-{unhomed.pid}"))]
        assert workloads["console"].namespace == "console"  # this process
    finally:
        for proc in (by_pidfile, by_cmdline, marked, elsewhere, unhomed):
            proc.kill()
            proc.wait()
    names = {w.name for w in cluster.workloads()}
    assert "dogcat-deploy" not in names  # a stale pid file shows nothing
    assert not any(n.endswith(f"-{by_cmdline.pid}") for n in names)


def test_a_garbage_pid_file_is_ignored(config, home):
    (home / "junk.pid").write_text("not a pid")
    (home / "gone.pid").write_text("999999999")
    names = {w.name for w in LocalCluster(config).workloads()}
    assert "junk" not in names and "gone" not in names


def test_the_platform_builds_it_for_the_local_profile(platform):
    assert isinstance(platform.cluster, LocalCluster)
    assert platform.health("cluster").reachable


def test_gpu_utilization_parsing():
    from dlptui.platform.local.cluster import parse_gpu_utilization

    assert parse_gpu_utilization("0\n37\n100\n") == (3, 2)
    assert parse_gpu_utilization("[N/A]\n") == (1, 0)  # MIG or an old driver: a GPU, use unknown
    assert parse_gpu_utilization("") == (0, 0)


def test_no_gpu_tool_means_no_gpu(config, monkeypatch):
    import shutil as shutil_module

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(shutil_module, "which", lambda name: None)
    (node,) = LocalCluster(config).nodes()
    assert node.gpu_capacity == 0 and node.gpu_used == 0


# --- every path that starts a process of a home marks it with that home -----------------------------


def _another_home_cluster(tmp_path):
    from dlptui.config import load_config

    other = tmp_path / "another-home"
    other.mkdir(mode=0o700)
    return LocalCluster(load_config(profile="local", env={"DLPTUI_HOME": str(other),
                                                          "XDG_CONFIG_HOME": str(tmp_path / "cfg")}))


def _wait_parts(cluster, parts: set[str], give_up_s: float = 120.0) -> list:
    import time

    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        found = [w for w in cluster.workloads() if w.namespace in parts]
        if {w.namespace for w in found} >= parts:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no process of {parts} appeared: {cluster.workloads()}")


def test_the_pipeline_runner_and_its_datums_carry_their_home(platform, tmp_path):
    import time

    platform.data.create_repo("raw")
    platform.data.put_files("raw", "master", {"/a.txt": b"a"})
    platform.pipelines.create_pipeline({"pipeline": {"name": "slow"}, "input": {"pfs": {"repo": "raw", "glob": "/*"}},
                                        "transform": {"cmd": ["sleep", "60"]}})
    try:
        deadline = time.monotonic() + 120
        while not any(d.state == "running" for j in platform.pipelines.list_jobs("slow")
                      for d in platform.pipelines.list_datums(j.id)):
            assert time.monotonic() < deadline, "the datum did not start"
            time.sleep(0.1)
        mine = _wait_parts(platform.cluster, {"pipelines"})
        pids = {w.name.rsplit("-", 1)[-1] for w in mine}
        names = {w.name.rsplit("-", 1)[0] for w in mine}
        assert "sleep" in names and len(mine) >= 2  # the runner (and its guard) and the datum's code
        elsewhere = _another_home_cluster(tmp_path).workloads()
        assert not [w for w in elsewhere if w.name.rsplit("-", 1)[-1] in pids]  # none of them is another home's
    finally:
        platform.pipelines.stop_pipeline("slow")


@pytest.mark.slow
def test_a_deployments_envoy_and_model_server_carry_their_home(deployed, tmp_path):
    mine = _wait_parts(deployed.cluster, {"serving"})
    names = {w.name.rsplit("-", 1)[0] for w in mine}
    assert "envoy" in names and len(mine) >= 2  # Envoy and the model server (its gunicorn processes)
    pids = {w.name.rsplit("-", 1)[-1] for w in mine}
    assert not [w for w in _another_home_cluster(tmp_path).workloads() if w.name.rsplit("-", 1)[-1] in pids]
