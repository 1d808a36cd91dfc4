"""`dlptui contexts` and the global `--context NAME`, run as a user runs them, against the test kube-apiserver.

The kubeconfig has two contexts: `live` (the real API server of the session) and `dead` (a port
nothing listens on), `dead` being the file's current one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.kube import write_kubeconfig


@pytest.fixture
def two_contexts(kube_apiserver, tmp_path: Path, dead_address: str) -> tuple[Path, str]:
    """(a kubeconfig with contexts live and dead, current dead; the dead server's URL)."""
    dead = f"https://{dead_address}"
    contexts = {"live": (kube_apiserver.url, kube_apiserver.token), "dead": (dead, "nothing")}
    return write_kubeconfig(tmp_path / "kubeconfig", contexts, kube_apiserver.ca, current="dead"), dead


def dlptui(home: Path, kubeconfig: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DLPTUI_", "DET_", "PACHD_", "KUBE"))}
    env.update({"KUBECONFIG": str(kubeconfig), "DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")})
    return subprocess.run([sys.executable, "-m", "dlptui", *argv], env=env, capture_output=True, text=True, timeout=90)


def test_contexts_lists_the_kubeconfigs_contexts_with_the_current_one_marked(kube_apiserver, two_contexts, home):
    kubeconfig, dead = two_contexts
    listed = dlptui(home, kubeconfig, "contexts", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {c["name"]: c for c in json.loads(listed.stdout)}
    assert set(rows) == {"live", "dead"}
    assert (rows["dead"]["current"], rows["live"]["current"]) == (True, False)
    assert (rows["live"]["server"], rows["dead"]["server"]) == (kube_apiserver.url, dead)
    assert rows["live"]["user"] == "live" and rows["live"]["cluster"] == "live"

    chosen = dlptui(home, kubeconfig, "--profile", "cluster", "--context", "live", "contexts", "--json")
    assert chosen.returncode == 0, chosen.stderr
    assert [c["name"] for c in json.loads(chosen.stdout) if c["current"]] == ["live"]

    table = dlptui(home, kubeconfig, "contexts")
    assert table.returncode == 0, table.stderr
    marked = [line.split() for line in table.stdout.splitlines() if line.lstrip().startswith("*")]
    assert [row[1] for row in marked] == ["dead"]


def test_context_switches_the_server_status_talks_to(kube_apiserver, two_contexts, home):
    kubeconfig, dead = two_contexts

    def cluster_part(*options: str) -> dict:
        done = dlptui(home, kubeconfig, "--profile", "cluster", *options, "status", "--json")
        assert "Traceback" not in done.stderr
        return {s["part"]: s for s in json.loads(done.stdout)}["cluster"]

    current = cluster_part()
    assert current["reachable"] is False and current["endpoint"] == dead
    assert "(context 'dead') cannot be reached" in current["detail"]

    live = cluster_part("--context", "live")
    assert live["reachable"] is True, live
    assert live["endpoint"] == kube_apiserver.url and live["detail"].startswith("context live: ")

    back = cluster_part("--context", "dead")
    assert back["reachable"] is False and back["endpoint"] == dead


def test_an_unknown_context_is_one_sentence_and_a_non_zero_exit(two_contexts, home):
    kubeconfig, _ = two_contexts
    expected = f"dlptui: The kubeconfig {kubeconfig} has no context 'staging'; its contexts are: live, dead.\n"
    for command in (["status", "--json"], ["contexts"]):
        done = dlptui(home, kubeconfig, "--profile", "cluster", "--context", "staging", *command)
        assert (done.returncode, done.stderr, done.stdout) == (2, expected, ""), command

    local = dlptui(home, kubeconfig, "--context", "live", "status")
    assert local.returncode == 2 and local.stdout == ""
    assert local.stderr == (
        "dlptui: --context picks a context of a cluster profile, but profile 'local' is local; add --profile cluster.\n"
    )
