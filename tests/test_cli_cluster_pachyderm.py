"""`dlptui --profile cluster data ...`, `pipeline create`, `jobs`, `job` and `job restart` as a user runs them, against
the pachd stand-in (tests/standins/pachd.py); each with a dead pachd, which is exit 5 and one sentence naming pachd."""

from __future__ import annotations

import json
import uuid

import pytest

from dlptui.errors import Conflict, NotFound, Unreachable
from tests.helpers import no_repr, run

pytestmark = pytest.mark.timeout(90)
CLUSTER = ("--profile", "cluster")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    return run(capsys, *CLUSTER, *argv)


def cli_json(capsys, *argv: str):
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def dead_pachd(monkeypatch, home, dead_address) -> str:
    monkeypatch.setenv("PACHD_ADDRESS", f"grpc://{dead_address}")
    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    return dead_address


def assert_dead(code: int, err: str, address: str) -> None:
    assert code == Unreachable.exit_code == 5
    assert err == (f"dlptui: pachd at {address} does not answer; check PACHD_ADDRESS (or run `pachctl port-forward`) "
                   "and retry.\n")


def test_data_create_put_ls_commits_get_on_the_cluster(standin_cluster_env, capsys, tmp_path):
    src = tmp_path / "notes"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "b.txt").write_text("beta\n")
    assert cli_json(capsys, "data", "create", "docs")["name"] == "docs"
    commit = cli_json(capsys, "data", "put", "docs", str(src), "--to", "/text", "-m", "first put")
    assert (commit["files"], commit["message"], commit["branch"], commit["parent"]) == (2, "first put", "master", None)
    assert "docs" in [r["name"] for r in cli_json(capsys, "data", "repos")]
    assert cli_json(capsys, "data", "ls", "docs") == [{"path": "/text", "type": "dir", "size_bytes": 11, "hash": None}]
    files = cli_json(capsys, "data", "ls", f"docs@{commit['id'][:8]}", "/text")
    assert [f["path"] for f in files] == ["/text/a.txt", "/text/b.txt"]
    assert [c["id"] for c in cli_json(capsys, "data", "commits", "docs")] == [commit["id"]]
    code, out, err = cli(capsys, "data", "get", "docs@master:/text/b.txt")
    assert (code, out, err) == (0, "beta\n", "")
    target = tmp_path / "copy.txt"
    assert cli(capsys, "data", "get", "docs:/text/a.txt", "-o", str(target))[0] == 0
    assert target.read_text() == "alpha\n"
    code, _, err = cli(capsys, "data", "get", "docs@master:/text/nope.txt")
    assert code == NotFound.exit_code and err.count("\n") == 1 and "/text/nope.txt" in err and "Traceback" not in err
    code, _, err = cli(capsys, "data", "create", "docs")
    assert code == Conflict.exit_code and "'docs'" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ("data", "repos"), ("data", "create", "docs"), ("data", "put", "docs", "PATH"), ("data", "ls", "docs"),
    ("data", "get", "docs@master:/a.txt"), ("data", "commits", "docs"),
])
def test_data_commands_with_a_dead_pachd_exit_5_with_one_sentence(dead_pachd, capsys, tmp_path, argv):
    local = tmp_path / "a.txt"
    local.write_text("alpha\n")
    code, out, err = cli(capsys, *[str(local) if a == "PATH" else a for a in argv])
    assert out == ""
    assert_dead(code, err, dead_pachd)


def spec_file(tmp_path, name: str, repo: str, fixed) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({
        "pipeline": {"name": name}, "input": {"pfs": {"repo": repo, "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", f"test -e {fixed} && for f in /pfs/{repo}/*; do echo seen $(basename $f); "
                                          f"cp $f /pfs/out/; done"], "image": "ubuntu:22.04"},
        "datum_tries": 1,
    }))
    return str(path)


def test_pipeline_create_job_and_restart_on_the_cluster(standin_cluster_env, capsys, tmp_path):
    fixed = tmp_path / "fixed"
    (tmp_path / "a.txt").write_text("alpha")
    cli_json(capsys, "data", "create", "raw")
    raw = cli_json(capsys, "data", "put", "raw", str(tmp_path / "a.txt"))
    created = cli_json(capsys, "pipeline", "create", "-f", spec_file(tmp_path, "upper", "raw", fixed))
    assert (created["name"], created["inputs"], created["output"], created["image"]) == (
        "upper", ["raw@master"], "upper@master", "ubuntu:22.04")
    assert created["state"] in ("starting", "running")
    [job] = cli_json(capsys, "jobs", "upper")
    code, out, _ = cli(capsys, "job", job["id"], "--wait", "--json")
    failed = json.loads(out)
    assert code == 1 and failed["state"] == "failure" and failed["datums"]["failed"] == 1 and failed["input_commits"] == [f"raw@{raw['id']}"]
    code, _, err = cli(capsys, "data", "ls", "upper")  # the failed job's output commit is no data
    assert code == NotFound.exit_code and "ended with an error" in err and err.count("\n") == 1

    fixed.touch()
    code, out, err = cli(capsys, "job", "restart", job["id"], "--wait")
    assert code == 0, err
    again = out.split()[1]
    assert again != job["id"] and again.startswith("upper@")
    assert out == f"Job {again} runs the failed datums of job {job['id']} again (success).\n"
    done = cli_json(capsys, "job", again)
    assert done["state"] == "success" and done["input_commits"] == [f"raw@{raw['id']}"]
    assert [d["files"] for d in done["datums_list"]] == [["raw:/a.txt"]]
    assert cli_json(capsys, "job", "logs", again) == [f"{done['datums_list'][0]['id'][:12]} seen a.txt"]
    assert [j["id"] for j in cli_json(capsys, "jobs", "upper")] == [again, job["id"]]
    code, out, _ = cli(capsys, "data", "get", "upper:/a.txt")
    assert (code, out) == (0, "alpha")
    code, _, err = cli(capsys, "job", "restart", again)
    assert code == Conflict.exit_code and "no failed datum" in err
    # what a person reads on the cluster is written as locally: describe blocks, no Python repr
    code, out, _ = cli(capsys, "job", again)
    assert code == 0 and f"job: {again}" in no_repr(out) and "datums: 1 done, 0 skipped / 1" in out
    code, out, _ = cli(capsys, "pipeline", "inspect", "upper")
    assert code == 0 and "input: raw@master" in no_repr(out) and "command: sh -c" in out
    code, out, _ = cli(capsys, "jobs", "upper")
    assert code == 0 and f"upper@{again.partition('@')[2][:12]}" in out
    # pachd refuses a user's commit to the pipeline's output branch: the same sentence as locally, exit 4
    code, out, err = cli(capsys, "data", "put", "upper", str(tmp_path / "a.txt"))
    assert (code, out) == (Conflict.exit_code, "") and err.count("\n") == 1
    assert "Repo 'upper' is the output of pipeline 'upper', which only its jobs write" in err
    code, _, err = cli(capsys, "data", "delete", "raw", "--yes")
    assert code == Conflict.exit_code and "'upper'" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ("pipeline", "create", "-f", "SPEC"), ("pipeline", "list"), ("jobs",), ("job", "upper@0123456789abcdef"),
    ("job", "restart", "upper@0123456789abcdef"), ("job", "logs", "upper@0123456789abcdef"),
])
def test_pipeline_commands_with_a_dead_pachd_exit_5_with_one_sentence(dead_pachd, capsys, tmp_path, argv):
    spec = spec_file(tmp_path, "upper", "raw", tmp_path / "fixed")
    code, out, err = cli(capsys, *[spec if a == "SPEC" else a for a in argv])
    assert out == ""
    assert_dead(code, err, dead_pachd)


def test_the_data_commands_in_a_process_of_their_own(pachd_standin_server, home, tmp_path, dead_address):
    """As a user runs them: `python -m dlptui`, with none of this shell's platform settings but PACHD_ADDRESS."""
    import os
    import subprocess
    import sys

    (tmp_path / "a.txt").write_text("alpha\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DLPTUI_", "DET_", "PACHD_", "KUBECONFIG"))}
    base.update({"DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")})

    def dlptui(address: str, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dlptui", *CLUSTER, *argv], env={**base, "PACHD_ADDRESS": address},
                              capture_output=True, text=True, timeout=60)

    repo = f"proc-{uuid.uuid4().hex[:8]}"  # the stand-in is the session's: a name of its own
    assert dlptui(pachd_standin_server.address, "data", "create", repo).returncode == 0
    put = dlptui(pachd_standin_server.address, "data", "put", repo, str(tmp_path / "a.txt"), "--json")
    assert put.returncode == 0 and json.loads(put.stdout)["files"] == 1, put.stderr
    got = dlptui(pachd_standin_server.address, "data", "get", f"{repo}:/a.txt")
    assert (got.returncode, got.stdout, got.stderr) == (0, "alpha\n", "")
    dead = dlptui(f"grpc://{dead_address}", "data", "get", f"{repo}:/a.txt")
    assert dead.stdout == "" and "Traceback" not in dead.stderr
    assert_dead(dead.returncode, dead.stderr, dead_address)
