"""Helpers that more than one test file calls (fixtures live in tests/fixtures/)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from dlptui.cli import main

ROOT = Path(__file__).resolve().parents[1]  # the checkout
INFRA = ROOT / "infra"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`dlptui ARGV` in this process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def run_cluster_status(home: Path, **env_vars: str) -> tuple[int, dict, str]:
    """`dlptui --profile cluster status --json`, run as a user runs it, with none of this shell's
    platform settings, only `env_vars`: exit code, each part's status by name, stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DLPTUI_", "DET_", "PACHD_", "KUBECONFIG"))}
    env.update({"DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), **env_vars})
    done = subprocess.run(
        [sys.executable, "-m", "dlptui", "--profile", "cluster", "status", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, {s["part"]: s for s in json.loads(done.stdout)}, done.stderr


REPR = re.compile(r"\b\d{10}\.\d+\b|\bNone\b|\[['\"]|\{['\"]|\(\)|\bTrue\b|\bFalse\b")  # epoch floats, None, lists, dicts


def no_repr(text: str) -> str:
    """`text` (what a person reads) holds no Python repr: no epoch float, no None, no list, dict, tuple or bool."""
    found = REPR.search(text)
    assert found is None, f"{found.group(0)!r} in: {text[max(0, found.start() - 80):found.end() + 80]!r}"
    return text
