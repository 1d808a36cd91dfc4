"""The runner of one local pipeline: `python -m dlptui.platform.local.pipeline_runner HOME NAME`.

Started detached by `LocalPipelines` (its own session, recorded with pid and start time). It
watches the heads of the pipeline's input branches; each new set of input commits is a job.
A job's datums come from each input's glob (cross and union combine them); each datum's code
runs as a child process, `parallelism` at a time, with up to `datum_tries` tries:

- its inputs are copied to `<datum>/pfs/<input name>/...` and it writes to `<datum>/pfs/out`;
  a leading `/pfs` in `cmd` and `stdin` is rewritten to `<datum>/pfs`, and `PFS` names that
  folder, so a spec written for pachd (its code taking its paths from its command line or
  stdin) runs unchanged. `PACH_JOB_ID`, `PACH_DATUM_ID`, `PPS_PIPELINE_NAME` and, for each
  input, its name (the path of its datum) and `<name>_COMMIT` (the commit id) are set, as pachd
  does; `DLPTUI_HOME` (with `DLPTUI_PROFILE=local`) says where the platform is, no secret.
- a datum is `running` from its start (written with the next batch of ended ones), then
  `success` or `failed`.
- code that changes its inputs, or leaves a link in its output, is refused (its datum fails).
- a datum whose input files and transform are those of a datum of an earlier successful job
  is skipped, and its output reused.

The outputs of all datums become one commit of the output repo (`commit_tree`: one SQLite
transaction, whole or absent after `kill -9`) whose provenance names the input commits.
SIGTERM (stop, delete) kills the job's children (one that was starting at that moment too) and marks the job killed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from dlptui.errors import NotFound, PlatformError
from dlptui.platform import pipeline_spec
from dlptui.platform.local.datastore import LocalDataStore
from dlptui.platform.local.pipeline_db import JOB_COLUMNS, open_pipeline_db
from dlptui.platform.model import JobState

POLL_S = 0.1
FLUSH_S = 0.2  # how often the datums that ended are written (the live counts move at this pace)
PFS = re.compile(r"(?<![\w./-])/pfs(?=/|$|[\s'\";:])")
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "XDG_CACHE_HOME", "TORCH_HOME",
              "DLPTUI_TRIAL_DIR", "DLPTUI_SERVING_DIR", "DLPTUI_INFRA_DIR", "DLPTUI_PIPELINES_DIR")


def rewrite(text: str, pfs: Path) -> str:
    """`/pfs/...` at the start of a word becomes `<pfs>/...` (the datum's own folder)."""
    return PFS.sub(lambda m: str(pfs), text)


def glob_datums(files: list, glob: str) -> dict[str, list]:
    """Pachyderm's glob over a commit's files: each match (a file or a folder) -> the files it holds, by path."""
    pattern = glob.strip("/")
    groups: dict[str, list] = {}
    if not pattern:
        return {"/": list(files)} if files else {}
    if "**" in pattern:
        rx = re.compile("^/" + ".*".join(fnmatch.translate(p)[4:-3] for p in pattern.split("**")) + "$")
        for f in files:
            if rx.match(f.path):
                groups.setdefault(f.path, []).append(f)
        return groups
    parts = pattern.split("/")
    for f in files:
        segments = f.path.strip("/").split("/")
        if len(segments) >= len(parts) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segments, parts)):
            groups.setdefault("/" + "/".join(segments[: len(parts)]), []).append(f)
    return groups


class Runner:
    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        self.name = name
        self.root = home / "pipelines"
        self.db = open_pipeline_db(self.root)
        self.data = LocalDataStore(SimpleNamespace(home=home))
        self.stopping = threading.Event()
        self.children: set[subprocess.Popen] = set()
        self.ended: list[tuple] = []
        self.started: list[tuple[str, str]] = []  # (job, datum) begun since the last flush: shown running
        self.commits: dict[str, str] = {}  # input name -> the commit id the running job reads
        self.staged: list = []
        # reentrant: SIGTERM's handler (on_term) takes it in the main thread, which may hold it already (in flush)
        self.lock = threading.RLock()

    # --- the loop ---------------------------------------------------------------------

    def on_term(self, signum, frame) -> None:
        self.stopping.set()  # before the lock: a child started after this look sees it (try_datum)
        with self.lock:
            for child in list(self.children):
                try:
                    child.kill()
                except OSError:
                    pass

    def spec(self):
        with self.db.read() as db:
            row = db.execute("SELECT spec, state FROM pipelines WHERE name = ?", (self.name,)).fetchone()
        if row is None or row["state"] != "running":
            return None
        return pipeline_spec.parse(json.loads(row["spec"]))

    def loop(self) -> None:
        for trash in (self.root / self.name / "work").glob(".trash-*"):  # left by a runner that exited meanwhile
            shutil.rmtree(trash, ignore_errors=True)
        while not self.stopping.is_set():
            if not (self.root / "meta.db").exists():  # the home was removed under it
                return
            spec = self.spec()
            if spec is None:
                return
            self.make_job(spec)
            with self.db.read() as db:
                row = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE pipeline = ? AND state IN ('created', 'running') "
                                 "ORDER BY seq LIMIT 1", (self.name,)).fetchone()
            if row is None:
                self.stopping.wait(POLL_S)
                continue
            self.run_job(spec, row)

    def set_detail(self, detail: str) -> None:
        with self.db.write() as db:
            db.execute("UPDATE pipelines SET detail = ? WHERE name = ? AND detail != ?", (detail, self.name, detail))

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
            inputs.append(f"{leaf.repo}@{head.id}")
        self.set_detail("")
        key = json.dumps(inputs)
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
                repo, _, commit = commits[leaf.name].partition("@")
                files = self.data.list_files(repo, commit, "/", recursive=True)
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

    def run_job(self, spec, row) -> None:
        job_id = row["id"]
        inputs = json.loads(row["inputs"])
        self.commits = {leaf.name: ref.partition("@")[2] for leaf, ref in zip(spec.input.leaves(), inputs)}
        with self.db.write() as db:
            db.execute("UPDATE jobs SET state = 'running', started = coalesce(started, ?) WHERE id = ?", (time.time(), job_id))
        try:
            datums = self.datums(spec, inputs)
        except PlatformError as e:
            self.finish(job_id, JobState.FAILURE, str(e))
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
                earlier = db.execute(
                    "SELECT d.output FROM datums d JOIN jobs j ON j.id = d.job_id WHERE j.pipeline = ? AND d.id = ? "
                    "AND j.state = 'success' AND d.state IN ('success', 'skipped') AND d.output IS NOT NULL "
                    "ORDER BY j.seq DESC LIMIT 1", (self.name, did)).fetchone()
                files = json.dumps([f"{leaf.repo}:{f.path}" for leaf, _, group in datum for f in group])
                db.execute("INSERT INTO datums (job_id, id, state, files, output) VALUES (?, ?, ?, ?, ?)",
                           (job_id, did, "skipped" if earlier else "pending", files, earlier["output"] if earlier else None))
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
        _remove_later(work)  # thousands of datum folders: removed beside the commit, not before it
        if self.stopping.is_set():
            self.finish(job_id, JobState.KILLED, f"Pipeline {self.name!r} was stopped.")
            return
        self.update_counts(job_id)
        with self.db.read() as db:
            rows = db.execute("SELECT id, state, output, reason FROM datums WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        failed = [r for r in rows if r["state"] not in ("success", "skipped")]
        if failed:
            first = failed[0]
            self.finish(job_id, JobState.FAILURE,
                        f"{len(failed)} of {len(rows)} datums failed ({', '.join(r['id'][:12] for r in failed[:5])}"
                        f"{', ...' if len(failed) > 5 else ''}); the first: {first['reason']}")
            return
        tree: dict[str, tuple[str, int]] = {}
        owner: dict[str, str] = {}
        for r in rows:
            for path, (digest, size) in json.loads(r["output"] or "{}").items():
                if path in tree and tree[path] != (digest, size):
                    self.finish(job_id, JobState.FAILURE, f"Datums {owner[path][:12]} and {r['id'][:12]} both wrote {path} "
                                "with different content; write each datum's output to its own path.")
                    return
                tree[path], owner[path] = (digest, size), r["id"]
        try:
            commit = self.data.commit_tree(spec.name, spec.output_branch, tree,
                                           message=f"Output of job {job_id} of pipeline {spec.name}.",
                                           provenance=tuple(inputs))
        except PlatformError as e:
            self.finish(job_id, JobState.FAILURE, str(e))
            return
        reason = "The glob matched no file: 0 datums, an empty output commit." if not rows else ""
        self.finish(job_id, JobState.SUCCESS, reason, output=f"{spec.name}@{commit.id}")

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
        with self.lock:  # written by the flusher, many datums a transaction (each one is synced to disk)
            self.ended.append(("failed" if reason else "success", tries, reason,
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
        # where the platform is, as pachd tells its workers its address: code that calls dlptui (a retrain
        # on commit) reaches this home on the local profile; no secret of the console's is passed
        env.update(DLPTUI_HOME=str(self.home), DLPTUI_PROFILE="local")
        for leaf, match, files in datum:
            base = pfs / leaf.name
            for f in files:
                target = base / f.path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.data.blobs.copy_to(f.hash, target, f"{leaf.repo}:{f.path}")
            env[leaf.name] = str(base / match.lstrip("/")) if match != "/" else str(base)
            env[f"{leaf.name}_COMMIT"] = self.commits.get(leaf.name, "")
        before = _snapshot(pfs, skip=out)
        env.update(spec.env)
        env.update(PFS=str(pfs), PACH_JOB_ID=job_id, PACH_DATUM_ID=did, PPS_PIPELINE_NAME=spec.name, PACH_OUTPUT_COMMIT_ID="")
        cmd = [rewrite(arg, pfs) for arg in spec.cmd]
        stdin = "".join(rewrite(line, pfs) + "\n" for line in spec.stdin).encode()
        try:
            child = subprocess.Popen(cmd, cwd=folder / "work", env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            image = f" (the image {spec.image!r} is not used locally)" if spec.image else ""
            return (f"cmd {spec.cmd[0]!r} was not found on this machine{image}; install it or change transform.cmd.", None)
        except PermissionError:
            return f"cmd {spec.cmd[0]!r} cannot be run (permission denied); check transform.cmd.", None
        with self.lock:
            self.children.add(child)
            stopped = self.stopping.is_set()
        if stopped:  # the stop came while it was starting, after on_term killed the children it saw
            child.kill()
        try:
            try:
                child.communicate(stdin) if stdin else child.wait()
            except BrokenPipeError:
                child.wait()
        finally:
            with self.lock:
                self.children.discard(child)
        if child.returncode != 0:
            return f"The code exited with status {child.returncode}; see `dlptui job logs {job_id} --datum {did[:12]}`.", None
        if _snapshot(pfs, skip=out) != before:
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


def _remove_later(folder: Path) -> None:
    """Move `folder` aside at once and remove it in a background thread (what is left when the runner exits goes
    at its next start: `Runner.loop`)."""
    trash = folder.with_name(f".trash-{folder.name}-{time.monotonic_ns()}")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    threading.Thread(target=shutil.rmtree, args=(trash, True), name="remove-work", daemon=True).start()


def _snapshot(pfs: Path, skip: Path) -> set:
    seen = set()
    for dirpath, dirnames, filenames in os.walk(pfs):
        if Path(dirpath) == skip.parent and skip.name in dirnames:
            dirnames.remove(skip.name)
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            seen.add((str(p), st.st_size, st.st_mtime_ns, st.st_mode))
    return seen


def main(argv: list[str]) -> int:
    import fcntl

    home, name = Path(argv[0]), argv[1]
    # one runner per pipeline, whoever started it: a second one (a revive that raced the first's
    # start) finds the lock taken and leaves, so no datum is ever run or counted twice
    folder = home / "pipelines" / name
    if not folder.is_dir():  # its home is gone: nothing to run
        return 0
    lock = open(folder / "runner.lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another runner of pipeline {name!r} is running; this one stops.", flush=True)
        return 0
    runner = Runner(home, name)
    signal.signal(signal.SIGTERM, runner.on_term)
    runner.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
