"""One pipeline's jobs, run in a thread of the home's runner process (`pipeline_runner.py`).

Each new set of input commits is a job. A job's datums come from each input's glob (cross and union combine
them); each datum's code runs as a child process, `parallelism` at a time, with up to `datum_tries` tries:

- its inputs are copied to `<datum>/pfs/<input name>/...` and it writes to `<datum>/pfs/out`;
  a leading `/pfs` in `cmd` and `stdin` is rewritten to `<datum>/pfs`, and `PFS` names that
  folder, so a spec written for pachd (its code taking its paths from its command line or
  stdin) runs unchanged. `PACH_JOB_ID`, `PACH_DATUM_ID`, `PPS_PIPELINE_NAME` and, for each
  input, its name (the path of its datum) and `<name>_COMMIT` (the commit id) are set, as pachd
  does; `DLPTUI_HOME` (with `DLPTUI_PROFILE=local`) says where the platform is, no secret.
- the code carries the platform's mark (DLPTUI_PROCESS: the runner's token, DLPTUI_PART=pipelines,
  DLPTUI_PIPELINE: its pipeline), leads a process group of its own and gets SIGKILL when its runner dies
  (prctl's parent-death signal; the runner's guard ends the rest of the group); a stop, a timeout or the
  runner's own stop kills the whole group.
- `datum_timeout`: a try that runs longer is killed (its group) and fails with a sentence in its log and
  reason; `job_timeout`: the home runner cancels a job that runs longer (its datums are killed, the job ends
  killed with a sentence). `accept_return_code`, `salt` and `reprocess_spec` are honoured as pachd does.
- a datum is `running` from its start (written with the next batch of ended ones), then
  `success` or `failed`.
- code that changes its inputs, or leaves a link in its output, is refused (its datum fails).
- a datum whose input files and transform are those of a datum of an earlier successful job
  is skipped, and its output reused (not with reprocess_spec "every_job"); its reason says so.
- a job says what it did in its `reason` when it succeeds too (`job_summary`): how many of its
  datums were skipped and why, and what its code said in a line of its log that starts with
  `summary: ` (the shipped split: how many images it split and how many files it skipped, and why).
  A datum that succeeded keeps that line as its reason.

The outputs of all datums become one commit of the output repo (`commit_tree`: one SQLite
transaction, whole or absent after `kill -9`) whose provenance names the input commits. A job that fails, or is
killed with a reason (its pipeline stopped, its job_timeout), ends as on pachd: its output commit is finished with
the job's reason as its error, holding what its datums that succeeded wrote, as the branch's head but never its
data head (`data_rules`), and the job has no `output_commit`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from dlptui.errors import NotFound, PlatformError
from dlptui.platform.local import processes
from dlptui.platform.local.datastore import LocalDataStore
from dlptui.platform.local.pipeline_datums import (duration, glob_datums, job_summary, kill_group, remove_later, rewrite,
                                                   snapshot, summary_line)
from dlptui.platform.local.pipeline_db import JOB_COLUMNS, open_pipeline_db
from dlptui.platform.model import CommitRef, JobState

FLUSH_S = 0.2  # how often the datums that ended are written (the live counts move at this pace)
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "XDG_CACHE_HOME", "TORCH_HOME",
              "DLPTUI_TRIAL_DIR", "DLPTUI_SERVING_DIR", "DLPTUI_INFRA_DIR", "DLPTUI_PIPELINES_DIR")
PIPELINE_VAR = "DLPTUI_PIPELINE"  # in a datum's environment (and its descendants'): the pipeline it belongs to


class Runner:
    """The jobs of one pipeline. `cancel(reason)` kills its running datums' groups: with a reason (the pipeline
    was stopped, its job_timeout passed) the job ends killed with it; with None (the runner itself stops) the
    job stays running in the records, and the next runner goes on with it."""

    def __init__(self, home: Path, name: str, db=None, data=None, token: str | None = None, wake=None) -> None:
        self.home = home
        self.name = name
        self.root = home / "pipelines"
        self.db = db if db is not None else open_pipeline_db(self.root)
        self.data = data if data is not None else LocalDataStore(SimpleNamespace(home=home))
        self.token = token or os.environ.get(processes.TOKEN_VAR) or ""
        self.wake = wake  # wakes the home runner: a job's thread ended, or its job_timeout is set
        self.stopping = threading.Event()
        self.reason: str | None = None  # why it was cancelled; None: not, or by the runner's own stop
        self.deadline: float | None = None  # when the running job's job_timeout passes (epoch seconds)
        self.timeout = ""  # the sentence a job_timeout ends it with
        self.children: set[subprocess.Popen] = set()
        self.ended: list[tuple] = []
        self.started: list[tuple[str, str]] = []  # (job, datum) begun since the last flush: shown running
        self.commits: dict[str, str] = {}  # input name -> the commit id the running job reads
        self.staged: list = []
        # reentrant: the home runner's SIGTERM handler cancels in the main thread, which may hold it already
        self.lock = threading.RLock()

    def cancel(self, reason: str | None) -> None:
        if reason is not None and self.reason is None:
            self.reason = reason
        self.stopping.set()  # before the lock: a child started after this look sees it (try_datum)
        with self.lock:
            for child in list(self.children):
                kill_group(child)

    def set_detail(self, detail: str) -> None:
        with self.db.read() as db:
            row = db.execute("SELECT detail FROM pipelines WHERE name = ?", (self.name,)).fetchone()
        if row is not None and row["detail"] != detail:  # no write (and no wake of the runner) for no change
            with self.db.write() as db:
                db.execute("UPDATE pipelines SET detail = ? WHERE name = ?", (detail, self.name))

    def next_job(self):
        """The pipeline's oldest job to run (created, or running when a runner stopped in it), or None."""
        with self.db.read() as db:
            return db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE pipeline = ? AND state IN ('created', 'running') "
                              "ORDER BY seq LIMIT 1", (self.name,)).fetchone()

    def run(self, spec, row) -> None:
        """The thread of one job: `run_job`, and a sentence on the job for what it did not expect."""
        try:
            self.run_job(spec, row)
        except Exception as e:  # a bug or a full disk: the job fails with its sentence, the runner goes on
            try:
                self.fail(spec, row["id"], json.loads(row["inputs"]),
                          f"The runner could not run the job ({type(e).__name__}: {e}).")
            except Exception:
                pass
        finally:
            if self.wake is not None:
                self.wake()

    def make_job(self, spec) -> None:
        """A job for the input branches' heads, unless one exists for them."""
        inputs = []
        for leaf in spec.input.leaves():
            try:
                head = self.data.inspect_commit(leaf.repo, leaf.branch)
            except NotFound:
                try:
                    self.data.inspect_repo(leaf.repo)
                except NotFound:
                    self.set_detail(f"Input repo {leaf.repo!r} is gone; create it again or delete the pipeline.")
                return  # a branch without a commit yet: no job until it has one
            inputs.append(CommitRef.of(leaf.repo, head.id))
        self.set_detail("")
        key = json.dumps(inputs)
        with self.db.read() as db:  # most looks find the job made already: no write for them
            if db.execute("SELECT 1 FROM jobs WHERE pipeline = ? AND inputs = ?", (self.name, key)).fetchone():
                return
        with self.db.write() as db:
            if db.execute("SELECT 1 FROM jobs WHERE pipeline = ? AND inputs = ?", (self.name, key)).fetchone():
                return
            db.execute("INSERT INTO jobs (id, pipeline, state, inputs, created) VALUES (?, ?, 'created', ?, ?)",
                       (uuid.uuid4().hex, self.name, key, time.time()))

    # --- a job ---------------------------------------------------------------------------

    def datums(self, spec, inputs: list[str]) -> list[list[tuple]]:
        """Each datum as [(input, match, files)], from the globs over the input commits."""
        commits = dict(zip([leaf.name for leaf in spec.input.leaves()], inputs))

        def expand(tree) -> list[list[tuple]]:
            if tree.kind == "pfs":
                leaf = tree.pfs
                ref = CommitRef(commits[leaf.name])
                files = self.data.list_files(ref.repo, ref.ref, "/", recursive=True)
                return [[(leaf, match, group)] for match, group in sorted(glob_datums(files, leaf.glob).items())]
            lists = [expand(part) for part in tree.parts]
            if tree.kind == "union":
                return [d for one in lists for d in one]
            return [sum(combo, []) for combo in itertools.product(*lists)]

        return expand(spec.input)

    @staticmethod
    def datum_id(spec, datum: list[tuple]) -> str:
        h = hashlib.sha256()
        transform = [spec.cmd, spec.stdin, sorted(spec.env.items()), spec.image]
        if spec.salt:  # a new salt: every datum is new (as pachd's salt)
            transform.append(spec.salt)
        h.update(json.dumps(transform).encode())
        for leaf, match, files in datum:
            h.update(json.dumps([leaf.name, match, [(f.path, f.hash) for f in files]]).encode())
        return h.hexdigest()

    def update_counts(self, job_id: str) -> None:
        with self.db.write() as db:
            self._count(db, job_id)

    @staticmethod
    def _count(db, job_id: str) -> None:
        counts = dict(db.execute("SELECT state, count(*) FROM datums WHERE job_id = ? GROUP BY state", (job_id,)).fetchall())
        db.execute("UPDATE jobs SET processed = ?, skipped = ?, failed = ? WHERE id = ?",
                   (counts.get("success", 0), counts.get("skipped", 0), counts.get("failed", 0), job_id))

    def finish(self, job_id: str, state: JobState, reason: str = "", output: str | None = None) -> None:
        with self.db.write() as db:
            db.execute("UPDATE jobs SET state = ?, finished = ?, reason = ?, output_commit = coalesce(?, output_commit) "
                       "WHERE id = ?", (state.value, time.time(), reason, output, job_id))

    def fail(self, spec, job_id: str, inputs: list[str], reason: str, state: JobState = JobState.FAILURE) -> None:
        """The job ends `state` (failed, or killed with a reason) after its errored output commit: the outputs of
        its datums that succeeded, finished with `reason` as its error, as pachd finishes a failed or killed
        job's output commit. The commit comes first, so a stop that waits for the job to end finds it made."""
        try:
            self.data.commit_tree(spec.name, spec.output_branch, self.partial_tree(job_id),
                                  message=f"Output of job {job_id} of pipeline {spec.name}.",
                                  provenance=tuple(inputs), error=reason or f"The job ended {state.value}.")
        except PlatformError:  # the output repo is gone (being deleted) or the disk is full: the job's reason says why
            pass
        self.finish(job_id, state, reason)

    def partial_tree(self, job_id: str) -> dict[str, tuple[str, int]]:
        """What the job's datums that succeeded (or were skipped) wrote and is stored, the first datum by id
        keeping a path that two wrote."""
        tree: dict[str, tuple[str, int]] = {}
        with self.db.read() as db:
            rows = db.execute("SELECT output FROM datums WHERE job_id = ? AND state IN ('success', 'skipped') "
                              "AND output IS NOT NULL ORDER BY id", (job_id,)).fetchall()
        for r in rows:
            for path, (digest, size) in json.loads(r["output"]).items():
                if path not in tree and self.data.blobs.has(digest, size):
                    tree[path] = (digest, size)
        return tree

    def run_job(self, spec, row) -> None:
        job_id = row["id"]
        inputs = json.loads(row["inputs"])
        self.commits = {leaf.name: CommitRef(ref).ref for leaf, ref in zip(spec.input.leaves(), inputs)}
        with self.db.write() as db:
            db.execute("UPDATE jobs SET state = 'running', started = coalesce(started, ?) WHERE id = ?", (time.time(), job_id))
            started = db.execute("SELECT started FROM jobs WHERE id = ?", (job_id,)).fetchone()["started"]
        if spec.job_timeout:  # from the job's first start: a runner that came back does not start the clock again
            self.timeout = f"The job ran past its job_timeout ({duration(spec.job_timeout)}): its datums were killed."
            self.deadline = started + spec.job_timeout
            if self.wake is not None:
                self.wake()  # the home runner sleeps until then at most
        try:
            datums = self.datums(spec, inputs)
        except PlatformError as e:
            self.fail(spec, job_id, inputs, str(e))
            return
        by_id = {self.datum_id(spec, d): d for d in datums}
        with self.db.write() as db:
            known = {r["id"]: r for r in db.execute("SELECT id, state, output FROM datums WHERE job_id = ?", (job_id,))}
            for did, r in known.items():  # killed before its outputs were published: run it again
                if r["state"] == "success" and not all(self.data.blobs.has(h, n) for h, n in json.loads(r["output"] or "{}").values()):
                    db.execute("UPDATE datums SET state = 'pending', output = NULL WHERE job_id = ? AND id = ?", (job_id, did))
            for did, datum in by_id.items():
                if did in known:
                    continue
                earlier = None if spec.reprocess_every_job else db.execute(
                    "SELECT d.output, j.id AS job FROM datums d JOIN jobs j ON j.id = d.job_id WHERE j.pipeline = ? "
                    "AND d.id = ? AND j.state = 'success' AND d.state IN ('success', 'skipped') AND d.output IS NOT NULL "
                    "ORDER BY j.seq DESC LIMIT 1", (self.name, did)).fetchone()
                files = json.dumps([f"{leaf.repo}:{f.path}" for leaf, _, group in datum for f in group])
                why = (f"Skipped: its input files are the same as in job {earlier['job'][:12]}, which processed them; "
                       "that output is reused and its code did not run.") if earlier else ""
                db.execute("INSERT INTO datums (job_id, id, state, files, output, reason) VALUES (?, ?, ?, ?, ?, ?)",
                           (job_id, did, "skipped" if earlier else "pending", files, earlier["output"] if earlier else None,
                            why))
            db.execute("UPDATE jobs SET total = ? WHERE id = ?", (len(by_id), job_id))
            todo = [r["id"] for r in db.execute("SELECT id FROM datums WHERE job_id = ? AND state IN ('pending', 'running')",
                                                (job_id,))]
        self.update_counts(job_id)
        work = self.root / self.name / "work" / job_id
        shutil.rmtree(work, ignore_errors=True)  # what a runner killed in this job left
        logs = self.root / self.name / "logs" / job_id
        logs.mkdir(parents=True, exist_ok=True)
        self.staged, self.ended, self.started = [], [], []
        self.pack = self.data.blobs.new_pack()  # the job's small outputs go into one pack
        done = threading.Event()
        flusher = threading.Thread(target=self.flush_every, args=(FLUSH_S, done), name="flush", daemon=True)
        flusher.start()
        try:
            with ThreadPoolExecutor(max_workers=spec.workers) as pool:
                for did in todo:
                    pool.submit(self.run_datum, spec, job_id, did, by_id[did], work, logs)
            self.data.publish(self.staged)  # the outputs' blobs, made durable in one go (not one sync per datum)
        finally:
            done.set()
            flusher.join()
            self.data.blobs.discard(self.staged, self.pack)
        if not self.stopping.is_set():
            self.flush()  # after the blobs are published: a datum recorded as done has its output stored
        remove_later(work)  # thousands of datum folders: removed beside the commit, not before it
        if self.stopping.is_set():
            if self.reason is not None:  # stopped or timed out; with no reason the runner stops and the job waits
                self.fail(spec, job_id, inputs, self.reason, JobState.KILLED)
            return
        self.update_counts(job_id)
        with self.db.read() as db:
            rows = db.execute("SELECT id, state, output, reason FROM datums WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        failed = [r for r in rows if r["state"] not in ("success", "skipped")]
        if failed:
            first = failed[0]
            self.fail(spec, job_id, inputs,
                      f"{len(failed)} of {len(rows)} datums failed ({', '.join(r['id'][:12] for r in failed[:5])}"
                      f"{', ...' if len(failed) > 5 else ''}); the first: {first['reason']}")
            return
        tree: dict[str, tuple[str, int]] = {}
        owner: dict[str, str] = {}
        for r in rows:
            for path, (digest, size) in json.loads(r["output"] or "{}").items():
                if path in tree and tree[path] != (digest, size):
                    self.fail(spec, job_id, inputs, f"Datums {owner[path][:12]} and {r['id'][:12]} both wrote {path} "
                              "with different content; write each datum's output to its own path.")
                    return
                tree[path], owner[path] = (digest, size), r["id"]
        try:
            commit = self.data.commit_tree(spec.name, spec.output_branch, tree,
                                           message=f"Output of job {job_id} of pipeline {spec.name}.",
                                           provenance=tuple(inputs))
        except PlatformError as e:
            self.fail(spec, job_id, inputs, str(e))
            return
        self.finish(job_id, JobState.SUCCESS, job_summary(rows), output=CommitRef.of(spec.name, commit.id))

    # --- a datum -------------------------------------------------------------------------

    def run_datum(self, spec, job_id: str, did: str, datum: list[tuple], work: Path, logs: Path) -> None:
        if self.stopping.is_set():
            return
        reason, output, tries = "", None, 0
        with self.lock:
            self.started.append((job_id, did))
        try:
            with open(logs / f"{did}.log", "ab") as log:
                for tries in range(1, spec.datum_tries + 1):
                    if self.stopping.is_set():
                        return
                    if tries > 1:
                        shutil.rmtree(work / did[:16], ignore_errors=True)  # what the failed try left
                    reason, output = self.try_datum(spec, job_id, did, datum, work / did[:16], log)
                    if not reason:
                        break
                    log.write(f"try {tries} of {spec.datum_tries} failed: {reason}\n".encode())
                    log.flush()
                    if reason.startswith("cmd "):  # not found: no try will find it
                        break
        except Exception as e:  # a bug or a full disk: the datum fails with its sentence, the runner goes on
            reason = f"The runner could not run the datum ({type(e).__name__}: {e})."
        if self.stopping.is_set():
            return
        note = reason or summary_line(logs / f"{did}.log")  # a datum that succeeded: the summary its code wrote
        with self.lock:  # written by the flusher, many datums a transaction (each one is synced to disk)
            self.ended.append(("failed" if reason else "success", tries, note,
                               json.dumps(output) if output is not None else None, job_id, did))

    def flush(self) -> None:
        """Write the datums that ended since the last flush, and the job's counts, in one transaction."""
        with self.lock:
            ended, self.ended = self.ended, []
            started, self.started = self.started, []
        if not ended and not started:
            return
        with self.db.write() as db:
            db.executemany("UPDATE datums SET state = 'running' WHERE job_id = ? AND id = ? AND state = 'pending'", started)
            db.executemany("UPDATE datums SET state = ?, tries = ?, reason = ?, output = ? WHERE job_id = ? AND id = ?", ended)
            for job_id in {row[4] for row in ended}:  # counted from the datums, never incremented: a count stays true
                self._count(db, job_id)

    def flush_every(self, seconds: float, done: threading.Event) -> None:
        while not done.wait(seconds):
            self.flush()

    def try_datum(self, spec, job_id, did, datum, folder: Path, log) -> tuple[str, dict | None]:
        pfs = folder / "pfs"
        out = pfs / "out"
        out.mkdir(parents=True)
        (folder / "work").mkdir()
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", os.defpath)
        for leaf, match, files in datum:
            base = pfs / leaf.name
            if base.parent != pfs or leaf.name in ("", ".", "..", "out"):  # pipeline_spec refuses such names first
                return f"The input name {leaf.name!r} would leave the datum's /pfs folder; refusing.", None
            for f in files:
                target = base / f.path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.data.blobs.copy_to(f.hash, target, f"{leaf.repo}:{f.path}")
            env[leaf.name] = str(base / match.lstrip("/")) if match != "/" else str(base)
            env[f"{leaf.name}_COMMIT"] = self.commits.get(leaf.name, "")
        before = snapshot(pfs, skip=out)
        env.update(spec.env)
        env.update(PFS=str(pfs), PACH_JOB_ID=job_id, PACH_DATUM_ID=did, PPS_PIPELINE_NAME=spec.name, PACH_OUTPUT_COMMIT_ID="")
        # where the platform is, as pachd tells its workers its address: code that calls dlptui (a retrain on
        # commit) reaches this home on the local profile; no secret of the console's is passed. Then the
        # platform's mark, after the spec's env so no spec can take it off: what is left of a datum after its
        # runner died is found by it, and ended (the next runner, `pipeline stop`, `dlptui stop`).
        env.update({"DLPTUI_HOME": str(self.home), "DLPTUI_PROFILE": "local", processes.TOKEN_VAR: self.token,
                    processes.PART_VAR: "pipelines", processes.HOME_VAR: processes.home_mark(self.home),
                    PIPELINE_VAR: self.name})
        cmd = [rewrite(arg, pfs) for arg in spec.cmd]
        stdin = "".join(rewrite(line, pfs) + "\n" for line in spec.stdin).encode()
        # its own process group (a kill takes what it started), and SIGKILL when this thread's process dies: set by
        # setpriv before it execs the code where it can (fast), else by a preexec_fn
        prefix = processes.parent_death_prefix()
        try:
            if prefix:
                _check_cmd(cmd[0], env["PATH"], folder / "work")  # setpriv would say it; the runner's sentence is clearer
            child = subprocess.Popen(prefix + cmd, cwd=folder / "work", env=env,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=None if prefix else processes.dying_with_parent())
        except FileNotFoundError:
            image = f" (the image {spec.image!r} is not used locally)" if spec.image else ""
            return (f"cmd {spec.cmd[0]!r} was not found on this machine{image}; install it or change transform.cmd.", None)
        except PermissionError:
            return f"cmd {spec.cmd[0]!r} cannot be run (permission denied); check transform.cmd.", None
        with self.lock:
            self.children.add(child)
            stopped = self.stopping.is_set()
        if stopped:  # the stop came while it was starting, after cancel killed the children it saw
            kill_group(child)
        timed_out = False
        try:
            try:
                child.communicate(stdin, timeout=spec.datum_timeout) if stdin else child.wait(timeout=spec.datum_timeout)
            except BrokenPipeError:
                child.wait(timeout=spec.datum_timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                with self.lock:
                    kill_group(child)
                if child.stdin is not None:
                    try:
                        child.stdin.close()
                    except OSError:
                        pass
                child.wait()
        finally:
            with self.lock:
                self.children.discard(child)
        if timed_out:
            reason = (f"The datum ran past its datum_timeout ({duration(spec.datum_timeout)}): its code (pid {child.pid}) "
                      "and every process it started were killed.")
            log.write(f"dlptui: {reason}\n".encode())
            log.flush()
            return reason, None
        if child.returncode != 0 and child.returncode not in spec.accept_return_code:
            return f"The code exited with status {child.returncode}; see `dlptui job logs {job_id} --datum {did[:12]}`.", None
        if snapshot(pfs, skip=out) != before:
            return ("The code wrote outside its output folder (into /pfs but not /pfs/out), which is refused; "
                    "write only below /pfs/out."), None
        files: dict[str, Path] = {}
        for dirpath, dirnames, filenames in os.walk(out):
            for n in dirnames + filenames:
                p = Path(dirpath) / n
                if p.is_symlink():
                    return (f"The code left a link {p.relative_to(out)} in /pfs/out, which could point outside it; "
                            "write files, not links."), None
            for n in filenames:
                p = Path(dirpath) / n
                files["/" + p.relative_to(out).as_posix()] = p
        staged = dict(zip(files, self.data.blobs.stage_many(list(files.values()), self.pack)))
        with self.lock:
            self.staged.extend(staged.values())  # published once, when the datums of the job have run
        return "", {path: [s.hash, s.size] for path, s in staged.items()}


def _check_cmd(name: str, path: str, cwd: Path) -> None:
    """FileNotFoundError or PermissionError as Popen would raise them for `name`, run from `cwd` with PATH `path`."""
    if "/" in name:
        target = cwd / name
        if not target.exists():
            raise FileNotFoundError(name)
        if target.is_dir() or not os.access(target, os.X_OK):
            raise PermissionError(name)
        return
    if shutil.which(name, path=path) is None:
        for folder in path.split(os.pathsep):
            candidate = Path(folder or ".") / name
            if candidate.is_file():
                raise PermissionError(name)  # there, but not executable
        raise FileNotFoundError(name)
