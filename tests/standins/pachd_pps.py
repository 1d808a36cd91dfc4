"""The PPS half of the pachd stand-in (tests only): pipelines, jobs, datums and logs on the generated servicer.

It shares the PFS stand-in's state and lock. CreatePipeline checks and fills a spec as pachd does
(pachd_spec.py); jobs move and run as pachd's do (pachd_jobs.py). The rest, as pachd 2.12 does (v2.7.8 alike
unless said), from src/server/pps/server (api_server.go, pipeline_controller.go, poller.go, master.go) and
src/server/worker:
- a pipeline is PIPELINE_STARTING when created or updated, then RUNNING; PAUSED when stopped; STANDBY with
  `autoscaling` and no job to run; CRASHING when its worker pods cannot start, with the kubelet's message as
  the reason (an image in `missing_images` cannot be pulled: `Back-off pulling image "IMAGE"`), back to RUNNING
  once they can; FAILURE with an image but no `transform.cmd` ("nothing to run: no transform.cmd");
- CreatePipeline with `update` makes a new version and a new spec commit, kills the pipeline's unfinished jobs
  ("all jobs killed because pipeline was updated") and starts a job over the inputs' heads (a stopped pipeline
  stays stopped and gets none): the only way pachd reruns a pipeline's failed datums (2.12's RerunPipeline is
  this call too; python-pachyderm 7.6 has no RerunPipeline);
- StopPipeline kills the unfinished jobs ("all jobs killed because pipeline was stopped") and makes no job for
  new input commits; StartPipeline of a stopped pipeline starts a job over the inputs' heads;
- RestartDatum acts only on a running job's workers: it restarts the datum they are running, and for a job that
  runs none (a finished one) answers UNKNOWN "datum matching filter [] could not be found for job ID ID";
- GetLogs reads Loki (the Helm chart's default, `loki`); without Loki it reads the worker pods, so once they are
  gone (the pipeline paused, in standby or crashing) it answers "no pods belonging to the rc "default-NAME-vN"
  were found", and an older version's pods are gone with it;
- with auth on, every call needs a token; errors carry pachd's codes and words.
"""

from __future__ import annotations

import threading
import time
import uuid

import grpc
from google.protobuf import empty_pb2
from python_pachyderm.proto.v2.pfs import pfs_pb2
from python_pachyderm.proto.v2.pps import pps_pb2, pps_pb2_grpc

from tests.standins import pachd_spec as spec
from tests.standins.pachd_jobs import UNFINISHED, Job, Worker, datum_hash, datum_id, datums_of, job_info
from tests.standins.pachd_pfs import repo_pb
from tests.standins.pachd_state import AUTO, PROJECT, Abort, StandinRepo, check_token, timestamp

TICK_S = 0.05
J, P = pps_pb2.JobState, pps_pb2.PipelineState
OUTPUT_ASSOCIATED = ("delete repo: error checking whether repo \"{project}/{repo}\" can be deleted: "
                     "cannot delete a repo associated with a pipeline - delete the pipeline instead")
IN_PROVENANCE = ("delete repo: delete branch {project}/{repo}@{branch}: branch \"{project}/{repo}@{branch}\" cannot be "
                 "deleted because it's in the direct provenance of [{users}]")


def _unknown(text: str) -> Abort:
    return Abort(grpc.StatusCode.UNKNOWN, text)


class PpsStandinServicer(pps_pb2_grpc.APIServicer):
    def __init__(self, pfs) -> None:
        self.pfs = pfs
        self.lock = pfs.lock
        self.pipelines: dict[str, dict] = {}
        self.jobs: dict[str, Job] = {}
        self.missing_images: set[str] = set()  # images no registry has: the workers crash pulling them
        self.loki = True  # the Helm chart's pachd.lokiLogging
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_forever, name="pps-standin", daemon=True)
        self._ticker.start()

    def reset(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                self._kill(job, "the stand-in was reset")
            self.pipelines.clear()
            self.jobs.clear()
            self.missing_images.clear()
            self.loki = True

    def close(self) -> None:
        self._stop.set()
        self.reset()

    def _run(self, context, fn):
        try:
            with self.lock:
                check_token(context, self.pfs.required_token)
                return fn()
        except Abort as e:
            context.abort(e.code, e.details)

    def _pipeline(self, name: str) -> dict:
        if name not in self.pipelines:
            raise Abort(grpc.StatusCode.NOT_FOUND, f'pipeline "{PROJECT}/{name}" not found')
        return self.pipelines[name]

    def _job(self, job: pps_pb2.Job) -> Job:
        found = self.jobs.get(f"{job.pipeline.name}/{job.id}")
        if found is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"jobs {PROJECT}/{job.pipeline.name}@{job.id} not found")
        return found

    # --- what the PFS half asks ---------------------------------------------------------------

    def output_branch(self, repo: str, branch: str) -> bool:
        p = self.pipelines.get(repo)
        return p is not None and p["request"].output_branch == branch

    def refuse_repo_delete(self, repo: str) -> None:
        if repo in self.pipelines:
            raise _unknown(OUTPUT_ASSOCIATED.format(project=PROJECT, repo=repo))
        for name, p in sorted(self.pipelines.items()):
            if p["stopped"]:  # a stopped pipeline's output branch has no provenance: nothing holds the input
                continue
            for leaf in spec.leaves(p["request"].input):
                if leaf.repo == repo and leaf.branch in self.pfs.repos[repo].branches:
                    out = p["request"].output_branch
                    users = f"{PROJECT}/{name}@{out} {PROJECT}/{name}.meta@{out}"
                    raise _unknown(IN_PROVENANCE.format(project=PROJECT, repo=repo, branch=leaf.branch, users=users))

    def propagate(self, repo: str, branch: str, seen: frozenset = frozenset()) -> None:
        """A new commit on `repo@branch`: its commit set holds a job of each running pipeline that reads it, and
        of the pipelines downstream of those (each job's output commit is opened at once, with the same id)."""
        ident = self.pfs.repos[repo].branches[branch]
        for name, p in list(self.pipelines.items()):
            reads = any(leaf.repo == repo and leaf.branch == branch for leaf in spec.leaves(p["request"].input))
            if reads and not p["stopped"] and name not in seen:
                self._new_job(name, ident, seen | {repo})

    def drop_jobs(self, ident: str) -> None:
        for key in [k for k, j in self.jobs.items() if j.id == ident]:
            self._kill(self.jobs.pop(key), "its commit set was dropped")

    # --- jobs ---------------------------------------------------------------------------------

    def _new_job(self, name: str, ident: str, seen: frozenset = frozenset()) -> Job:
        p = self.pipelines[name]
        request = p["request"]
        inputs = []
        for leaf in spec.leaves(request.input):
            repo = self.pfs.repos[leaf.repo]
            inputs.append((leaf.name, leaf.repo, repo.branches[leaf.branch]))
        job = Job(name, ident, p["version"], inputs, p["spec"])
        out = self.pfs.repos[name]
        commit = self.pfs.new_commit(out, request.output_branch, AUTO, commit_id=ident)
        commit.files, commit.provenance, commit.spec = {}, [(r, c) for _, r, c in inputs], p["spec"]
        self.jobs[job.key] = job
        self.propagate(name, request.output_branch, seen | {name})
        return job

    def _kill(self, job: Job, reason: str) -> None:
        if job.state in UNFINISHED:
            job.state, job.finished, job.reason = J.JOB_KILLED, time.time(), reason
            self._finish_output(job, reason)
        if job.process is not None and job.process.poll() is None:
            job.process.kill()

    def _finish_output(self, job: Job, error: str = "") -> None:
        repo = self.pfs.repos.get(job.pipeline)
        c = repo.commits.get(job.id) if repo else None
        if c is not None and c.finishing is None and c.finished is None:
            self.pfs.finish(c, error)

    def end_job(self, job: Job) -> None:
        """The worker ran every datum (under the lock): the output commit gets the outputs, and an error if one failed."""
        commit = self.pfs.repos[job.pipeline].commits[job.id]
        commit.files = {path: data for d in job.datums.values() if d["state"] in ("SUCCESS", "SKIPPED")
                        for path, data in d["output"].items()}
        failed = sorted(d for d, v in job.datums.items() if v["state"] == "FAILED")
        if failed:
            job.state, job.finished, job.reason = J.JOB_FAILURE, time.time(), f"datum {failed[0]} failed"
            self._finish_output(job, job.reason)
        elif self.pipelines[job.pipeline]["request"].HasField("egress"):
            job.state = J.JOB_EGRESSING
        else:
            job.state = J.JOB_FINISHING
            self._finish_output(job)

    def _start_running(self, job: Job, p: dict) -> None:
        request, repos = p["request"], self.pfs.repos
        base = next((j for j in sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
                     if j.pipeline == job.pipeline and j.created < job.created and j.state == J.JOB_SUCCESS), None)
        for files in datums_of(request, repos, {name: c for name, _, c in job.inputs}):
            did, h = datum_id(files), datum_hash(files, repos, p["salt"])
            before = base.datums.get(did) if base else None
            skip = (before is not None and before["hash"] == h and before["state"] in ("SUCCESS", "SKIPPED")
                    and request.reprocess_spec != "every_job")
            job.datums[did] = {"state": "SKIPPED" if skip else "UNKNOWN", "files": files, "hash": h, "tries": 0,
                               "output": dict(before["output"]) if skip else {}, "logs": []}
        job.state, job.started = J.JOB_RUNNING, time.time()
        job.worker = Worker(self, job)
        job.worker.start()

    def _tick_forever(self) -> None:
        while not self._stop.wait(TICK_S):
            with self.lock:
                try:
                    self._tick()
                except Exception:  # a repo deleted between two looks: the next tick sees it; the ticker goes on
                    import traceback

                    traceback.print_exc()

    def _state(self, name: str, p: dict) -> tuple[int, str]:
        request = p["request"]
        if p["stopped"]:
            return P.PIPELINE_PAUSED, ""
        if not request.transform.cmd:
            return P.PIPELINE_FAILURE, "nothing to run: no transform.cmd"
        if request.transform.image in self.missing_images:
            return P.PIPELINE_CRASHING, f'Back-off pulling image "{request.transform.image}"'
        busy = any(j.pipeline == name and j.state in UNFINISHED for j in self.jobs.values())
        if request.autoscaling and not busy:
            return P.PIPELINE_STANDBY, ""
        return P.PIPELINE_RUNNING, ""

    def _tick(self) -> None:
        for name, p in self.pipelines.items():
            p["state"], p["reason"] = self._state(name, p)
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            p = self.pipelines.get(job.pipeline)
            if p is None:
                continue
            earlier = [j for j in self.jobs.values() if j.pipeline == job.pipeline and j.created < job.created
                       and j.state in UNFINISHED + (J.JOB_FINISHING,)]
            if job.state == J.JOB_CREATED and p["state"] == P.PIPELINE_RUNNING and not earlier:
                job.state = J.JOB_STARTING
            elif job.state == J.JOB_STARTING and p["state"] == P.PIPELINE_RUNNING:
                commits = [self.pfs.repos[r].commits[c] for _, r, c in job.inputs]
                if any(c.error for c in commits):
                    failed = ", ".join(sorted({c.repo for c in commits if c.error}))
                    job.state, job.finished = J.JOB_UNRUNNABLE, time.time()
                    job.reason = f"unrunnable because the following upstream pipelines failed: {failed}"
                    self._finish_output(job, job.reason)
                elif all(c.finished is not None for c in commits):
                    self._start_running(job, p)
            elif job.state == J.JOB_EGRESSING:
                job.state = J.JOB_FINISHING
                self._finish_output(job)
            elif job.state == J.JOB_FINISHING:
                if self.pfs.repos[job.pipeline].commits[job.id].finished is not None:
                    job.state, job.finished = J.JOB_SUCCESS, time.time()

    # --- messages -----------------------------------------------------------------------------

    def _pipeline_info(self, name: str) -> pps_pb2.PipelineInfo:
        p = self.pipelines[name]
        r = p["request"]
        jobs = sorted((j for j in self.jobs.values() if j.pipeline == name), key=lambda j: j.created)
        details = pps_pb2.PipelineInfo.Details(created_at=timestamp(p["created"]), salt=p["salt"])
        for field in pps_pb2.PipelineInfo.Details.DESCRIPTOR.fields:
            mine = r.DESCRIPTOR.fields_by_name.get(field.name)
            if mine is not None and mine.type == field.type and field.name not in ("salt",):
                value = getattr(r, field.name)
                if field.message_type is not None and field.label != field.LABEL_REPEATED:
                    if r.HasField(field.name):
                        getattr(details, field.name).CopyFrom(value)
                elif field.label == field.LABEL_REPEATED:
                    getattr(details, field.name).extend(value)
                else:
                    setattr(details, field.name, value)
        running = p["state"] == P.PIPELINE_RUNNING
        details.workers_requested = r.parallelism_spec.constant or 1
        details.workers_available = details.workers_requested if running else 0
        spec_repo = repo_pb(name, "spec")
        return pps_pb2.PipelineInfo(
            pipeline=pps_pb2.Pipeline(name=name, project=pfs_pb2.Project(name=PROJECT)),
            version=p["version"], stopped=p["stopped"], state=p["state"], reason=p["reason"],
            spec_commit=pfs_pb2.Commit(id=p["spec"], repo=spec_repo, branch=pfs_pb2.Branch(repo=spec_repo, name="master")),
            last_job_state=jobs[-1].state if jobs else J.JOB_STATE_UNKNOWN,
            parallelism=details.workers_requested, details=details,
        )

    # --- the RPCs dlptui makes ------------------------------------------------------------------

    def CreatePipeline(self, request, context):
        def create():
            req = pps_pb2.CreatePipelineRequest()
            req.CopyFrom(request)
            name = req.pipeline.name
            spec.check_secrets(req)
            old = self.pipelines.get(name)
            if old is not None and not req.update:
                raise Abort(grpc.StatusCode.ALREADY_EXISTS, f'pipeline "{PROJECT}/{name}" already exists')
            spec.check_request(req)
            spec.fill_defaults(req)
            spec.check_pipeline(req)
            spec.check_repos(req, self.pfs.repos, old is not None)
            now = time.time()
            if old is None:
                self.pfs.repos[name] = StandinRepo(name, f"Output repo for pipeline {PROJECT}/{name}.", now)
                p = {"created": now, "version": 0, "stopped": False, "salt": req.salt or uuid.uuid4().hex}
            else:
                p = old
                for job in self.jobs.values():
                    if job.pipeline == name:
                        self._kill(job, "all jobs killed because pipeline was updated")
                if req.reprocess:
                    p["salt"] = uuid.uuid4().hex
            p.update(request=req, version=p["version"] + 1, spec=uuid.uuid4().hex, state=P.PIPELINE_STARTING, reason="")
            self.pipelines[name] = p
            for leaf in spec.leaves(req.input):  # pachd gives an input branch that is not there an empty commit
                repo = self.pfs.repos[leaf.repo]
                if leaf.branch not in repo.branches:
                    empty = self.pfs.new_commit(repo, leaf.branch, AUTO)
                    empty.finished = empty.finishing = empty.started
            if not p["stopped"]:
                self._new_job(name, p["spec"])
            return empty_pb2.Empty()

        return self._run(context, create)

    def InspectPipeline(self, request, context):
        return self._run(context, lambda: (self._pipeline(request.pipeline.name), self._pipeline_info(request.pipeline.name))[1])

    def ListPipeline(self, request, context):
        yield from self._run(context, lambda: [self._pipeline_info(n) for n in sorted(self.pipelines)])

    def StopPipeline(self, request, context):
        def stop():  # pachd: a pipeline that is not there is no error (unless must_exist)
            name = request.pipeline.name
            if name in self.pipelines:
                self.pipelines[name]["stopped"] = True
            for job in self.jobs.values():
                if job.pipeline == name:
                    self._kill(job, "all jobs killed because pipeline was stopped")
            return empty_pb2.Empty()

        return self._run(context, stop)

    def StartPipeline(self, request, context):
        def start():
            p = self._pipeline(request.pipeline.name)
            if p["stopped"]:  # the output branch gets its provenance back: a new commit, a new job
                p["stopped"] = False
                self._new_job(request.pipeline.name, uuid.uuid4().hex)
            return empty_pb2.Empty()

        return self._run(context, start)

    def DeletePipeline(self, request, context):
        def delete():
            name = request.pipeline.name
            self._pipeline(name)
            for key in [k for k, j in self.jobs.items() if j.pipeline == name]:
                self._kill(self.jobs.pop(key), "the pipeline was deleted")
            del self.pipelines[name]
            if not request.keep_repo:
                self.pfs.repos.pop(name, None)
            return empty_pb2.Empty()

        return self._run(context, delete)

    def ListJob(self, request, context):
        def jobs():
            chosen = [j for j in self.jobs.values() if not request.pipeline.name or j.pipeline == request.pipeline.name]
            return [job_info(j, self.pipelines) for j in sorted(chosen, key=lambda j: j.created, reverse=True)]

        yield from self._run(context, jobs)

    def InspectJob(self, request, context):
        return self._run(context, lambda: job_info(self._job(request.job), self.pipelines))

    def ListDatum(self, request, context):
        def datums():
            job = self._job(request.job)
            out = []
            for did, d in sorted(job.datums.items()):
                data = [pfs_pb2.FileInfo(file=pfs_pb2.File(commit=pfs_pb2.Commit(id=c, repo=repo_pb(r)), path=path),
                                         file_type=pfs_pb2.FileType.FILE) for _, r, c, path in d["files"]]
                out.append(pps_pb2.DatumInfo(datum=pps_pb2.Datum(job=request.job, id=did),
                                             state=pps_pb2.DatumState.Value(d["state"]), data=data))
            return out

        yield from self._run(context, datums)

    def RestartDatum(self, request, context):
        def restart():
            job = self._job(request.job)
            filters = list(request.data_filters)
            current = job.datums.get(job.current or "")
            paths = {path for _, _, _, path in current["files"]} if current else set()
            if job.state == J.JOB_RUNNING and current and all(f in paths or f == job.current for f in filters):
                job.restart = True
                if job.process is not None and job.process.poll() is None:
                    job.process.kill()
                return empty_pb2.Empty()
            shown = "[" + " ".join(filters) + "]"
            raise _unknown(f"datum matching filter {shown} could not be found for job ID {job.id}")

        return self._run(context, restart)

    def GetLogs(self, request, context):
        def logs():
            if not request.job.id:
                raise _unknown("dlptui's stand-in serves job logs only")
            if not request.job.pipeline.name:
                raise _unknown("pipeline must be specified for the given job")
            job = self._job(request.job)
            p = self._pipeline(job.pipeline)
            if not self.loki:  # the logs are the worker pods' own: gone with them
                if p["state"] != P.PIPELINE_RUNNING:
                    rc = f"{PROJECT}-{job.pipeline.replace('_', '-').lower()}-v{p['version']}"
                    raise _unknown(f'no pods belonging to the rc "{rc}" were found')
                if job.version != p["version"]:
                    return []
            out = []
            for did, d in sorted(job.datums.items()):
                if request.datum.id and request.datum.id != did:
                    continue
                out += [pps_pb2.LogMessage(project_name=PROJECT, pipeline_name=job.pipeline, job_id=job.id, datum_id=did,
                                           user=user, message=line) for user, line in d["logs"]]
            return out

        yield from self._run(context, logs)
