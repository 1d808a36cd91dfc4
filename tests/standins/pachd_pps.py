"""The PPS half of the pachd stand-in (tests only): pipelines, jobs, datums and logs on the generated servicer.

It shares the PFS stand-in's state and lock. A pipeline's inputs are checked as pachd checks
them; its output repo is made with it. A background ticker gives each new set of finished input
heads a job that moves through pachd's states (JOB_CREATED, JOB_RUNNING, then JOB_SUCCESS or
JOB_FAILURE, JOB_KILLED when stopped). The job's datums come from the globs (cross and union
too); its "transform" is the identity (each datum's files are copied to the output commit, whose
direct provenance names the input commits) unless `transform.cmd[0]` is `false`, which fails
every datum that `FAIL_MARK` is not in. RestartDatum runs a finished job's failed datums again;
GetLogs returns one line per datum try.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import threading
import time
import uuid

import grpc
from google.protobuf import empty_pb2, json_format
from python_pachyderm.proto.v2.pfs import pfs_pb2
from python_pachyderm.proto.v2.pps import pps_pb2, pps_pb2_grpc

from tests.standins.pachd_state import StandinCommit, StandinRepo, timestamp

TICK_S = 0.05
FAIL_MARK = {"fixed": False}  # a test sets it True to let `false` datums pass on a restart


def _glob(files: dict[str, bytes], glob: str) -> dict[str, list[str]]:
    pattern = glob.strip("/")
    if not pattern:
        return {"/": sorted(files)} if files else {}
    parts, groups = pattern.split("/"), {}
    for path in sorted(files):
        segments = path.strip("/").split("/")
        if len(segments) >= len(parts) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segments, parts)):
            groups.setdefault("/" + "/".join(segments[: len(parts)]), []).append(path)
    return groups


class _Job:
    def __init__(self, pipeline: str, inputs: list[tuple[str, str]]) -> None:
        self.id = inputs[0][1] if len(inputs) == 1 else uuid.uuid4().hex  # pachd 2.x: the commit set's id
        self.pipeline = pipeline
        self.inputs = inputs
        self.state = pps_pb2.JobState.JOB_CREATED
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.reason = ""
        self.datums: dict[str, dict] = {}  # id -> {"state", "files": [(repo, commit, path)], "logs": [str]}
        self.output: str | None = None


class PpsStandinServicer(pps_pb2_grpc.APIServicer):
    def __init__(self, pfs) -> None:
        self.pfs = pfs
        self.lock = pfs.lock
        self.pipelines: dict[str, dict] = {}
        self.jobs: dict[str, _Job] = {}
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_forever, name="pps-standin", daemon=True)
        self._ticker.start()

    def reset(self) -> None:
        with self.lock:
            self.pipelines.clear()
            self.jobs.clear()
            FAIL_MARK["fixed"] = False

    def close(self) -> None:
        self._stop.set()

    def _run(self, context, fn):
        from tests.standins.pachd import _Abort

        try:
            with self.lock:
                return fn()
        except _Abort as e:
            context.abort(e.code, e.details)

    @staticmethod
    def _abort(code, details):
        from tests.standins.pachd import _Abort

        return _Abort(code, details)

    def _pipeline(self, name: str) -> dict:
        if name not in self.pipelines:
            raise self._abort(grpc.StatusCode.NOT_FOUND, f"pipeline {name} not found")
        return self.pipelines[name]

    def _job(self, job: pps_pb2.Job) -> _Job:
        found = self.jobs.get(f"{job.pipeline.name}/{job.id}")
        if found is None:
            raise self._abort(grpc.StatusCode.NOT_FOUND, f"job {job.pipeline.name}@{job.id} not found")
        return found

    # --- the ticker: jobs for new input heads, then their datums ---------------------------------

    def _tick_forever(self) -> None:
        while not self._stop.wait(TICK_S):
            with self.lock:
                try:
                    self._tick()
                except Exception:  # a deleted repo between two looks: the next tick sees it
                    pass

    def _leaves(self, message) -> list:
        if message.HasField("pfs"):
            return [message.pfs]
        return [leaf for kind in ("cross", "union") for part in getattr(message, kind) for leaf in self._leaves(part)]

    def _tick(self) -> None:
        for name, p in self.pipelines.items():
            if p["stopped"]:
                continue
            inputs = []
            for leaf in self._leaves(p["request"].input):
                repo = self.pfs.repos.get(leaf.repo)
                head = repo and repo.commits.get(repo.branches.get(leaf.branch or "master", ""))
                if head is None or head.finished is None:
                    break
                inputs.append((leaf.repo, head.id))
            else:
                if not any(j.pipeline == name and j.inputs == inputs for j in self.jobs.values()):
                    job = _Job(name, inputs)
                    self.jobs[f"{name}/{job.id}"] = job
        for job in list(self.jobs.values()):
            if job.state == pps_pb2.JobState.JOB_CREATED:
                job.state, job.started = pps_pb2.JobState.JOB_RUNNING, job.started or time.time()
            elif job.state == pps_pb2.JobState.JOB_RUNNING:
                self._run_job(job)

    def _datums(self, request, commits: dict[str, str]) -> list[list[tuple[str, str, str]]]:
        def expand(message):
            if message.HasField("pfs"):
                leaf = message.pfs
                c = self.pfs.repos[leaf.repo].commits[commits[leaf.repo]]
                return [[(leaf.repo, c.id, path) for path in group] for _, group in sorted(_glob(c.files, leaf.glob).items())]
            kind = "cross" if len(message.cross) else "union"
            lists = [expand(part) for part in getattr(message, kind)]
            if kind == "union":
                return [d for one in lists for d in one]
            return [sum(combo, []) for combo in itertools.product(*lists)]

        return expand(request.input)

    def _run_job(self, job: _Job) -> None:
        p = self.pipelines.get(job.pipeline)
        if p is None:
            return
        request = p["request"]
        if not job.datums:
            for files in self._datums(request, dict(job.inputs)):
                did = hashlib.sha256(repr(files).encode()).hexdigest()
                job.datums[did] = {"state": "UNKNOWN", "files": files, "logs": []}
        failing = list(request.transform.cmd[:1]) == ["false"] and not FAIL_MARK["fixed"]
        for did, d in job.datums.items():
            if d["state"] in ("UNKNOWN", "STARTING"):
                d["state"] = "FAILED" if failing else "SUCCESS"
                d["logs"].append(f"{'failed' if failing else 'copied'} {len(d['files'])} file(s)")
        if any(d["state"] == "FAILED" for d in job.datums.values()):
            job.state, job.finished = pps_pb2.JobState.JOB_FAILURE, time.time()
            job.reason = "datum failed"
            return
        out_repo = self.pfs.repos[job.pipeline]
        branch = request.output_branch or "master"
        parent = out_repo.branches.get(branch)
        files = {path: self.pfs.repos[r].commits[c].files[path] for d in job.datums.values() for r, c, path in d["files"]}
        now = time.time()
        commit = StandinCommit(id=job.id if job.id not in out_repo.commits else uuid.uuid4().hex, repo=job.pipeline,
                               branch=branch, parent=parent, description="", started=now, files=files, finished=now,
                               provenance=list(job.inputs))
        out_repo.commits[commit.id] = commit
        out_repo.branches[branch] = commit.id
        job.output = commit.id
        job.state, job.finished = pps_pb2.JobState.JOB_SUCCESS, now

    # --- messages -----------------------------------------------------------------------

    def _pipeline_info(self, name: str) -> pps_pb2.PipelineInfo:
        p = self.pipelines[name]
        r = p["request"]
        jobs = sorted((j for j in self.jobs.values() if j.pipeline == name), key=lambda j: j.created)
        return pps_pb2.PipelineInfo(
            pipeline=pps_pb2.Pipeline(name=name, project=pfs_pb2.Project(name="default")),
            version=1, stopped=p["stopped"],
            state=pps_pb2.PipelineState.PIPELINE_PAUSED if p["stopped"] else pps_pb2.PipelineState.PIPELINE_RUNNING,
            last_job_state=jobs[-1].state if jobs else pps_pb2.JobState.JOB_STATE_UNKNOWN,
            parallelism=r.parallelism_spec.constant or 1,
            details=pps_pb2.PipelineInfo.Details(
                transform=r.transform, parallelism_spec=r.parallelism_spec, created_at=timestamp(p["created"]),
                output_branch=r.output_branch or "master", input=r.input, description=r.description,
                datum_tries=r.datum_tries or 3,
            ),
        )

    def _job_info(self, job: _Job) -> pps_pb2.JobInfo:
        states = [d["state"] for d in job.datums.values()]
        repo = pfs_pb2.Repo(name=job.pipeline, type="user", project=pfs_pb2.Project(name="default"))
        out = pfs_pb2.Commit(id=job.output or job.id, repo=repo, branch=pfs_pb2.Branch(repo=repo, name="master"))
        return pps_pb2.JobInfo(
            job=pps_pb2.Job(pipeline=pps_pb2.Pipeline(name=job.pipeline, project=pfs_pb2.Project(name="default")), id=job.id),
            output_commit=out, state=job.state, reason=job.reason,
            data_total=len(states), data_processed=states.count("SUCCESS"), data_skipped=states.count("SKIPPED"),
            data_failed=states.count("FAILED"),
            created=timestamp(job.created), started=timestamp(job.started), finished=timestamp(job.finished),
        )

    # --- the RPCs dlptui makes ------------------------------------------------------------------

    def CreatePipeline(self, request, context):
        def create():
            name = request.pipeline.name
            if name in self.pipelines and not request.update:
                raise self._abort(grpc.StatusCode.ALREADY_EXISTS, f"pipeline {name} already exists")
            for leaf in self._leaves(request.input):
                if leaf.repo not in self.pfs.repos:
                    raise self._abort(grpc.StatusCode.NOT_FOUND, f"repo {leaf.repo} not found in project default")
            if name not in self.pfs.repos:
                self.pfs.repos[name] = StandinRepo(name, f"Output repo for pipeline {name}.", time.time())
            self.pipelines[name] = {"request": request, "created": time.time(), "stopped": False}
            return empty_pb2.Empty()

        return self._run(context, create)

    def InspectPipeline(self, request, context):
        return self._run(context, lambda: (self._pipeline(request.pipeline.name), self._pipeline_info(request.pipeline.name))[1])

    def ListPipeline(self, request, context):
        yield from self._run(context, lambda: [self._pipeline_info(n) for n in sorted(self.pipelines)])

    def StopPipeline(self, request, context):
        def stop():
            self._pipeline(request.pipeline.name)["stopped"] = True
            for job in self.jobs.values():
                if job.pipeline == request.pipeline.name and job.state in (pps_pb2.JobState.JOB_CREATED, pps_pb2.JobState.JOB_RUNNING):
                    job.state, job.finished, job.reason = pps_pb2.JobState.JOB_KILLED, time.time(), "pipeline stopped"
            return empty_pb2.Empty()

        return self._run(context, stop)

    def StartPipeline(self, request, context):
        def start():
            self._pipeline(request.pipeline.name)["stopped"] = False
            return empty_pb2.Empty()

        return self._run(context, start)

    def DeletePipeline(self, request, context):
        def delete():
            name = request.pipeline.name
            self._pipeline(name)
            del self.pipelines[name]
            for key in [k for k, j in self.jobs.items() if j.pipeline == name]:
                del self.jobs[key]
            if not request.keep_repo:
                self.pfs.repos.pop(name, None)
            return empty_pb2.Empty()

        return self._run(context, delete)

    def ListJob(self, request, context):
        def jobs():
            chosen = [j for j in self.jobs.values() if not request.pipeline.name or j.pipeline == request.pipeline.name]
            return [self._job_info(j) for j in sorted(chosen, key=lambda j: j.created, reverse=True)]

        yield from self._run(context, jobs)

    def InspectJob(self, request, context):
        return self._run(context, lambda: self._job_info(self._job(request.job)))

    def ListDatum(self, request, context):
        def datums():
            job = self._job(request.job)
            out = []
            for did, d in sorted(job.datums.items()):
                data = [pfs_pb2.FileInfo(file=pfs_pb2.File(commit=pfs_pb2.Commit(
                    id=c, repo=pfs_pb2.Repo(name=r, type="user", project=pfs_pb2.Project(name="default"))), path=path),
                    file_type=pfs_pb2.FileType.FILE) for r, c, path in d["files"]]
                out.append(pps_pb2.DatumInfo(datum=pps_pb2.Datum(job=request.job, id=did),
                                             state=pps_pb2.DatumState.Value(d["state"]), data=data))
            return out

        yield from self._run(context, datums)

    def RestartDatum(self, request, context):
        def restart():
            job = self._job(request.job)
            for d in job.datums.values():
                if d["state"] == "FAILED":
                    d["state"] = "UNKNOWN"
            job.state, job.finished, job.reason = pps_pb2.JobState.JOB_RUNNING, None, ""
            return empty_pb2.Empty()

        return self._run(context, restart)

    def GetLogs(self, request, context):
        def logs():
            job = self._job(request.job)
            out = []
            for did, d in sorted(job.datums.items()):
                if request.datum.id and request.datum.id != did:
                    continue
                out += [pps_pb2.LogMessage(pipeline_name=job.pipeline, job_id=job.id, datum_id=did, message=line)
                        for line in d["logs"]]
            return out

        yield from self._run(context, logs)


def spec_dict(request) -> dict:
    return json_format.MessageToDict(request, preserving_proto_field_name=True)
