"""Pipelines, their jobs and datums as table rows and describe blocks."""

from __future__ import annotations

import shlex

from dlptui import text
from dlptui.platform.model import Datum, Job, Pipeline
from dlptui.render import Block, Column, describer, joined

SHOWN_FILES = 3  # a datum's files in a table: the first few, then how many more


def datum_counts(job: Job) -> str:
    """A job's datums in words: "298 done, 2 skipped, 1 failed / 301"."""
    d = job.datums or {}
    failed = f", {d.get('failed', 0)} failed" if d.get("failed") else ""
    return f"{d.get('processed', 0)} done, {d.get('skipped', 0)} skipped{failed} / {d.get('total', 0)}"


def datum_files(d: Datum) -> str:
    more = len(d.files) - SHOWN_FILES
    return joined(d.files[:SHOWN_FILES]) + (f" (+{more})" if more > 0 else "")


def flow(p: Pipeline) -> str:
    return f"{joined(p.inputs)} -> {p.output}"


PIPELINE_COLUMNS = [
    Column("name", "PIPELINE", lambda p: p.name),
    Column("state", "STATE", lambda p: p.state),
    Column("flow", "INPUT -> OUTPUT", flow),
    Column("job", "LAST JOB", lambda p: text.job_id(p.last_job)),
    Column("jobstate", "JOB STATE", lambda p: p.last_job_state.value if p.last_job_state else None),
    Column("created", "CREATED", lambda p: text.timestamp(p.created)),
    Column("detail", "DETAIL", lambda p: p.detail),
]

JOB_COLUMNS = [
    Column("id", "JOB", lambda j: text.job_id(j.id)),
    Column("pipeline", "PIPELINE", lambda j: j.pipeline),
    Column("state", "STATE", lambda j: j.state.value),
    Column("datums", "DATUMS", datum_counts),
    Column("input", "INPUT", lambda j: joined(j.input_commits)),
    Column("output", "OUTPUT", lambda j: j.output_commit),
    Column("started", "STARTED", lambda j: text.timestamp(j.started)),
    Column("duration", "DURATION", lambda j: text.duration(j.duration)),
    Column("reason", "REASON", lambda j: j.reason),
]

DATUM_COLUMNS = [
    Column("id", "DATUM", lambda d: text.commit_id(d.id)),
    Column("state", "STATE", lambda d: d.state),
    Column("tries", "TRIES", lambda d: d.tries),
    Column("files", "FILES", datum_files),
    Column("reason", "REASON", lambda d: d.reason),
]


@describer(Pipeline)
def describe_pipeline(p: Pipeline) -> Block:
    return [
        ("pipeline", p.name),
        ("state", p.state),
        ("detail", p.detail or text.MISSING),
        ("description", p.description or text.MISSING),
        ("input", joined(p.inputs)),
        ("output", p.output),
        ("image", p.image or text.MISSING),
        ("command", shlex.join(p.cmd) if p.cmd else text.MISSING),
        ("parallelism", str(p.parallelism)),
        ("datum tries", str(p.datum_tries)),
        ("last job", p.last_job or text.MISSING),
        ("last job state", p.last_job_state.value if p.last_job_state else text.MISSING),
        ("created", text.timestamp(p.created)),
    ]


@describer(Job)
def describe_job(j: Job) -> Block:
    return [
        ("job", j.id),
        ("pipeline", j.pipeline),
        ("state", j.state.value),
        ("reason", j.reason or text.MISSING),
        ("datums", datum_counts(j)),
        ("input", joined(j.input_commits)),
        ("output", j.output_commit or text.MISSING),
        ("started", text.timestamp(j.started)),
        ("finished", text.timestamp(j.finished)),
        ("duration", text.duration(j.duration)),
    ]


def job_summary(j: Job) -> str:
    """One line of a job for a screen's heading: state, datums, duration, inputs -> output."""
    output = f" -> {j.output_commit}" if j.output_commit else ""
    return f"{j.pipeline}: {j.state.value}, {datum_counts(j)}, {text.duration(j.duration)}; {joined(j.input_commits)}{output}"


@describer(Datum)
def describe_datum(d: Datum) -> Block:
    return [("datum", d.id), ("job", d.job_id), ("state", d.state), ("tries", str(d.tries)), ("files", joined(d.files)),
            ("reason", d.reason or text.MISSING)]
