"""ports.Pipelines on pachd, through python-pachyderm 7.6's PPS calls.

The spec is checked as on the local profile (`pipeline_spec.parse`: one sentence for a bad
field) and sent as python-pachyderm's own CreatePipelineRequest (`create_pipeline_from_request`).
pachd's nouns map onto the port's: a JobInfo is a Job (its input commits are the output commit's
direct provenance), a DatumInfo a Datum. On pachd the jobs of one commit set share an id across
pipelines, so a Job's id here is `PIPELINE@ID`, as pachctl writes a job; an id alone is taken when
one pipeline has it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dlptui.errors import Conflict, NotFound
from dlptui.platform import pipeline_spec
from dlptui.platform.cluster.pachyderm_connection import Pachd
from dlptui.platform.model import Datum, Job, JobState, Pipeline, Service

JOB_STATES = {
    "JOB_CREATED": JobState.CREATED, "JOB_STARTING": JobState.CREATED, "JOB_RUNNING": JobState.RUNNING,
    "JOB_EGRESSING": JobState.RUNNING, "JOB_FINISHING": JobState.RUNNING, "JOB_SUCCESS": JobState.SUCCESS,
    "JOB_FAILURE": JobState.FAILURE, "JOB_UNRUNNABLE": JobState.FAILURE, "JOB_KILLED": JobState.KILLED,
}
DATUM_STATES = {"SUCCESS": "success", "RECOVERED": "success", "FAILED": "failed", "SKIPPED": "skipped",
                "STARTING": "running", "UNKNOWN": "pending"}


def _seconds(stamp: Any) -> float | None:
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return stamp.seconds + stamp.nanos / 1e9


def _plain(message: Any) -> dict[str, Any]:
    """A protobuf message as plain values by field name (the fields that are set), for Pipeline.spec."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            out[field.name] = {k: (_plain(v) if hasattr(v, "ListFields") else v) for k, v in value.items()}
        elif field.label == field.LABEL_REPEATED:
            out[field.name] = [_plain(v) if hasattr(v, "ListFields") else v for v in value]
        elif hasattr(value, "ListFields"):
            out[field.name] = _plain(value)
        else:
            out[field.name] = value
    return out


def _leaves(message: Any) -> list[Any]:
    if message.HasField("pfs"):
        return [message.pfs]
    return [leaf for kind in ("cross", "union", "join", "group") for part in getattr(message, kind) for leaf in _leaves(part)]


class PachydermPipelines:
    def __init__(self, config, platform: Any = None) -> None:
        self.config = config
        self.pachd = Pachd(config)

    def health(self) -> Service:
        return dataclasses.replace(self.pachd.health(), part="pipelines")

    def close(self) -> None:
        self.pachd.close()

    # --- conversions ------------------------------------------------------------------

    def _pipeline(self, client: Any, info: Any) -> Pipeline:
        from python_pachyderm.proto.v2.pps import pps_pb2

        d = info.details
        state = pps_pb2.PipelineState.Name(info.state)
        jobs = self._jobs(client, info.pipeline.name, limit=1)
        return Pipeline(
            name=info.pipeline.name,
            state="paused" if info.stopped or state == "PIPELINE_PAUSED" else "running",
            inputs=tuple(f"{leaf.repo}@{leaf.branch or 'master'}" for leaf in _leaves(d.input)),
            output=f"{info.pipeline.name}@{d.output_branch or 'master'}",
            created=_seconds(d.created_at) or 0.0,
            description=d.description,
            cmd=tuple(d.transform.cmd),
            image=d.transform.image,
            parallelism=int(d.parallelism_spec.constant) or 1,
            datum_tries=int(d.datum_tries) or pipeline_spec.DEFAULT_TRIES,
            last_job=jobs[0].id if jobs else None,
            last_job_state=jobs[0].state if jobs else None,
            detail=info.reason or d.recent_error or f"pachd runs it in image {d.transform.image or 'ubuntu'} ({state}).",
            spec=_plain(d),
        )

    def _job(self, client: Any, info: Any) -> Job:
        from python_pachyderm.proto.v2.pps import pps_pb2

        state = JOB_STATES.get(pps_pb2.JobState.Name(info.state), JobState.CREATED)
        out = info.output_commit
        inputs: tuple[str, ...] = ()
        commit = None
        if out.id:
            try:
                commit = next(iter(client.inspect_commit(out)))
            except Exception:  # an output commit that is gone (its repo deleted): no provenance to show
                commit = None
        if commit is not None:
            inputs = tuple(f"{c.repo.name or c.branch.repo.name}@{c.id}" for c in commit.direct_provenance)
        return Job(
            id=f"{info.job.pipeline.name}@{info.job.id}", pipeline=info.job.pipeline.name, state=state, input_commits=inputs,
            output_commit=f"{out.branch.repo.name or out.repo.name}@{out.id}" if state is JobState.SUCCESS else None,
            datums={"total": int(info.data_total), "processed": int(info.data_processed),
                    "skipped": int(info.data_skipped), "failed": int(info.data_failed)},
            started=_seconds(info.started) or _seconds(info.created), finished=_seconds(info.finished), reason=info.reason,
        )

    def _jobs(self, client: Any, pipeline: str, limit: int | None = None) -> list[Job]:
        infos = list(client.list_job(pipeline_name=pipeline))
        infos.sort(key=lambda i: _seconds(i.created) or _seconds(i.started) or 0.0, reverse=True)
        return [self._job(client, i) for i in infos[:limit]]

    # --- pipelines ------------------------------------------------------------------------

    def _exists(self, client: Any, name: str) -> bool:
        return any(p.pipeline.name == name for p in client.list_pipeline())

    def _need(self, client: Any, name: str) -> None:
        if not self._exists(client, name):
            raise NotFound(f"There is no pipeline {name!r}; see `dlptui pipeline list`.")

    def create_pipeline(self, spec: Mapping) -> Pipeline:
        parsed = pipeline_spec.parse(spec)
        request = pipeline_spec.request(spec)
        with self.pachd.call(f"pipeline {parsed.name!r}") as client:
            repos = {r.repo.name for r in client.list_repo()}
            for leaf in parsed.input.leaves():
                if leaf.repo not in repos:
                    raise NotFound(
                        f"Input repo {leaf.repo!r} of pipeline {parsed.name!r} does not exist; "
                        f"create it with `dlptui data create {leaf.repo}` first."
                    )
            if self._exists(client, parsed.name):
                raise Conflict(f"Pipeline {parsed.name!r} exists already; delete it first or pick another name.")
            client.create_pipeline_from_request(request)
        return self.inspect_pipeline(parsed.name)

    def list_pipelines(self) -> list[Pipeline]:
        with self.pachd.call("the pipelines") as client:
            return sorted((self._pipeline(client, i) for i in client.list_pipeline(details=True)), key=lambda p: p.name)

    def inspect_pipeline(self, name: str) -> Pipeline:
        with self.pachd.call(f"pipeline {name!r}") as client:
            self._need(client, name)
            return self._pipeline(client, next(iter(client.inspect_pipeline(name, details=True))))

    def stop_pipeline(self, name: str) -> Pipeline:
        with self.pachd.call(f"pipeline {name!r}") as client:
            self._need(client, name)
            client.stop_pipeline(name)
        return self.inspect_pipeline(name)

    def start_pipeline(self, name: str) -> Pipeline:
        with self.pachd.call(f"pipeline {name!r}") as client:
            self._need(client, name)
            client.start_pipeline(name)
        return self.inspect_pipeline(name)

    def delete_pipeline(self, name: str) -> None:
        with self.pachd.call(f"pipeline {name!r}") as client:
            self._need(client, name)
            client.delete_pipeline(name)

    # --- jobs ---------------------------------------------------------------------------------

    def _find_job(self, client: Any, job_id: str) -> Any:
        """The JobInfo that `job_id` names: `PIPELINE@ID` as pachctl writes a job (what Job.id is here), or an id
        (or a prefix of 4 or more) alone when one pipeline has it (on pachd the pipelines of one commit set share it)."""
        from dlptui.errors import InvalidInput

        if not isinstance(job_id, str) or not job_id:
            raise InvalidInput(f"{job_id!r} is not a job id; see `dlptui jobs`.")
        pipeline, _, ident = job_id.rpartition("@")
        names = [pipeline] if pipeline else [p.pipeline.name for p in client.list_pipeline()]
        if pipeline and not self._exists(client, pipeline):
            raise NotFound(f"There is no job {job_id!r}: no pipeline {pipeline!r}; see `dlptui jobs`.")
        found = [j for name in names for j in client.list_job(pipeline_name=name) if j.job.id.startswith(ident)]
        exact = [j for j in found if j.job.id == ident]
        chosen = exact or (found if len(ident) >= 4 else [])
        if len(chosen) == 1:
            return chosen[0]
        if len(chosen) > 1:
            raise InvalidInput(f"Job {job_id!r} matches jobs of several pipelines; give it as PIPELINE@JOB.")
        raise NotFound(f"There is no job {job_id!r}; see `dlptui jobs`.")

    def list_jobs(self, pipeline: str | None = None) -> list[Job]:
        with self.pachd.call("the jobs") as client:
            if pipeline is not None:
                self._need(client, pipeline)
                return self._jobs(client, pipeline)
            jobs = [j for p in client.list_pipeline() for j in self._jobs(client, p.pipeline.name)]
            return sorted(jobs, key=lambda j: j.started or 0.0, reverse=True)

    def inspect_job(self, job_id: str) -> Job:
        with self.pachd.call(f"job {job_id!r}") as client:
            return self._job(client, self._find_job(client, job_id))

    def list_datums(self, job_id: str) -> list[Datum]:
        from python_pachyderm.proto.v2.pps import pps_pb2

        with self.pachd.call(f"job {job_id!r}") as client:
            info = self._find_job(client, job_id)
            datums = []
            for d in client.list_datum(pipeline_name=info.job.pipeline.name, job_id=info.job.id):
                state = DATUM_STATES.get(pps_pb2.DatumState.Name(d.state), "pending")
                files = tuple(f"{f.file.commit.repo.name or f.file.commit.branch.repo.name}:{f.file.path}" for f in d.data)
                datums.append(Datum(id=d.datum.id, job_id=f"{info.job.pipeline.name}@{info.job.id}", state=state, files=files))
            return sorted(datums, key=lambda d: d.id)

    def restart_job(self, job_id: str) -> Job:
        with self.pachd.call(f"job {job_id!r}") as client:
            info = self._find_job(client, job_id)
            job = self._job(client, info)
            if not job.state.terminal:
                raise Conflict(f"Job {job.id} is {job.state.value}; only a job that has ended can be restarted.")
            if job.state is JobState.SUCCESS or (job.state is JobState.FAILURE and not job.datums.get("failed")):
                raise Conflict(f"Job {job.id} has no failed datum to run again.")
            client.restart_datum(info.job.pipeline.name, info.job.id)
        return self.inspect_job(job.id)

    def job_logs(self, job_id: str, datum_id: str | None = None) -> list[str]:
        from python_pachyderm.proto.v2.pps import pps_pb2

        with self.pachd.call(f"job {job_id!r}") as client:
            info = self._find_job(client, job_id)
            datum = None
            if datum_id is not None:
                ids = [d.datum.id for d in client.list_datum(pipeline_name=info.job.pipeline.name, job_id=info.job.id)
                       if d.datum.id.startswith(datum_id)]
                if len(ids) != 1:
                    raise NotFound(f"Job {info.job.id} has no datum {datum_id!r}; see `dlptui job {info.job.id}`.")
                datum = pps_pb2.Datum(job=info.job, id=ids[0])
            messages = client.get_job_logs(info.job.pipeline.name, info.job.id, datum=datum)
            return [m.message.rstrip("\n") if datum is not None else f"{m.datum_id[:12]} {m.message.rstrip(chr(10))}"
                    for m in messages]
