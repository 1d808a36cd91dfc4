"""Pipeline use cases over `ports.Pipelines`, for both faces: create from a spec file, wait for jobs.

- `load_spec(path)`: a spec file (JSON or YAML, as `pachctl create pipeline -f` takes) as a mapping; a bare
  name that is no file is a shipped spec's (`dogs-and-cats-retrain`: the retrain on commit).
- `create_from_file(pipelines, path)`: check and create it; one sentence for a bad file.
- `wait_job(pipelines, job_id)`: the job once it has ended.
- `wait_for_input(pipelines, pipeline, input_commit)`: the job of that input commit once it has ended.
- `shipped_specs()`: the specs dlptui ships (`pipelines/`).
- `retrain_on_commit(pipelines)`: turn on the shipped retrain on commit (create its pipeline).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from dlptui import resources
from dlptui.actions.user_files import read_user_file
from dlptui.errors import Conflict, NotFound, Unreachable
from dlptui.platform import pipeline_spec
from dlptui.platform.model import Job, Pipeline
from dlptui.platform.ports import Pipelines

RETRAIN = "dogs-and-cats-retrain"  # the shipped spec: each new split commit starts the demo experiment
WAIT_S = 600.0
POLL_S = 0.2


def load_spec(path: Path | str) -> dict:
    """A spec file given as a path (a Path, or text with a '/' or a suffix), or a shipped spec by its bare name
    (text: what a person typed, before Path would drop a leading './')."""
    if isinstance(path, str) and is_bare_name(path):
        return _read(shipped_spec(path))
    return _read(Path(path))


def is_bare_name(given: str) -> bool:
    """A shipped spec's name, not a path: no folder separator and no suffix (`dogs-and-cats-retrain`)."""
    return "/" not in given and os.sep not in given and not Path(given).suffix and given not in ("", ".", "..")


def shipped_spec(name: str) -> Path:
    """The shipped spec of that name (`resources.pipelines_dir()`); NotFound naming the shipped ones."""
    found = next((p for p in shipped_specs() if p.stem == name), None)
    if found is None:
        names = ", ".join(p.stem for p in shipped_specs())
        raise NotFound(f"There is no shipped spec {name!r} (they are: {names}); give a file as a path, e.g. ./{name}.json.")
    return found


def _read(path: Path) -> dict:
    text = read_user_file(path, "spec file", give="give a pipeline spec file (JSON or YAML)")
    return pipeline_spec.load(text, source=f"The spec file {path}")


def create_from_file(pipelines: Pipelines, path: Path | str) -> Pipeline:
    return pipelines.create_pipeline(load_spec(path))


def wait_job(pipelines: Pipelines, job_id: str, timeout_s: float = WAIT_S, poll_s: float = POLL_S) -> Job:
    deadline = time.monotonic() + timeout_s
    while True:
        job = pipelines.inspect_job(job_id)
        if job.state.terminal:
            return job
        if time.monotonic() > deadline:
            raise Unreachable(f"Job {job.id} has not ended after {timeout_s:.0f} s (it is {job.state.value}); "
                              f"see `dlptui job {job.id}`.")
        time.sleep(poll_s)


def wait_for_input(pipelines: Pipelines, pipeline: str, input_commit: str, timeout_s: float = WAIT_S,
                   poll_s: float = POLL_S) -> Job:
    """`input_commit` is "repo@commit": the job that ran on it, once ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        for job in pipelines.list_jobs(pipeline):
            if input_commit in job.input_commits:
                return wait_job(pipelines, job.id, max(1.0, deadline - time.monotonic()), poll_s)
        if time.monotonic() > deadline:
            raise Unreachable(f"Pipeline {pipeline!r} started no job for {input_commit} within {timeout_s:.0f} s; "
                              f"see `dlptui pipeline inspect {pipeline}`.")
        time.sleep(poll_s)


def shipped_specs() -> list[Path]:
    folder = resources.pipelines_dir()
    return sorted(p for p in folder.iterdir() if p.suffix in (".json", ".yaml", ".yml"))


def retrain_on_commit(pipelines: Pipelines) -> Pipeline:
    """Create the shipped retrain-on-commit pipeline; one Conflict sentence when it is there already."""
    try:
        existing = pipelines.inspect_pipeline(RETRAIN)
    except NotFound:
        return pipelines.create_pipeline(_read(shipped_spec(RETRAIN)))  # the shipped one, never a file of the cwd
    verb = "stop it (p, or `dlptui pipeline stop" if existing.state == "running" else "start it (c, or `dlptui pipeline start"
    raise Conflict(f"Retrain on commit is there already (pipeline {RETRAIN!r}, {existing.state}); {verb} {RETRAIN}`).")
