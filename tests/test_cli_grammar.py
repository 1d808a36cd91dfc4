"""The CLI's grammar: noun-verb sub-parsers, the earlier spellings as aliases, one way per action in
the help, one-sentence parse errors, questions before destructive commands, completion."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from dlptui.cli import LEGACY, _subparsers, build_parser, main, normalise
from dlptui.cli.completers import repo_names
from tests.helpers import run, run_json

PARSER = build_parser()


def parsed(*argv: str) -> argparse.Namespace:
    return PARSER.parse_args(normalise(list(argv), PARSER))


@pytest.mark.parametrize(
    "argv, func, fields",
    [
        # the spellings of the README of the first release
        (("experiments", "--json"), "list_experiments", {}),
        (("experiment", "3"), "describe", {"id": "3"}),
        (("experiment", "pause", "3"), "change", {"verb": "pause", "id": "3"}),
        (("metrics", "3", "--follow"), "metrics", {"id": "3", "follow": True}),
        (("logs", "3"), "logs", {"id": "3"}),
        (("models",), "list_models", {}),
        (("models", "--json"), "list_models", {"json": True}),
        (("models", "versions", "dogcat-model"), "list_versions", {"model": "dogcat-model"}),
        (("models", "register", "--experiment", "1", "--model", "m"), "register_version", {"experiment": "1", "model": "m"}),
        (("models", "promote", "m", "2", "--to", "production"), "promote", {"version": 2, "alias": "production"}),
        (("models", "history", "m"), "history", {"model": "m"}),
        (("deployments",), "list_deployments", {}),
        (("deployments", "dogcat-deploy", "--json"), "describe", {"name": "dogcat-deploy", "json": True}),
        (("deploy", "dogcat-model@production", "--canary", "2", "--traffic", "20"), "deploy", {"traffic": 20}),
        (("undeploy", "dogcat-deploy"), "undeploy", {"yes": False}),
        (("predict", "a.jpg", "b.jpg"), "predict", {"images": ["a.jpg", "b.jpg"]}),
        (("--profile", "cluster", "status", "--json"), "status", {"profile": "cluster"}),
        # today's noun-verb words and their aliases
        (("experiment", "list"), "list_experiments", {}),
        (("e", "kill", "4", "--yes"), "change", {"verb": "kill", "yes": True}),
        (("exp", "7"), "describe", {"id": "7"}),
        (("model", "dogcat-model"), "list_versions", {"model": "dogcat-model"}),
        (("m", "list"), "list_models", {}),
        (("deployment", "logs", "d", "--lines", "5"), "logs", {"name": "d", "lines": 5}),
        (("dp", "d"), "describe", {"name": "d"}),
        (("--read-only", "--context", "ctx", "deployment", "list"), "list_deployments", {"context": "ctx", "read_only": True}),
    ],
)
def test_every_spelling_reaches_its_command(argv, func, fields):
    args = parsed(*argv)
    assert args.func.__name__ == func
    for name, value in fields.items():
        assert getattr(args, name) == value, name


def test_each_action_has_one_way_in_the_help():
    """Walk the help's commands (not their aliases): no two of them run the same function."""
    seen: dict[object, str] = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        try:
            sub = _subparsers(parser)
        except LookupError:
            func = parser.get_default("func")
            assert func is not None, f"{path} runs nothing"
            key = (func, path.split()[-1])  # pause/resume/kill share a function and differ by their word
            assert key not in seen, f"{path} and {seen.get(key)} are the same action"
            seen[key] = path
            return
        for action in sub._choices_actions:  # the names the help lists, aliases excluded
            walk(sub.choices[action.dest], f"{path} {action.dest}")

    walk(PARSER, "dlptui")
    assert len(seen) > 25
    help_text = PARSER.format_help()
    for legacy in LEGACY:
        assert f"\n    {legacy} " not in help_text, f"{legacy} is listed as a command of its own"


def test_a_parse_mistake_is_one_sentence(capsys):
    code, out, err = run(capsys, "experiment", "pause")
    assert code == 2 and out == ""
    assert err == "dlptui: The following arguments are required: ID; see `dlptui experiment pause --help`.\n"
    code, _, err = run(capsys, "model", "promote", "m", "two", "--to", "production")
    assert code == 2 and err.count("\n") == 1 and "invalid int value: 'two'" in err


def test_help_and_version_exit_zero(capsys):
    assert run(capsys, "--version")[0] == 0
    assert run(capsys, "deployment", "--help")[0] == 0


def test_destructive_commands_ask_and_refuse_without_a_terminal(home, capsys, monkeypatch):
    assert run_json(capsys, "data", "create", "keep")["name"] == "keep"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    code, _, err = run(capsys, "data", "delete", "keep")
    assert code == 2 and "add --yes" in err and err.count("\n") == 1
    assert [r["name"] for r in run_json(capsys, "data", "repos")] == ["keep"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))  # asked, answers No: kept
    assert run(capsys, "data", "delete", "keep")[0] == 1
    assert [r["name"] for r in run_json(capsys, "data", "repos")] == ["keep"]
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert run(capsys, "data", "delete", "keep")[0] == 0
    assert run_json(capsys, "data", "repos") == []


def test_kill_and_undeploy_ask_before_anything_changes(home, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "undeploy", "nothing-here")  # a name that is not there: not found, before asking
    assert code == 3 and "nothing-here" in err
    assert parsed("undeploy", "x", "--yes").yes and parsed("experiment", "kill", "1", "--yes").yes


def test_status_exits_5_when_a_part_is_unreachable(home, capsys, monkeypatch, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("PACHD_ADDRESS", "grpc://127.0.0.1:9")
    monkeypatch.setenv("DET_MASTER", "http://127.0.0.1:9")
    code, out, err = run(capsys, "--profile", "cluster", "status", "--json")
    assert code == 5, err
    assert not all(part["reachable"] for part in json.loads(out))
    assert run(capsys, "status")[0] == 0  # the local profile answers


def test_completion_prints_shell_code_and_completes_names(home, capsys):
    code, out, _ = run(capsys, "completion", "bash")
    assert code == 0 and "dlptui" in out and "complete" in out
    run_json(capsys, "data", "create", "alpha")
    run_json(capsys, "data", "create", "beta")
    assert repo_names("al") == ["alpha"]
    assert sorted(repo_names("")) == ["alpha", "beta"]


def test_main_reads_sys_argv(home, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["dlptui", "data", "repos", "--json"])
    assert main() == 0 and json.loads(capsys.readouterr().out) == []
