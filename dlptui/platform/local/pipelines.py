"""ports.Pipelines on one machine: Pachyderm pipeline specs run by an embedded runner.

One runner process per home serves every pipeline (`pipeline_runner.py`): started detached when a
pipeline runs and none is there (an flock on `pipelines/runner.lock` tells whether one is), it records
itself with pid, start time and token (`pipelines/runner.json`), sleeps until a commit or a change of
the records wakes it, and exits when no pipeline runs. Its jobs go on after the console closes; a
runner that died is started again by the next command that needs one (a look at the pipelines or
jobs, create, start, restart). The records live in `config.home / "pipelines" / "meta.db"`, each
job's logs in `pipelines/<name>/logs/<job>/`. What runs a datum, and how `/pfs` is rewritten, is in
`pipeline_job.py`; which spec fields the local runner honours, notes or refuses, in
`pipeline_support.py`. `image` is recorded but not used: the local profile runs `cmd` on this
machine, without a container.

Stopping a pipeline is a change of its state: the runner kills its job's datums (their process
groups) and marks the job killed; whatever of its datums is left (a runner that died) is ended here
too, by the platform's mark in their environment.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError
from dlptui.platform import data_rules, pipeline_spec
from dlptui.platform.local import pipeline_support, processes
from dlptui.platform.local.commit_rows import pipeline_users
from dlptui.platform.local.pipeline_db import JOB_COLUMNS, datum_of, job_of, open_pipeline_db
from dlptui.platform.local.pipeline_job import PASSED_ENV, PIPELINE_VAR
from dlptui.platform.local.pipeline_runner import LOCK, RECORD
from dlptui.platform.model import CommitRef, Datum, Job, JobState, Pipeline, Service

RUNNING, PAUSED = "running", "paused"
STOP_WAIT_S = 15.0  # how long a stop waits for the runner to end the pipeline's job before it ends it itself
STARTING = "runner-starting.json"  # the runner a look started, until it holds the lock
STARTING_S = 30.0  # a runner not at its lock this long after its start is not waited for


def pipeline_of(row, last: Job | None, runner_alive: bool) -> Pipeline:
    try:
        spec = pipeline_spec.parse(json.loads(row["spec"]))
        notes = pipeline_support.note_sentence(pipeline_support.check(spec))
    except (PlatformError, ValueError) as e:  # recorded before a rule it breaks: shown, with the sentence
        return Pipeline(name=row["name"], state=row["state"], inputs=(), output=f"{row['name']}@master", created=row["created"],
                        last_job=last.id if last else None, last_job_state=last.state if last else None,
                        detail=f"This pipeline's spec is refused now: {e}", spec=json.loads(row["spec"]))
    detail = row["detail"]
    if not detail:
        where = f"image {spec.image!r} recorded, not used: " if spec.image else ""
        detail = f"{where}runs {spec.cmd[0]!r} on this machine, {spec.workers} datum(s) at a time."
        if row["state"] == RUNNING and not runner_alive:
            detail = "Its runner is not running; it starts again on the next look (or `dlptui pipeline start`)."
        detail = " ".join(filter(None, [detail, notes]))
    return Pipeline(
        name=row["name"], state=row["state"],
        inputs=tuple(CommitRef.of(leaf.repo, leaf.branch) for leaf in spec.input.leaves()),
        output=CommitRef.of(spec.name, spec.output_branch), created=row["created"], description=spec.description,
        cmd=spec.cmd, image=spec.image, parallelism=spec.workers, datum_tries=spec.datum_tries,
        last_job=last.id if last else None, last_job_state=last.state if last else None, detail=detail, spec=spec.raw,
    )


class LocalPipelines:
    def __init__(self, config, platform=None) -> None:
        self.config = config
        self.platform = platform
        self.root = Path(config.home) / "pipelines"
        self.db = open_pipeline_db(self.root)

    def close(self) -> None:
        self.db.close()

    @property
    def _data(self):
        if self.platform is not None:
            return self.platform.data
        from dlptui.platform.local.datastore import LocalDataStore

        self._own_data = getattr(self, "_own_data", None) or LocalDataStore(self.config)
        return self._own_data

    # --- the runner ----------------------------------------------------------------

    def runner_record(self) -> processes.ProcessRecord | None:
        """The home runner as it recorded itself (pid, start time, token), whether or not it still runs."""
        return processes.read_record(self.root / RECORD)

    def runner_running(self) -> bool:
        """Whether a runner holds the home's runner lock."""
        return processes.lock_held(self.root / LOCK)

    def _start_runner(self) -> None:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        env["DLPTUI_HOME"] = str(self.config.home)  # its processes are found as this home's (`dlptui status`)
        record = processes.spawn(
            [sys.executable, "-m", "dlptui.platform.local.pipeline_runner", str(self.config.home)],
            log=self.root / "runner.log", cwd=self.root, env=env, part="pipelines", home=self.config.home,
        )
        processes.write_json(self.root / STARTING, record.to_json())  # until it holds the lock: no second one

    def _starting(self) -> bool:
        """Whether a runner started lately is still on its way to the lock (imports take a moment)."""
        return processes.starting(self.root / STARTING, STARTING_S)

    def _revive(self) -> None:
        """Start the home's runner when a pipeline runs and no runner does (none yet, killed, stopped by
        `dlptui stop`, or the machine restarted)."""
        if getattr(self.config, "read_only", False) or self.runner_running() or self._starting():
            return
        with self.db.read() as db:
            if not db.execute("SELECT 1 FROM pipelines WHERE state = ? LIMIT 1", (RUNNING,)).fetchone():
                return
        self._start_runner()

    def _end_datums(self, name: str) -> None:
        """End every process of the pipeline's datums (a runner that died left them, or it is being stopped)."""
        left = processes.marked({PIPELINE_VAR: name, "DLPTUI_HOME": str(self.config.home)})
        if left:
            processes.end(left)

    def _settle_stop(self, name: str) -> None:
        """After the state changed to paused: the runner ends the running job (it is woken by the change); one
        that does not within STOP_WAIT_S, or no runner at all, leaves it to this: the datums' processes are
        ended by their mark and the job marked killed."""
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and self.runner_running():
            with self.db.read() as db:
                if not db.execute("SELECT 1 FROM jobs WHERE pipeline = ? AND state = ?", (name, JobState.RUNNING.value)).fetchone():
                    break
            time.sleep(0.05)
        self._end_datums(name)
        with self.db.write() as db:  # what the runner could not mark
            db.execute("UPDATE jobs SET state = ?, finished = ?, reason = ? WHERE pipeline = ? AND state = ?",
                       (JobState.KILLED.value, time.time(), f"Pipeline {name!r} was stopped.", name, JobState.RUNNING.value))

    # --- pipelines ------------------------------------------------------------------

    def _row(self, db, name: str):
        row = db.execute("SELECT * FROM pipelines WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"There is no pipeline {name!r}; see `dlptui pipeline list`.")
        return row

    def _last_job(self, db, name: str) -> Job | None:
        row = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE pipeline = ? ORDER BY seq DESC LIMIT 1", (name,)).fetchone()
        return job_of(row) if row else None

    def create_pipeline(self, spec: Mapping) -> Pipeline:
        parsed = pipeline_spec.parse(spec)
        pipeline_support.check(parsed)  # a field the local runner refuses: one sentence, nothing created
        data = self._data
        for leaf in parsed.input.leaves():
            try:
                data.inspect_repo(leaf.repo)
            except NotFound:
                raise NotFound(
                    f"Input repo {leaf.repo!r} of pipeline {parsed.name!r} does not exist; "
                    f"create it with `dlptui data create {leaf.repo}` first."
                ) from None
        with self.db.read() as db:
            if db.execute("SELECT 1 FROM pipelines WHERE name = ?", (parsed.name,)).fetchone():
                raise Conflict(f"Pipeline {parsed.name!r} exists already; delete it first or pick another name.")
        try:  # its output repo is a new one, as on pachd: a repo of its name is refused, not taken over
            data.create_repo(parsed.name, description=f"Output of pipeline {parsed.name}.")
        except Conflict:
            raise data_rules.repo_taken(parsed.name) from None
        with self.db.write() as db:
            if db.execute("SELECT 1 FROM pipelines WHERE name = ?", (parsed.name,)).fetchone():
                raise Conflict(f"Pipeline {parsed.name!r} exists already; delete it first or pick another name.")
            db.execute("INSERT INTO pipelines (name, spec, created, state) VALUES (?, ?, ?, ?)",
                       (parsed.name, json.dumps(parsed.raw), time.time(), RUNNING))
        (self.root / parsed.name).mkdir(parents=True, exist_ok=True)
        self._revive()  # a running runner is woken by the new row
        return self.inspect_pipeline(parsed.name)

    def list_pipelines(self) -> list[Pipeline]:
        self._revive()
        alive = self.runner_running() or self._starting()
        with self.db.read() as db:
            rows = db.execute("SELECT * FROM pipelines ORDER BY name").fetchall()
            return [pipeline_of(r, self._last_job(db, r["name"]), alive) for r in rows]

    def inspect_pipeline(self, name: str) -> Pipeline:
        with self.db.read() as db:
            self._row(db, name)
        self._revive()
        alive = self.runner_running() or self._starting()
        with self.db.read() as db:
            row = self._row(db, name)
            return pipeline_of(row, self._last_job(db, name), alive)

    def stop_pipeline(self, name: str) -> Pipeline:
        with self.db.write() as db:
            self._row(db, name)
            db.execute("UPDATE pipelines SET state = ? WHERE name = ?", (PAUSED, name))
        self._settle_stop(name)
        return self.inspect_pipeline(name)

    def start_pipeline(self, name: str) -> Pipeline:
        with self.db.write() as db:
            self._row(db, name)
            db.execute("UPDATE pipelines SET state = ?, detail = '' WHERE name = ?", (RUNNING, name))
        self._revive()
        return self.inspect_pipeline(name)

    def delete_pipeline(self, name: str) -> None:
        with self.db.read() as db:
            self._row(db, name)
        readers = sorted(other for other, inputs in pipeline_users(self.config.home) if other != name and name in inputs)
        if readers:  # its output repo goes with it: refused before anything changes, as pachd refuses
            named = ", ".join(repr(r) for r in readers)
            raise Conflict(f"Pipeline {name!r} cannot be deleted: its output repo is the input of {named}; delete "
                           f"{'that pipeline' if len(readers) == 1 else 'those pipelines'} first.")
        with self.db.write() as db:
            self._row(db, name)
            db.execute("UPDATE pipelines SET state = ? WHERE name = ?", (PAUSED, name))
        self._settle_stop(name)
        with self.db.write() as db:
            db.execute("DELETE FROM datums WHERE job_id IN (SELECT id FROM jobs WHERE pipeline = ?)", (name,))
            db.execute("DELETE FROM jobs WHERE pipeline = ?", (name,))
            db.execute("DELETE FROM pipelines WHERE name = ?", (name,))
        try:
            self._data.delete_repo(name)
        except NotFound:
            pass
        shutil.rmtree(self.root / name, ignore_errors=True)

    # --- jobs -------------------------------------------------------------------------

    def _job_row(self, db, job_id: str):
        if not isinstance(job_id, str) or not job_id:
            raise InvalidInput(f"{job_id!r} is not a job id; see `dlptui jobs`.")
        rows = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id >= ? AND id < ? LIMIT 2",
                          (job_id.lower(), job_id.lower() + "g")).fetchall()
        if len(rows) == 1 and (len(job_id) >= 4 or rows[0]["id"] == job_id):
            return rows[0]
        if len(rows) > 1:
            exact = [r for r in rows if r["id"] == job_id]
            if exact:
                return exact[0]
            raise InvalidInput(f"Job prefix {job_id!r} matches several jobs; give more characters.")
        raise NotFound(f"There is no job {job_id!r}; see `dlptui jobs`.")

    def list_jobs(self, pipeline: str | None = None) -> list[Job]:
        self._revive()
        with self.db.read() as db:
            if pipeline is None:
                rows = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY seq DESC").fetchall()
            else:
                self._row(db, pipeline)
                rows = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE pipeline = ? ORDER BY seq DESC", (pipeline,)).fetchall()
            return [job_of(r) for r in rows]

    def inspect_job(self, job_id: str) -> Job:
        with self.db.read() as db:
            return job_of(self._job_row(db, job_id))

    def list_datums(self, job_id: str) -> list[Datum]:
        with self.db.read() as db:
            job = self._job_row(db, job_id)
            return [datum_of(r) for r in db.execute("SELECT * FROM datums WHERE job_id = ? ORDER BY id", (job["id"],))]

    def restart_job(self, job_id: str) -> Job:
        with self.db.write() as db:
            row = self._job_row(db, job_id)
            state = JobState(row["state"])
            if not state.terminal:
                raise Conflict(f"Job {row['id']} is {state.value}; only a job that has ended can be restarted.")
            again = db.execute("SELECT count(*) FROM datums WHERE job_id = ? AND state NOT IN ('success', 'skipped')",
                               (row["id"],)).fetchone()[0]
            if state == JobState.SUCCESS or (state == JobState.FAILURE and not again):
                raise Conflict(f"Job {row['id']} has no failed datum to run again.")
            db.execute("UPDATE datums SET state = 'pending', tries = 0, reason = '' WHERE job_id = ? "
                       "AND state NOT IN ('success', 'skipped')", (row["id"],))
            db.execute("UPDATE jobs SET state = ?, finished = NULL, reason = '', failed = 0 WHERE id = ?",
                       (JobState.CREATED.value, row["id"]))
            self._row(db, row["pipeline"])
        self._revive()
        return self.inspect_job(row["id"])

    def note_job(self, job_id: str, note: str) -> None:
        """Put one sentence on a job as its reason (local only: a retrain on commit whose experiment was superseded
        before it trained says which commit it skipped and why, `LocalTraining._supersede`)."""
        with self.db.write() as db:
            row = self._job_row(db, job_id)
            db.execute("UPDATE jobs SET reason = ? WHERE id = ?", (note, row["id"]))

    def job_logs(self, job_id: str, datum_id: str | None = None) -> list[str]:
        with self.db.read() as db:
            job = self._job_row(db, job_id)
            datums = [r["id"] for r in db.execute("SELECT id FROM datums WHERE job_id = ? ORDER BY id", (job["id"],))]
        folder = self.root / job["pipeline"] / "logs" / job["id"]
        if datum_id is not None:
            chosen = [d for d in datums if d.startswith(datum_id)]
            if len(chosen) != 1:
                raise NotFound(f"Job {job['id']} has no datum {datum_id!r}; see `dlptui job {job['id']}`.")
            datums = chosen
        lines: list[str] = []
        for d in datums:
            try:
                text = (folder / f"{d}.log").read_text(errors="replace")
            except FileNotFoundError:
                continue
            lines += [f"{d[:12]} {line}" if datum_id is None else line for line in text.splitlines()]
        return lines

    # --- health -------------------------------------------------------------------------

    def health(self) -> Service:
        try:
            with self.db.read() as db:
                count = db.execute("SELECT count(*) FROM pipelines").fetchone()[0]
                running = db.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0]
            record = self.runner_record() if self.runner_running() else None
            runner = f", runner pid {record.pid}" if record else ""
            return Service(part="pipelines", backend="embedded runner", reachable=True,
                           detail=f"{count} pipeline{'s' if count != 1 else ''}, {running} job{'s' if running != 1 else ''} running{runner}",
                           endpoint=str(self.root))
        except Exception as e:  # health never raises
            return Service(part="pipelines", backend="embedded runner", reachable=False,
                           detail=f"The pipeline records at {self.root} cannot be read: {e}")
