"""The processes of a local home that run without the console: found for `dlptui status`, stopped by `dlptui stop`.

A process is this home's when dlptui marked it (`processes.TOKEN_VAR`, with DLPTUI_HOME naming the home: the
pipeline runner, its guard and datums, the training runners and their trials) or when a record under the home
names it (the model servers and Envoys of `serving/<deployment>/state.json` and `pending.json`, whose records
are processes.ProcessRecord: pid, start time, token). A command line proves nothing; it only names what a
process serves once it is known to be ours.

`stop` stops the pipeline runner (SIGTERM: it kills its datums and leaves their jobs to the next runner, which
the next command that looks at the pipelines starts) and ends whatever datum is left; with `serving`, the model
servers and Envoys too (local serving does not restart them: a deployment stays failed until deployed again).
Trainings are paused by the caller through the training part (`actions.background`), not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import psutil

from dlptui.platform.local import processes
from dlptui.platform.local.pipeline_job import PIPELINE_VAR
from dlptui.platform.local.pipeline_runner import RECORD
from dlptui.platform.model import BackgroundProcess

ROLES_NAMED = {"gateway": "Envoy"}


def _record(data) -> processes.ProcessRecord | None:
    if isinstance(data, dict) and isinstance(data.get("pid"), int) and isinstance(data.get("started"), (int, float)):
        try:
            return processes.ProcessRecord.from_json(data)
        except (KeyError, TypeError, ValueError):
            return None
    return None


def serving_records(home: Path) -> list[tuple[processes.ProcessRecord, str]]:
    """The recorded model servers and Envoys of the home's deployments, with what each serves."""
    found = []
    for path in sorted((home / "serving").glob("*/*.json")):
        if path.name not in ("state.json", "pending.json"):
            continue
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        deployment = path.parent.name
        entries = {"pending": state} if path.name == "pending.json" else (state if isinstance(state, dict) else {})
        for role, value in entries.items():
            record = _record(value)
            if record is None:
                continue
            if role in ROLES_NAMED:
                found.append((record, f"{ROLES_NAMED[role]} of deployment {deployment}"))
            else:
                version = value.get("version")
                found.append((record, f"model server of deployment {deployment} ({role}{f', version {version}' if version else ''})"))
    return found


def _runner(home: Path) -> processes.ProcessRecord | None:
    try:
        return processes.ProcessRecord.from_json(json.loads((home / "pipelines" / RECORD).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _serves(proc: psutil.Process, env: dict, runner: processes.ProcessRecord | None) -> tuple[str, str]:
    part = env.get(processes.PART_VAR, "platform")
    if PIPELINE_VAR in env:
        return part, f"a datum of pipeline {env[PIPELINE_VAR]}"
    try:
        argv = proc.cmdline()
    except psutil.Error:
        argv = []
    if runner is not None and proc.pid == runner.pid:
        return part, "the pipeline runner of this home"
    if part == "pipelines":
        return part, "the pipeline runner's guard"
    if part == "gate":
        return part, "the gate runner of this home (it judges gated canaries)"
    if part == "drift" and "drift" in argv[:-1]:  # `dlptui drift MODEL@VERSION --reference`, started by a deploy
        return part, f"the drift reference of {argv[argv.index('drift') + 1]}"
    for module, what in (("search_runner", "experiment"), ("training_runner", "a trial of experiment")):
        if f"dlptui.platform.local.{module}" in argv:
            index = argv.index(f"dlptui.platform.local.{module}")
            ident = argv[index + 2] if len(argv) > index + 2 else "?"
            return part, f"{what} {ident}"
    return part, (proc.name() if argv else part)


def find(home: Path) -> list[BackgroundProcess]:
    """The home's background processes, one row per process that none of the others started, oldest first."""
    home = Path(home)
    found: dict[int, tuple[psutil.Process, str, str]] = {}
    runner = _runner(home)
    recorded = {record.pid: serves for record, serves in serving_records(home)}  # what a model server or Envoy serves
    for proc in processes.marked({"DLPTUI_HOME": str(home), processes.TOKEN_VAR: None}):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        part, serves = _serves(proc, env, runner)
        found[proc.pid] = (proc, part, recorded.get(proc.pid, serves))
    for record, serves in serving_records(home):
        if not processes.alive(record):
            continue
        for proc in [psutil.Process(record.pid), *processes.members(record)]:
            if proc.pid not in found:
                found[proc.pid] = (proc, "serving", serves if proc.pid == record.pid else f"part of {serves}")
    rows = []
    for pid, (proc, part, serves) in found.items():
        try:
            parent = proc.ppid()
            if parent in found:
                continue  # counted in the process that started it
            family = [proc, *proc.children(recursive=True)]
            memory = 0
            for p in family:
                try:
                    memory += p.memory_info().rss
                except psutil.Error:
                    pass
            rows.append(BackgroundProcess(pid=pid, part=part, serves=serves, started=proc.create_time(),
                                          processes=len(family), memory_bytes=memory))
        except psutil.Error:
            continue
    return sorted(rows, key=lambda r: (r.started or 0, r.pid))


def stop(home: Path, serving: bool = False) -> list[str]:
    """Stop the pipeline runner (and whatever datum is left), and with `serving` the model servers and Envoys;
    what was stopped, one sentence each."""
    home = Path(home)
    done = []
    runner = _runner(home)
    if runner is not None and processes.alive(runner):
        processes.stop_tree(runner, timeout=10.0)
        done.append(f"Stopped the pipeline runner (pid {runner.pid}); its jobs go on when a command next looks at "
                    "the pipelines (`dlptui pipeline list`, the console's Pipelines screen).")
    left = processes.marked({PIPELINE_VAR: None, "DLPTUI_HOME": str(home)})
    if left:
        processes.end(left)
        done.append(f"Ended {len(left)} process(es) of datums.")
    if serving:
        for record, serves in serving_records(home):
            if processes.alive(record):
                processes.stop_tree(record, timeout=10.0)
                done.append(f"Stopped the {serves} (pid {record.pid}).")
    return done
