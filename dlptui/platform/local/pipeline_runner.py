"""The runner of a home's pipelines: `python -m dlptui.platform.local.pipeline_runner HOME`.

One process per home serves every pipeline of it (`LocalPipelines` starts it detached, in its own session, when
a pipeline runs and none is there; an flock on `pipelines/runner.lock` keeps it one). It records itself in
`pipelines/runner.json` (pid, start time, token: `processes.ProcessRecord`). Each running pipeline's job runs
in a thread of it (`pipeline_job.Runner`: the datums, the commit), jobs of one pipeline one after another.

Between two looks it sleeps in `wake.Waker`: a commit (the data store's SQLite log is written), a pipeline
created, started, stopped or deleted, or a job restarted (the pipeline records are written) wakes it at once;
nothing else does, so a platform at rest costs no CPU. It looks again at least every SAFETY_S, and wakes for
the next job_timeout. When no pipeline is running and no job is left it exits; the next command that needs it
starts it again.

What runs away from it cannot: each datum's code leads a process group of its own and carries the platform's
mark (`pipeline_job`); it gets SIGKILL when the runner dies (prctl's parent-death signal), and the runner's
guard (`processes.guard`, a few MB) ends the rest of its group then. A runner that starts ends whatever of
this home's datums an earlier one left before it runs any, so no datum runs twice at once.

Stopping a pipeline (its state in the records) cancels its job: the datums' groups are killed, the job ends
killed. SIGTERM (`dlptui stop`) kills every datum and leaves the jobs running in the records: the next
runner goes on with them.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from dlptui.errors import PlatformError
from dlptui.platform import pipeline_spec
from dlptui.platform.local import pipeline_support, processes
from dlptui.platform.local.datastore import LocalDataStore
from dlptui.platform.local.pipeline_db import open_pipeline_db
from dlptui.platform.local.pipeline_datums import remove_in_background
from dlptui.platform.local.pipeline_job import PIPELINE_VAR, Runner
from dlptui.platform.local.wake import Waker

SAFETY_S = 60.0  # a look at least this often, whatever woke it or not
LOCK_WAIT_S = 2.0  # a runner that finds the lock taken tries this long (a look probes it for a moment)
RECORD = "runner.json"
LOCK = "runner.lock"


def say(line: str) -> None:
    sys.stdout.write(time.strftime("%Y-%m-%d %H:%M:%S") + f" {line}\n")
    sys.stdout.flush()


class HomeRunner:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "pipelines"
        self.db = open_pipeline_db(self.root)
        self.data = LocalDataStore(SimpleNamespace(home=home))
        self.token = os.environ.get(processes.TOKEN_VAR) or secrets.token_hex(12)
        self.jobs: dict[str, tuple[Runner, threading.Thread]] = {}
        self.quit = threading.Event()
        self.wake = Waker([self.root, self.data.root])
        self.guard = None

    # --- its life ----------------------------------------------------------------------------

    def record(self) -> None:
        import psutil

        me = os.getpid()
        processes.write_json(self.root / RECORD,
                             processes.ProcessRecord(me, psutil.Process(me).create_time(), self.token).to_json())

    def datum_marks(self, token: str | None = None) -> dict[str, str | None]:
        marks: dict[str, str | None] = {PIPELINE_VAR: None, "DLPTUI_HOME": str(self.home)}
        if token is not None:
            marks[processes.TOKEN_VAR] = token
        return marks

    def end_leftovers(self) -> None:
        """End every datum process of this home that an earlier runner left (it died), before any datum runs."""
        left = processes.marked(self.datum_marks(), exclude_token=self.token)
        if left:
            say(f"Ending {len(left)} process(es) of datums an earlier runner left: {', '.join(str(p.pid) for p in left)}.")
            still = processes.end(left)
            if still:
                say(f"Processes {', '.join(str(p.pid) for p in still)} did not end; their datums run again anyway.")

    def on_term(self, signum, frame) -> None:
        self.quit.set()
        for runner, _ in list(self.jobs.values()):
            runner.cancel(None)  # the datums die; the job stays running in the records for the next runner
        self.wake.poke()

    def close(self) -> None:
        for runner, thread in list(self.jobs.values()):
            runner.cancel(None)
            thread.join(30)
        processes.release_guard(self.guard)
        self.wake.close()
        self.db.close()
        self.data.close()

    # --- the loop ------------------------------------------------------------------------------

    def pipelines(self) -> dict:
        with self.db.read() as db:
            return {r["name"]: r for r in db.execute("SELECT name, spec, state FROM pipelines")}

    def loop(self) -> None:
        self.end_leftovers()
        # the work folders a runner that exited meanwhile left to remove: in the background, as it does
        for trash in self.root.glob("*/work/.trash-*"):
            remove_in_background(trash)
        env = {processes.TOKEN_VAR: self.token, processes.PART_VAR: "pipelines", "DLPTUI_HOME": str(self.home),
               processes.HOME_VAR: processes.home_mark(self.home)}
        self.guard = processes.guard(self.datum_marks(self.token), env=env)
        while not self.quit.is_set():
            if not (self.root / "meta.db").exists():  # the home was removed under it
                return
            rows = self.pipelines()
            for name, (runner, thread) in list(self.jobs.items()):
                if not thread.is_alive():
                    del self.jobs[name]
            now = time.time()
            for name, (runner, _) in self.jobs.items():
                row = rows.get(name)
                if row is None or row["state"] != "running":
                    runner.cancel(f"Pipeline {name!r} was stopped.")
                elif runner.deadline is not None and now >= runner.deadline:
                    runner.cancel(runner.timeout)
            running = sorted(name for name, row in rows.items() if row["state"] == "running")
            if not running and not self.jobs:
                return  # nothing to serve: the next command that needs a runner starts one
            for name in running:
                if name not in self.jobs:
                    self.start(name, rows[name])
            self.wake.wait(self.next_wait())

    def next_wait(self) -> float:
        deadlines = [r.deadline for r, _ in self.jobs.values() if r.deadline is not None and not r.stopping.is_set()]
        if not deadlines:
            return SAFETY_S
        return max(0.01, min(SAFETY_S, min(deadlines) - time.time()))

    def start(self, name: str, row) -> None:
        """A thread for the pipeline's next job, made for its inputs' heads when there is none."""
        runner = Runner(self.home, name, db=self.db, data=self.data, token=self.token, wake=self.wake.poke)
        try:
            spec = pipeline_spec.parse(json.loads(row["spec"]))
            pipeline_support.check(spec)
        except (PlatformError, ValueError) as e:  # a spec recorded before a rule it breaks: one sentence, no job
            runner.set_detail(f"This pipeline's spec is refused now: {e}")
            return
        runner.make_job(spec)
        job = runner.next_job()
        if job is None:
            return
        thread = threading.Thread(target=runner.run, args=(spec, job), name=f"job-{name}", daemon=True)
        self.jobs[name] = (runner, thread)
        thread.start()


def take_lock(root: Path):
    """The runner's lock, held, or None when another runner holds it (after LOCK_WAIT_S)."""
    lock = open(root / LOCK, "a")
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                return None
            time.sleep(0.05)


def main(argv: list[str]) -> int:
    home = Path(argv[0])  # (a second argument, a pipeline's name, came from runners of one pipeline: ignored)
    root = home / "pipelines"
    if not (root / "meta.db").exists():  # its home is gone: nothing to run
        return 0
    # one runner per home, whoever started it: a second one (two commands that started one at once) finds the
    # lock taken and leaves, so no datum is ever run or counted twice
    lock = take_lock(root)
    if lock is None:
        print(f"another runner of the pipelines of {home} is running; this one stops.", flush=True)
        return 0
    runner = HomeRunner(home)
    signal.signal(signal.SIGTERM, runner.on_term)
    try:
        runner.record()
        runner.loop()
    finally:
        runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
