"""`dlptui pipeline ...`, `jobs`, `job ...` end to end on the local profile, with --json; errors as exit codes."""

from __future__ import annotations

import json
import re
import time

import pytest

from dlptui.errors import Conflict, InvalidInput, NotFound
from tests.helpers import no_repr, run, run_json


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "upper.json"
    path.write_text(json.dumps({
        "pipeline": {"name": "upper"}, "input": {"pfs": {"repo": "raw", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", "for f in /pfs/raw/*; do echo seen $(basename $f); tr a-z A-Z < $f > /pfs/out/$(basename $f); done"]},
    }))
    return path


@pytest.fixture
def stopped(capsys):
    yield
    for p in run_json(capsys, "pipeline", "list"):
        run(capsys, "pipeline", "stop", p["name"])


def test_create_list_jobs_job_logs_commits_and_delete(home, capsys, tmp_path, spec_file, stopped):
    run_json(capsys, "data", "create", "raw")
    (tmp_path / "a.txt").write_text("alpha")
    raw = run_json(capsys, "data", "put", "raw", str(tmp_path / "a.txt"))
    created = run_json(capsys, "pipeline", "create", "-f", str(spec_file))
    assert (created["name"], created["inputs"], created["output"]) == ("upper", ["raw@master"], "upper@master")
    assert [p["name"] for p in run_json(capsys, "pipeline", "list")] == ["upper"]
    code, _, err = run(capsys, "pipeline", "create", "-f", str(spec_file))
    assert code == Conflict.exit_code and "exists already" in err

    deadline = time.monotonic() + 120  # the runner makes the job within a poll (0.1 s) once it runs: its start is bounded
    while not (jobs := run_json(capsys, "jobs", "upper")):
        assert time.monotonic() < deadline, "the pipeline's runner made no job within 120 s"
        time.sleep(0.05)
    job_id = jobs[0]["id"]
    waited = run_json(capsys, "job", job_id, "--wait")
    assert waited["state"] == "success" and waited["input_commits"] == [f"raw@{raw['id']}"]
    assert set(waited) >= {"id", "pipeline", "state", "input_commits", "output_commit", "datums", "started", "finished"}
    assert waited["datums"] == {"total": 1, "processed": 1, "skipped": 0, "failed": 0}
    assert [d["files"] for d in waited["datums_list"]] == [["raw:/a.txt"]]
    assert run_json(capsys, "job", "logs", job_id) == [f"{waited['datums_list'][0]['id'][:12]} seen a.txt"]
    [commit] = run_json(capsys, "data", "commits", "upper")
    assert commit["provenance"] == [f"raw@{raw['id']}"] and waited["output_commit"] == f"upper@{commit['id']}"
    code, out, _ = run(capsys, "jobs")  # the table for people
    assert code == 0 and "success" in out and job_id[:12] in out and "1 done, 0 skipped / 1" in out
    code, out, _ = run(capsys, "job", job_id)  # a describe block, then the datums
    assert code == 0 and f"job: {job_id}" in no_repr(out) and "datums: 1 done, 0 skipped / 1" in out
    assert "raw:/a.txt" in out and "DATUM" in out
    code, out, _ = run(capsys, "pipeline", "inspect", "upper")
    assert code == 0 and "pipeline: upper" in no_repr(out) and "input: raw@master" in out and "output: upper@master" in out
    assert re.search(r"created: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out)  # local ISO, not seconds since the epoch

    # the output repo is the pipeline's: a user's put is refused in one sentence (Pachyderm's rule), nothing committed
    code, out, err = run(capsys, "data", "put", "upper", str(tmp_path / "a.txt"))
    assert (code, out) == (Conflict.exit_code, "") and len(err.splitlines()) == 1 and "only its jobs write" in err
    assert len(run_json(capsys, "data", "commits", "upper")) == 1
    code, _, err = run(capsys, "job", "restart", job_id)
    assert code == Conflict.exit_code and "no failed datum" in err

    assert run_json(capsys, "pipeline", "stop", "upper")["state"] == "paused"
    assert run_json(capsys, "pipeline", "start", "upper")["state"] == "running"
    assert run_json(capsys, "pipeline", "inspect", "upper")["last_job"] == job_id
    code, _, err = run(capsys, "pipeline", "delete", "upper")  # no terminal to ask on
    assert code == InvalidInput.exit_code and "--yes" in err
    assert run_json(capsys, "pipeline", "delete", "upper", "--yes") == {"deleted": "upper", "jobs": 1, "output_repo": "upper"}
    assert [r["name"] for r in run_json(capsys, "data", "repos")] == ["raw"]


@pytest.mark.parametrize(
    "argv, code, words",
    [
        (["pipeline", "inspect", "nope"], NotFound.exit_code, "'nope'"),
        (["job", "0123456789"], NotFound.exit_code, "'0123456789'"),
        (["job", "restart"], InvalidInput.exit_code, "one job id"),
        (["pipeline", "create", "-f", "/no/such/spec.json"], NotFound.exit_code, "/no/such/spec.json"),
        (["pipeline", "create", "-f", "dogs-and-cats-retrian"], NotFound.exit_code, "dogs-and-cats-retrain"),  # names the shipped
    ],
)
def test_mistakes_are_one_sentence_and_an_exit_code(home, capsys, argv, code, words):
    got, out, err = run(capsys, *argv)
    assert got == code and words in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_misspelt_spec_names_the_field(home, capsys, tmp_path):
    run_json(capsys, "data", "create", "raw")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: {name: x}\ninput: {pfs: {repo: raw, glob: /}}\ntransform: {cmd: [sh]}\nparalelism_spec: {constant: 2}\n")
    code, _, err = run(capsys, "pipeline", "create", "-f", str(bad))
    assert code == InvalidInput.exit_code and "'paralelism_spec'" in err and err.count("\n") == 1


def test_a_shipped_spec_is_created_by_its_name(home, capsys, stopped):
    run_json(capsys, "data", "create", "dogs-and-cats")
    created = run_json(capsys, "pipeline", "create", "-f", "dogs-and-cats-retrain")
    assert (created["name"], created["inputs"], created["output"]) == (
        "dogs-and-cats-retrain", ["dogs-and-cats@master"], "dogs-and-cats-retrain@master")


def test_a_file_in_the_current_folder_named_as_a_shipped_spec_is_not_what_gets_created(home, capsys, stopped, tmp_path, monkeypatch):
    from dlptui.actions.pipelines import shipped_spec

    planted = {"pipeline": {"name": "dogs-and-cats-retrain"}, "input": {"pfs": {"repo": "dogs-and-cats", "glob": "/"}},
               "transform": {"cmd": ["sh", "-c", "echo planted > /pfs/out/planted"]}}
    (tmp_path / "dogs-and-cats-retrain").write_text(json.dumps(planted))
    monkeypatch.chdir(tmp_path)
    run_json(capsys, "data", "create", "dogs-and-cats")
    created = run_json(capsys, "pipeline", "create", "-f", "dogs-and-cats-retrain")
    assert created["spec"] == json.loads(shipped_spec("dogs-and-cats-retrain").read_text()) and created["cmd"] == ["sh"]
    run(capsys, "pipeline", "delete", "dogs-and-cats-retrain", "--yes")
    created = run_json(capsys, "pipeline", "create", "-f", "./dogs-and-cats-retrain")  # given as a path: the file
    assert created["cmd"] == planted["transform"]["cmd"]
