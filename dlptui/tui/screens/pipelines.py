"""Pipelines: the pipelines (state, input -> output, last job), a text DAG of repos and pipelines, and the jobs
with live datum progress -> Enter: a job's datums with their state, files and logs.

On the pipelines: `n` creates one from a spec file (the file picker; JSON or YAML as pachctl takes it), `T`
(trigger) turns on the shipped retrain on commit (each new commit of the split starts the demo experiment), `G`
turns the gated loop on or off (retrain on commit, then each trained model a gated canary: actions/loop.py), `p` /
`c` stop (pause) and start (continue) the highlighted pipeline, `ctrl+d` deletes it after a confirmation that
says what goes with it. On the jobs: `Enter` opens one, `R` restarts its failed datums; on a job's datums `L`
shows the log of the highlighted datum. Read-only mode hides the changing keys.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from dlptui.render import pick
from dlptui.render import pipelines as render
from dlptui.text import job_id as short_job
from dlptui.text import plain, plural
from dlptui.tui.dialogs.files import FilePicker
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.widgets.resource_table import ResourceTable, rendered

PIPELINES = pick(render.PIPELINE_COLUMNS, "name", "state", "flow", "job", "jobstate", "detail")
JOBS = pick(render.JOB_COLUMNS, "id", "pipeline", "state", "datums", "duration", "started", "reason")


def dag(pipelines) -> str:
    """One line per pipeline: its input repos -> [pipeline] -> its output repo."""
    if not pipelines:
        return "No pipelines yet."
    lines = []
    for p in pipelines:
        inputs = " + ".join(i.partition("@")[0] for i in p.inputs)
        lines.append(f"{inputs} ──▶ [{p.name} · {p.state}] ──▶ {p.output.partition('@')[0]}")
    return "\n".join(lines)


class PipelinesScreen(BaseScreen):
    TITLE = "Pipelines"
    POLL_SECONDS = 1.0
    MUTATING = frozenset({"new", "retrain", "loop", "pause", "resume", "delete", "restart"})

    BINDINGS = [
        Binding("enter", "open", "Datums", id="pipelines.open"),
        Binding("n", "new", "New from spec", id="pipelines.create"),
        Binding("T", "retrain", "Retrain on commit", id="pipelines.retrain"),
        Binding("G", "loop", "Gated loop on/off", id="pipelines.loop"),
        Binding("p", "pause", "Stop", id="pipelines.stop"),
        Binding("c", "resume", "Start", id="pipelines.start"),
        Binding("R", "restart", "Restart failed", id="pipelines.restart"),
        Binding("ctrl+d", "delete", "Delete", id="pipelines.delete"),
    ]

    def compose_body(self) -> ComposeResult:
        yield ResourceTable.of(PIPELINES, title="Pipelines", id="pipelines")
        yield Static("", id="dag", markup=False)
        yield ResourceTable.of(JOBS, title="Jobs", id="jobs")

    def fetch(self):
        part = self.platform.pipelines
        return part.list_pipelines(), part.list_jobs()[:200]

    def show(self, data) -> None:
        pipelines, jobs = data
        self.query_one("#pipelines", ResourceTable).update_rows(rendered(PIPELINES, pipelines, key=lambda p: p.name))
        self.query_one("#dag", Static).update(plain(dag(pipelines)))
        self.query_one("#jobs", ResourceTable).update_rows(rendered(JOBS, jobs, key=lambda j: j.id))
        if not pipelines:
            hint = "" if self.config.read_only else " Press n to create one from a spec file."
            self.state(f"No pipelines yet.{hint}")
        else:
            running = sum(1 for j in jobs if not j.state.terminal)
            self.state(f"{plural(len(pipelines), 'pipeline')}, {plural(len(jobs), 'job')} ({running} running). "
                       "Enter on a job shows its datums.")

    def poll_seconds(self) -> float | None:
        return self.POLL_SECONDS

    # -- selection ------------------------------------------------------------------

    def _pipeline(self) -> str | None:
        name = self.query_one("#pipelines", ResourceTable).selected_key
        if name is None:
            self.notify("Select a pipeline first (or press n to create one).", severity="warning")
        return name

    def _job(self) -> str | None:
        job = self.query_one("#jobs", ResourceTable).selected_key
        if job is None:
            self.notify("Select a job first.", severity="warning")
        return job

    # -- actions ---------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "jobs":
            self.action_open()

    def action_open(self) -> None:
        job = self._job()
        if job:
            self.app.push_screen(JobScreen(job))

    def action_new(self) -> None:
        def picked(path: Path) -> None:
            from dlptui.actions.pipelines import create_from_file

            self.call(create_from_file, self.platform.pipelines, path,
                      then=lambda p: self._done(f"Pipeline {p.name} created: {', '.join(p.inputs)} -> {p.output}."))

        self.ask(FilePicker("A pipeline spec (JSON or YAML, as pachctl create pipeline -f takes it)", want="file"), picked)

    def action_retrain(self) -> None:
        from dlptui.actions.pipelines import retrain_on_commit

        self.call(retrain_on_commit, self.platform.pipelines,
                  then=lambda p: self._done(f"Retrain on commit is on: each new commit of {p.inputs[0].partition('@')[0]} "
                                            "starts the demo experiment on it (p stops it)."))

    def action_loop(self) -> None:
        """The loop on when it is off (retrain on commit and the canary pipeline), off when it is on (asks first)."""
        from dlptui.actions import loop

        def toggle(on: bool) -> None:
            if on:
                self.confirm(f"Turn the loop off? Trained models are no longer deployed ({loop.CANARY_PIPELINE} stops; "
                             "retrain on commit goes on).", lambda: self.call(loop.turn_off, self.platform.pipelines, then=self._done))
            else:
                self.confirm("Turn the loop on? Each new commit of the split trains the demo model, and each trained model "
                             "becomes a gated canary of the deployment that serves it, promoted or aborted by its gate.",
                             lambda: self.call(loop.turn_on, self.platform.pipelines, then=self._done))

        self.call(loop.is_on, self.platform.pipelines, then=toggle)

    def action_pause(self) -> None:
        name = self._pipeline()
        if name:
            self.call(self.platform.pipelines.stop_pipeline, name, then=lambda p: self._done(f"Pipeline {p.name} stopped."))

    def action_resume(self) -> None:
        name = self._pipeline()
        if name:
            self.call(self.platform.pipelines.start_pipeline, name, then=lambda p: self._done(f"Pipeline {p.name} runs again."))

    def action_restart(self) -> None:
        job = self._job()
        if job:
            self.call(self.platform.pipelines.restart_job, job,
                      then=lambda j: self._done(f"Job {short_job(j.id)} runs its failed datums again."))

    def action_delete(self) -> None:
        name = self._pipeline()
        if name:
            self.confirm(
                f"Delete pipeline {name}, its jobs and its output repo {name} with every commit? This cannot be undone.",
                lambda: self.call(self.platform.pipelines.delete_pipeline, name,
                                  then=lambda _: self._done(f"Pipeline {name} and repo {name} deleted.")),
            )

    def _done(self, message: str) -> None:
        self.notify(message)
        self.reload()


class JobScreen(BaseScreen):
    """One job: its datums (state, tries, files, reason) and the log of the highlighted one (`L`)."""

    POLL_SECONDS = 1.0
    MUTATING = frozenset({"restart"})
    BINDINGS = [
        Binding("L", "logs", "Logs", id="pipelines.logs"),
        Binding("R", "restart", "Restart failed", id="job.restart"),
    ]

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.TITLE = f"Job {short_job(job_id)}"
        self.done = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="job", markup=False)
        yield ResourceTable.of(render.DATUM_COLUMNS, title="Datums", id="datums")
        yield Static("", id="log", markup=False)

    def fetch(self):
        part = self.platform.pipelines
        return part.inspect_job(self.job_id), part.list_datums(self.job_id)

    def show(self, data) -> None:
        job, datums = data
        self.done = job.state.terminal
        self.query_one("#job", Static).update(plain(render.job_summary(job) + (f"\n{job.reason}" if job.reason else "")))
        self.query_one("#datums", ResourceTable).update_rows(rendered(render.DATUM_COLUMNS, datums, key=lambda d: d.id))
        self.state(f"{plural(len(datums), 'datum')}. L shows the log of the highlighted one.")

    def poll_seconds(self) -> float | None:
        return 5.0 if self.done else self.POLL_SECONDS

    def action_logs(self) -> None:
        datum = self.query_one("#datums", ResourceTable).selected_key
        if datum is None:
            self.notify("Select a datum first.", severity="warning")
            return

        def shown(lines: list[str]) -> None:
            self.query_one("#log", Static).update(plain("\n".join(lines[-30:])) or f"Datum {datum[:12]} wrote nothing.")

        self.call(self.platform.pipelines.job_logs, self.job_id, datum, then=shown)

    def action_restart(self) -> None:
        self.call(self.platform.pipelines.restart_job, self.job_id,
                  then=lambda j: (self.notify(f"Job {short_job(j.id)} runs its failed datums again."), self.reload()))
