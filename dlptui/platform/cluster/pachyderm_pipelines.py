"""ports.Pipelines on pachd, through python-pachyderm 7.6's PPS calls.

The spec is checked as on the local profile (`pipeline_spec.parse`: one sentence for a bad
field) and sent as python-pachyderm's own CreatePipelineRequest (`create_pipeline_from_request`);
what pachd's CreatePipeline refuses beyond that is InvalidInput with its words. pachd's nouns map
onto the port's: a JobInfo is a Job (its input commits are the user commits of the output commit's
direct provenance, which also names the pipeline's spec commit), a DatumInfo a Datum, a pipeline's
state one of STATES. On pachd the jobs of one commit set share an id across pipelines, so a Job's
id here is `PIPELINE@ID`, as pachctl writes a job; an id alone is taken when one pipeline has it.

Restarting a failed job: pachd's RestartDatum acts only on a running job's workers (a finished job
answers "datum matching filter [] could not be found"), so the adapter updates the pipeline with its
own spec (CreatePipeline with `update`, what 2.12's RerunPipeline does): pachd starts a new job over
the inputs' heads, which skips the datums an earlier successful job did and runs the rest. That is
the failed job's work again only when it is the pipeline's newest job and the pipeline runs; other
cases are one Conflict sentence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound
from dlptui.platform import data_rules, pipeline_spec
from dlptui.platform.cluster.pachyderm_connection import Pachd, _rpc_error, input_leaves
from dlptui.platform.model import CommitRef, Datum, Job, JobState, Pipeline, Service
from dlptui.platform.rules import DEFAULT_BRANCH

JOB_STATES = {
    "JOB_CREATED": JobState.CREATED, "JOB_STARTING": JobState.CREATED, "JOB_RUNNING": JobState.RUNNING,
    "JOB_EGRESSING": JobState.RUNNING, "JOB_FINISHING": JobState.RUNNING, "JOB_SUCCESS": JobState.SUCCESS,
    "JOB_FAILURE": JobState.FAILURE, "JOB_UNRUNNABLE": JobState.FAILURE, "JOB_KILLED": JobState.KILLED,
}
STATES = {"PIPELINE_STARTING": "starting", "PIPELINE_RESTARTING": "starting", "PIPELINE_RUNNING": "running",
          "PIPELINE_PAUSED": "running",  # not stopped, yet PAUSED: StartPipeline's change not applied yet; it runs next
          "PIPELINE_STANDBY": "standby", "PIPELINE_CRASHING": "crashing", "PIPELINE_FAILURE": "failed"}
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


def _rerun_request(info: Any) -> Any:
    """The pipeline's own spec as an update (pachd's RerunPipeline without reprocess): every field of
    CreatePipelineRequest that PipelineInfo.Details carries, as pachd keeps it."""
    from python_pachyderm.proto.v2.pps import pps_pb2

    request = pps_pb2.CreatePipelineRequest(pipeline=info.pipeline, update=True, reprocess=False)
    details = info.details
    for field in request.DESCRIPTOR.fields:
        theirs = details.DESCRIPTOR.fields_by_name.get(field.name)
        if theirs is None or theirs.type != field.type or theirs.label != field.label:
            continue
        value = getattr(details, field.name)
        if field.label == field.LABEL_REPEATED:
            getattr(request, field.name).extend(value)
        elif field.message_type is not None:
            if details.HasField(field.name):
                getattr(request, field.name).CopyFrom(value)
        else:
            setattr(request, field.name, value)
    return request


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
        shown = "paused" if info.stopped else STATES.get(state, "starting")
        jobs = self._jobs(client, info.pipeline.name, limit=1)
        if shown == "crashing":
            detail = (f"Its workers cannot start: {info.reason or 'pachd gives no reason'}; fix the image (or what the "
                      f"reason names), then delete and create pipeline {info.pipeline.name} again.")
        elif shown == "failed":
            detail = (f"pachd failed it: {info.reason or 'pachd gives no reason'}; fix the spec, then delete and create "
                      f"pipeline {info.pipeline.name} again.")
        else:
            detail = info.reason or d.recent_error or f"pachd runs it in image {d.transform.image or 'ubuntu:20.04'} ({state})."
        return Pipeline(
            name=info.pipeline.name,
            state=shown,
            inputs=tuple(CommitRef.of(leaf.repo, leaf.branch or DEFAULT_BRANCH) for leaf in input_leaves(d.input)),
            output=CommitRef.of(info.pipeline.name, d.output_branch or DEFAULT_BRANCH),
            created=_seconds(d.created_at) or 0.0,
            description=d.description,
            cmd=tuple(d.transform.cmd),
            image=d.transform.image,
            parallelism=int(d.parallelism_spec.constant) or 1,
            datum_tries=int(d.datum_tries) or pipeline_spec.DEFAULT_TRIES,
            last_job=jobs[0].id if jobs else None,
            last_job_state=jobs[0].state if jobs else None,
            detail=detail,
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
        if commit is not None:  # the user commits: the spec commit (a system repo) is in the provenance too
            inputs = tuple(CommitRef.of(c.repo.name or c.branch.repo.name, c.id) for c in commit.direct_provenance
                           if (c.repo.type or c.branch.repo.type or "user") == "user")
        return Job(
            id=f"{info.job.pipeline.name}@{info.job.id}", pipeline=info.job.pipeline.name, state=state, input_commits=inputs,
            output_commit=CommitRef.of(out.branch.repo.name or out.repo.name, out.id) if state is JobState.SUCCESS else None,
            datums={"total": int(info.data_total), "processed": int(info.data_processed),
                    "skipped": int(info.data_skipped), "failed": int(info.data_failed)},
            started=_seconds(info.started) or _seconds(info.created), finished=_seconds(info.finished), reason=info.reason,
        )

    def _jobs(self, client: Any, pipeline: str | None, limit: int | None = None) -> list[Job]:
        """Newest (last created) first: one pipeline's, or every pipeline's."""
        names = [pipeline] if pipeline is not None else [p.pipeline.name for p in client.list_pipeline()]
        infos = [i for name in names for i in client.list_job(pipeline_name=name)]
        infos.sort(key=lambda i: (_seconds(i.created) or _seconds(i.started) or 0.0, i.job.id), reverse=True)
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
            if parsed.name in repos:  # pachd: "cannot be created because a repo with the same name already exists"
                raise data_rules.repo_taken(parsed.name)
            try:
                client.create_pipeline_from_request(request)
            except Exception as e:  # what pachd's CreatePipeline checks beyond the spec's form: in its words
                rpc = _rpc_error(e)
                if rpc is None or rpc.code().name != "UNKNOWN":
                    raise
                details = ((rpc.details() or "").splitlines() or [""])[0].rstrip(".")
                raise InvalidInput(f"pachd refused pipeline {parsed.name!r}: {details}.") from None
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
        with self.pachd.call("the jobs" if pipeline is None else f"pipeline {pipeline!r}") as client:
            if pipeline is not None:
                self._need(client, pipeline)
            return self._jobs(client, pipeline)

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
        """A new job of the pipeline over the same input commits, which runs the failed datums again (see the module's
        docstring); the Job returned is that new one."""
        with self.pachd.call(f"job {job_id!r}") as client:
            info = self._find_job(client, job_id)
            job = self._job(client, info)
            if not job.state.terminal:
                raise Conflict(f"Job {job.id} is {job.state.value}; only a job that has ended can be restarted.")
            if job.state is JobState.SUCCESS or (job.state is JobState.FAILURE and not job.datums.get("failed")):
                raise Conflict(f"Job {job.id} has no failed datum to run again.")
            name = info.job.pipeline.name
            newest = self._jobs(client, name, limit=1)[0]
            if newest.id != job.id:
                raise Conflict(f"Job {job.id} is not the newest job of pipeline {name!r} ({newest.id} is); pachd runs a "
                               "pipeline again only over its inputs' newest commits, so restart the newest job.")
            pipeline = next(iter(client.inspect_pipeline(name, details=True)))
            if pipeline.stopped:
                raise Conflict(f"Pipeline {name!r} is stopped; start it (`dlptui pipeline start {name}`), which runs a "
                               "new job over its inputs' newest commits.")
            before = {j.id for j in self._jobs(client, name)}
            client.create_pipeline_from_request(_rerun_request(pipeline))
            again = next((j for j in self._jobs(client, name) if j.id not in before), None)
        if again is None:
            raise Conflict(f"pachd started no new job for pipeline {name!r}; see `dlptui pipeline inspect {name}`.")
        return again

    def job_logs(self, job_id: str, datum_id: str | None = None) -> list[str]:
        """The lines the code wrote (pachd's `user` lines; the worker's own lines are left out)."""
        from python_pachyderm.proto.v2.pps import pps_pb2

        with self.pachd.call(f"job {job_id!r}") as client:
            info = self._find_job(client, job_id)
            name, ident = info.job.pipeline.name, info.job.id
            datum = None
            if datum_id is not None:
                ids = [d.datum.id for d in client.list_datum(pipeline_name=name, job_id=ident) if d.datum.id.startswith(datum_id)]
                if len(ids) != 1:
                    raise NotFound(f"Job {name}@{ident} has no datum {datum_id!r}; see `dlptui job {name}@{ident}`.")
                datum = pps_pb2.Datum(job=info.job, id=ids[0])
            try:
                messages = [m for m in client.get_job_logs(name, ident, datum=datum) if m.user]
            except Exception as e:
                rpc = _rpc_error(e)
                if rpc is not None and "no pods belonging to" in (rpc.details() or ""):
                    raise NotAvailable(
                        f"pachd has no logs of job {name}@{ident} now: pipeline {name!r} has no running workers to read "
                        "them from, and pachd keeps none of its own without Loki (the Helm value pachd.lokiLogging)."
                    ) from None
                raise
            return [m.message.rstrip("\n") if datum is not None else f"{m.datum_id[:12]} {m.message.rstrip(chr(10))}"
                    for m in messages]
