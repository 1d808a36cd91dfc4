"""The jobs of the pachd stand-in (tests only): how a job moves, and its worker that really runs the transform.

As pachd 2.12 does (v2.7.8 alike), from src/server/worker/pipeline/transform (registry.go, pending_job.go),
src/internal/ppsutil (FinishJob) and src/server/pps/server (transaction_defer.go, api_server.go):
- a job is made with its commit set, at once: its id is the commit set's (the input commit that started it,
  or the spec commit of a created or updated pipeline), its output commit has that id, is opened then (AUTO) as
  the head of the output branch, and its direct provenance is the input commits and the pipeline's spec commit;
- JOB_CREATED, then JOB_STARTING (a worker took it) while its input commits are open; an input commit finished
  with an error makes it JOB_UNRUNNABLE; then JOB_RUNNING, then JOB_EGRESSING (a spec with egress), JOB_FINISHING
  (its output commit is finished) and JOB_SUCCESS once the output commit is FINISHED; a pipeline's jobs run one
  after another, and a crashing pipeline's jobs wait (no worker runs);
- a datum that succeeded in the base job (the newest earlier job whose output commit has no error) with the same
  inputs and salt is SKIPPED and its output kept; the others run, each up to `datum_tries` times; when any fails,
  the job is JOB_FAILURE with reason "datum ID failed" and its output commit is finished with that error, holding
  the outputs that were made (a partial tree): it is the branch's head;
- a killed job (the pipeline stopped or updated) finishes its output commit with the reason as its error;
- the worker logs "beginning to run user code" and "finished running user code after ..." (user=false) around
  the lines the code writes (user=true).
The transform runs for real on this machine, without a container (the image is not pulled): each datum's files
are written below a temporary `/pfs/<input name>/`, `/pfs` in the command and stdin is that folder, and what the
code writes below `/pfs/out` is the datum's output, as the local runner does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from python_pachyderm.proto.v2.pfs import pfs_pb2
from python_pachyderm.proto.v2.pps import pps_pb2

from tests.standins.pachd_pfs import repo_pb
from tests.standins.pachd_state import PROJECT, timestamp

J = pps_pb2.JobState
PFS = re.compile(r"(?<![\w./-])/pfs(?=/|$|[\s'\";:])")
DATUM_TIMEOUT_S = 60.0
UNFINISHED = (J.JOB_CREATED, J.JOB_STARTING, J.JOB_RUNNING, J.JOB_EGRESSING)


class Job:
    def __init__(self, pipeline: str, ident: str, version: int, inputs: list[tuple[str, str, str]], spec: str) -> None:
        self.id = ident
        self.pipeline = pipeline
        self.version = version  # the pipeline version (RC) whose workers run it
        self.inputs = inputs  # (input name, repo, commit id) of each pfs input
        self.spec = spec  # the spec commit in its provenance
        self.state = J.JOB_CREATED
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.reason = ""
        self.datums: dict[str, dict] = {}  # id -> state, files [(name, repo, commit, path)], hash, output, tries, logs
        self.worker: threading.Thread | None = None
        self.process: subprocess.Popen | None = None  # the datum running now
        self.current: str | None = None  # its id
        self.restart = False  # RestartDatum asked for the running datum again

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.id}"


def glob_groups(files: dict[str, bytes], glob: str) -> dict[str, list[str]]:
    pattern = glob.strip("/")
    if not pattern:
        return {"/": sorted(files)} if files else {}
    parts, groups = pattern.split("/"), {}
    for path in sorted(files):
        segments = path.strip("/").split("/")
        if len(segments) >= len(parts) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segments, parts)):
            groups.setdefault("/" + "/".join(segments[: len(parts)]), []).append(path)
    return groups


def datums_of(request, repos: dict, commits: dict[str, str]) -> list[list[tuple[str, str, str, str]]]:
    """The job's datums: the files (input name, repo, commit, path) of each, from the globs (cross and union)."""

    def expand(message):
        if message.HasField("pfs"):
            leaf = message.pfs
            c = repos[leaf.repo].commits[commits[leaf.name]]
            return [[(leaf.name, leaf.repo, c.id, path) for path in group] for _, group in sorted(glob_groups(c.files, leaf.glob).items())]
        kind = "cross" if len(message.cross) else "union"
        lists = [expand(part) for part in getattr(message, kind)]
        if kind == "union":
            return [d for one in lists for d in one]
        return [sum(combo, []) for combo in itertools.product(*lists)]

    return expand(request.input) if request.HasField("input") else []


def datum_id(files) -> str:
    """What the datum reads (input names and paths), as pachd's DatumID: the same files in two commits, one id."""
    return hashlib.sha256(repr(sorted((name, path) for name, _, _, path in files)).encode()).hexdigest()


def datum_hash(files, repos, salt: str) -> str:
    """The datum's id, its files' content and the pipeline's salt: what a skipped datum must match."""
    h = hashlib.sha256(salt.encode())
    for name, repo, commit, path in sorted(files):
        h.update(f"{name}:{path}:".encode() + hashlib.sha256(repos[repo].commits[commit].files[path]).digest())
    return h.hexdigest()


def run_transform(job: Job, request, did: str, contents: list[tuple[str, str, bytes]], on_start) -> tuple[bool, dict[str, bytes], list[str], str]:
    """Run the datum once: (succeeded, output files, lines the code wrote, the worker's line after it)."""
    folder = Path(tempfile.mkdtemp(prefix="pachd-standin-"))
    try:
        pfs = folder / "pfs"
        (pfs / "out").mkdir(parents=True)
        for name, path, content in contents:
            target = pfs / name / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        def local(text: str) -> str:  # "/pfs" at the start of a word: the datum's folder
            return PFS.sub(lambda m: str(pfs), text)

        cmd = [local(a) for a in request.transform.cmd]
        stdin = "".join(local(line) + "\n" for line in request.transform.stdin)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        env.update(dict(request.transform.env))
        env.update(PACH_JOB_ID=job.id, PACH_DATUM_ID=did, PPS_PIPELINE_NAME=job.pipeline)
        try:
            process = subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            return False, {}, [], f"errored running user code after 0s: {e.strerror or e}"
        start = time.monotonic()
        on_start(process)
        try:
            out, _ = process.communicate(stdin.encode() if stdin else None, timeout=DATUM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        lines = out.decode(errors="replace").splitlines()
        output = {"/" + p.relative_to(pfs / "out").as_posix(): p.read_bytes()
                  for p in sorted((pfs / "out").rglob("*")) if p.is_file()}
        took = f"{(time.monotonic() - start) * 1000:.3f}ms"
        if process.returncode == 0:
            return True, output, lines, f"finished running user code after {took}"
        return False, output, lines, f"errored running user code after {took}: exit status {process.returncode}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Worker(threading.Thread):
    """Runs one job's datums, taking the stand-in's lock only between them."""

    def __init__(self, pps, job: Job) -> None:
        super().__init__(name=f"pachd-standin-{job.key}", daemon=True)
        self.pps, self.job = pps, job

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # an input or output repo deleted under it: the job fails, as a worker's would
            with self.pps.lock:
                if self.job.state == J.JOB_RUNNING:
                    self.job.state, self.job.finished, self.job.reason = J.JOB_FAILURE, time.time(), f"worker error: {e!r}"

    def _run(self) -> None:
        pps, job = self.pps, self.job
        while True:
            with pps.lock:
                if job.state != J.JOB_RUNNING:
                    return
                pending = [d for d, v in sorted(job.datums.items()) if v["state"] in ("UNKNOWN", "STARTING")]
                if not pending:
                    pps.end_job(job)
                    return
                did = pending[0]
                datum = job.datums[did]
                datum["state"], job.current, job.restart = "STARTING", did, False
                request = pps.pipelines[job.pipeline]["request"]
                contents = [(name, path, pps.pfs.repos[repo].commits[commit].files[path])
                            for name, repo, commit, path in datum["files"]]
            ok, output, lines, after = run_transform(job, request, did, contents, lambda p: setattr(job, "process", p))
            with pps.lock:
                job.process, job.current = None, None
                if job.state != J.JOB_RUNNING:
                    return
                datum["logs"].append((False, "beginning to run user code"))
                datum["logs"] += [(True, line) for line in lines]
                datum["logs"].append((False, after))
                if job.restart:  # RestartDatum: this try does not count
                    datum["state"] = "UNKNOWN"
                    continue
                datum["tries"] += 1
                if ok:
                    datum["state"], datum["output"] = "SUCCESS", output
                elif datum["tries"] >= (request.datum_tries or 3):
                    datum["state"] = "FAILED"
                else:
                    datum["state"] = "UNKNOWN"


def job_info(job: Job, pipelines: dict) -> pps_pb2.JobInfo:
    states = [d["state"] for d in job.datums.values()]
    p = pipelines.get(job.pipeline)
    branch = p["request"].output_branch if p else "master"
    repo = repo_pb(job.pipeline)
    return pps_pb2.JobInfo(
        job=pps_pb2.Job(pipeline=pps_pb2.Pipeline(name=job.pipeline, project=pfs_pb2.Project(name=PROJECT)), id=job.id),
        pipeline_version=job.version,
        output_commit=pfs_pb2.Commit(id=job.id, repo=repo, branch=pfs_pb2.Branch(repo=repo, name=branch)),
        state=job.state, reason=job.reason,
        data_total=len(states), data_processed=states.count("SUCCESS"), data_skipped=states.count("SKIPPED"),
        data_failed=states.count("FAILED"),
        created=timestamp(job.created), started=timestamp(job.started), finished=timestamp(job.finished),
    )
