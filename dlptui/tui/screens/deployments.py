"""Deployments: what serves which model version, its state and endpoint, and its server's log.

`n` deploys a model version or alias under a name (default dogcat-deploy; a name that serves
already is updated, through `actions.serving.deploy` as the CLI does), `e` switches the
selected deployment to another version, `t` sets a canary (a version and the percent of
requests it gets; 0 removes it), `ctrl+d` undeploys after a confirmation, `l` opens the
lineage dialog. Under the table, the versions behind the selected deployment side by side
(primary, canary, shadow: traffic, requests, errors, p50/p95, labels, agreement and a
sparkline of requests per poll), the canary's verdicts against the primary (a coloured line per metric:
widgets/verdict_lines.py) and the shadow's agreement, then its server's log; both follow the selection on every
poll. `g` promotes the canary (all traffic to it, the old version stopped), `A` aborts it,
`h` sets or removes a shadow, `b` rolls back to the version served before, `w` shows the
prediction log (Enter on a prediction: its lineage; `y` / `n` mark it right or wrong, the
ground truth its accuracy is judged by). Each change asks first. The drift line
(widgets/drift_line.py) says whether each version drifts from its training data, with a sparkline
of its drift scores and, when it drifts, what would retrain it. Under it, what the deployment served when
(widgets/timeline_pane.py, drawn by render/timeline.py as `deployment history --timeline` prints it): a band per
version over its history, the canary's share, automatic changes and drift verdicts marked.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from dlptui.actions import serving
from dlptui.actions.defaults import DEPLOYMENT, MODEL
from dlptui.errors import PlatformError
from dlptui.platform.model import Deployment, DeploymentState, VersionFigures
from dlptui.render import Column, pick
from dlptui.render import serving as render
from dlptui.text import MISSING, canary, data_ref, model_ref
from dlptui.tui.dialogs.deploy import Target, VersionDialog
from dlptui.tui.dialogs.lineage import LineageDialog, follow, lineage_of
from dlptui.tui.screens.base import BaseScreen
from dlptui.tui.screens.flows import NO_VERSIONS, DeployFlow
from dlptui.tui.shown import show_in, shown
from dlptui.tui.widgets.drift_line import DriftLine, drift_report
from dlptui.tui.widgets.verdict_lines import VerdictLines, verdict_report
from dlptui.tui.widgets.pane import PaneLog, PaneScroll
from dlptui.tui.widgets.resource_table import ResourceTable, rendered
from dlptui.tui.widgets.sparkline import Series, sparkline
from dlptui.tui.widgets.timeline_pane import TimelinePane

LOG_LINES = 200
DEPLOYMENTS = pick(render.DEPLOYMENT_COLUMNS, "name", "model", "replicas", "state", "endpoint", "canary", "shadow", "age")
FIGURES = [*render.FIGURE_COLUMNS, Column("trend", "REQUESTS/POLL", lambda f: "")]  # the console's sparkline last
STATE_STYLE = {
    DeploymentState.AVAILABLE: "green",
    DeploymentState.STARTING: "yellow",
    DeploymentState.FAILED: "bold red",
    DeploymentState.STOPPED: "dim",
}


def drift_marks(report, history) -> list:
    """The drift report's changes of verdict as entries the timeline marks."""
    from dlptui.actions.drift import history_entry

    changes = getattr(report, "changes", ()) or ()
    return [history_entry(c, history[-1].model if history else "") for c in changes]


class DeploymentsScreen(DeployFlow, BaseScreen):
    TITLE = "Deployments"
    POLL_SECONDS = 2.0
    MUTATING = frozenset({"new", "switch", "canary", "delete", "promote_canary", "abort_canary", "shadow", "rollback",
                          "retrain"})

    BINDINGS = [
        Binding("n", "new", "Deploy", id="deployments.deploy"),
        Binding("e", "switch", "Switch version", id="deployments.switch"),
        Binding("t", "canary", "Canary traffic", id="deployments.canary"),
        Binding("ctrl+d", "delete", "Undeploy", id="deployments.undeploy"),
        Binding("l", "lineage", "Lineage", id="deployments.lineage"),
        Binding("g", "promote_canary", "Promote canary", id="deployments.promote_canary"),
        Binding("A", "abort_canary", "Abort canary", id="deployments.abort_canary"),
        Binding("h", "shadow", "Shadow", id="deployments.shadow"),
        Binding("b", "rollback", "Roll back", id="deployments.rollback"),
        Binding("w", "predictions", "Predictions", id="deployments.predictions"),
        Binding("T", "retrain", "Retrain drifting", id="deployments.retrain"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.deployments: dict[str, Deployment] = {}
        self.log_of: str | None = None  # the deployment whose log is shown (read by fetch's thread)
        self._log_shown: tuple[str | None, list[str]] = (None, [])
        self.trends: dict[tuple[str, str, int], Series] = {}  # (deployment, role, version) -> requests per poll
        self.alias_note = ""  # the sentence when the alias the deployment was made by names another version
        self.drift = None  # the drift report on show (actions.drift.DriftReport), for T

    def compose_body(self) -> ComposeResult:
        yield ResourceTable.of(DEPLOYMENTS, title="Deployments", id="deployments", classes="short")
        yield ResourceTable.of(FIGURES, title="Versions", id="versions", classes="short")
        yield TimelinePane("", id="timeline", markup=False)
        with PaneScroll(title="Verdicts, gate and drift", id="analysis"):
            yield Static("", id="verdict", markup=False)
            yield VerdictLines("", id="verdicts", markup=False)
            yield DriftLine("", id="drift", markup=False)
        yield PaneLog("Server log", id="log", max_lines=LOG_LINES)

    @property
    def table(self) -> ResourceTable:
        return self.query_one("#deployments", ResourceTable)

    @property
    def selected(self) -> Deployment | None:
        key = self.table.selected_key
        return self.deployments.get(key) if key else None

    # -- polling -------------------------------------------------------------------

    def fetch(self) -> tuple[list[Deployment], str | None, list[str], list[VersionFigures], str, object, object, list]:
        part = self.platform.serving
        deployments = part.list_deployments()
        names = [d.name for d in deployments]
        name = self.log_of if self.log_of in names else (names[0] if names else None)
        try:
            lines = part.logs(name, LOG_LINES) if name else []
        except PlatformError as e:  # no pod or no log yet (a cluster): the list still shows, the log says why
            lines = [str(e)]
        try:
            figures = part.versions(name) if name else []
        except PlatformError:
            figures = []
        chosen = next((d for d in deployments if d.name == name), None)
        try:
            note = serving.alias_note(self.platform, chosen) if chosen is not None else ""
        except PlatformError:  # the registry does not answer: the rest still shows
            note = ""
        try:
            history = part.history(name) if name else []
        except PlatformError:  # the timeline says "no history yet"; the rest still shows
            history = []
        return (deployments, name, lines, figures, note, drift_report(self.platform, name), verdict_report(self.platform, name),
                history)

    def show(self, data: tuple[list[Deployment], str | None, list[str], list[VersionFigures], str, object, object, list]) -> None:
        deployments, name, lines, figures, note, drift, judged, history = data
        self.alias_note = note
        self.deployments = {d.name: d for d in deployments}
        self.table.update_rows(rendered(DEPLOYMENTS, deployments, key=lambda d: d.name,
                                        styled={"state": lambda d, cell: Text(cell, style=STATE_STYLE.get(d.state, ""))}))
        if self.log_of != self.table.selected_key:  # the cursor moved while the poll ran
            self.log_of = self.table.selected_key
        if name == self.log_of:
            self._show_log(name, lines)
            self._show_versions(name, figures)
            self.query_one("#verdicts", VerdictLines).show_report(judged)
            self.query_one("#drift", DriftLine).show_report(drift)
            self.drift = drift
            self.query_one("#timeline", TimelinePane).show_history(name, history, drift_marks(drift, history))
        self._show_state()

    def _show_versions(self, name: str | None, figures: list[VersionFigures]) -> None:
        trends = {}
        for f in figures:
            trends[(f.role, f.version)] = trend = self.trends.setdefault((name or "", f.role, f.version), Series())
            trend.add_count(f.requests)
        self.query_one("#versions", ResourceTable).update_rows(rendered(
            FIGURES, figures, key=lambda f: f"{f.role}-{f.version}",
            styled={"trend": lambda f, _: sparkline(trends[(f.role, f.version)].values, 16) or MISSING}))
        self.query_one("#versions", ResourceTable).set_title(f"Versions of {name}" if name else "Versions")
        analysis = self.query_one("#analysis", PaneScroll)
        analysis.set_title(f"Verdicts, gate and drift of {name}" if name else "Verdicts, gate and drift")
        if analysis.display != (name is not None):
            analysis.display = name is not None
        said = serving.verdict(figures) if len(figures) > 1 else (figures[0].note if figures else "")
        summary = "\n".join(filter(None, [self.alias_note, said]))
        show_in(self.query_one("#verdict", Static), shown(summary), display=bool(summary))

    def _show_log(self, name: str | None, lines: list[str]) -> None:
        if (name, lines) == self._log_shown:
            return  # unchanged: leave the log (and where the reader scrolled to) alone
        self._log_shown = (name, lines)
        log = self.query_one("#log", PaneLog)
        log.set_title(f"Server log of {name}" if name else "Server log")
        log.clear()
        log.write_lines(render.server_log(lines))

    def _show_state(self) -> None:
        d = self.selected
        if not self.deployments:
            self.state(f"Nothing is deployed: press n to deploy a model version ({MODEL} as {DEPLOYMENT}).")
        elif d is not None and d.state is not DeploymentState.AVAILABLE and d.detail:
            self.state(f"{d.name} is {d.state.value}: {d.detail}")
        else:
            self.state("")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        if key != self.log_of:
            self.log_of = key
            self._show_state()
            self.reload()

    def reveal(self, key: str) -> bool:
        """Select a deployment by name; False while it is not in the table (yet)."""
        if key not in self.table.shown_keys:
            return False
        self.table.move_cursor(row=self.table.shown_keys.index(key))
        self.table.focus()
        return True

    # -- actions -------------------------------------------------------------------

    def _need_selected(self) -> Deployment | None:
        d = self.selected
        if d is None:
            self.notify("Select a deployment first (n deploys one).", severity="warning")
        return d

    def action_new(self) -> None:
        self.start_deploy(serving.free_name(list(self.deployments.values()), DEPLOYMENT), then=self._deployed)

    def _deployed(self, outcome: serving.Outcome) -> None:
        self.log_of = outcome.deployment.name
        self.reload()

    def action_switch(self) -> None:
        d = self._need_selected()
        if d is not None:
            self._ask_version(d, canary=False)

    def action_canary(self) -> None:
        d = self._need_selected()
        if d is not None:
            self._ask_version(d, canary=True)

    def _ask_version(self, d: Deployment, canary: bool) -> None:
        def ask(choices: serving.Choices) -> None:
            if not choices:
                self.notify(NO_VERSIONS, severity="warning")
            elif d.model not in choices:
                self.notify(f"The registry has no versions of {d.model}.", severity="warning")
            else:
                self.ask(VersionDialog(d, choices, canary), self._set_version)

        self.call(serving.choices, self.platform, then=ask)

    def _set_version(self, target: Target) -> None:
        share = target.canary
        if share is None:
            self.notify(f"Switching {target.name} to {model_ref(target.model, target.ref)}...")
            self.call(serving.switch, self.platform, target.name, target.model, target.ref, then=self._changed("updated"))
            return
        if share:
            self.notify(f"Sending {share}% of {target.name}'s requests to {model_ref(target.model, target.ref)}...")
        else:
            self.notify(f"Removing the canary of {target.name}...")
        self.call(serving.set_canary, self.platform, target.name, target.model, target.ref, share,
                  then=self._changed("updated"))

    def action_delete(self) -> None:
        d = self._need_selected()
        if d is None:
            return

        def undeploy() -> None:
            self.call(self.platform.serving.undeploy, d.name, then=lambda _: self._undeployed(d.name))

        self.confirm(f"Undeploy {d.name} ({model_ref(d.model, d.version)})? Its endpoint stops answering.", undeploy)

    def _undeployed(self, name: str) -> None:
        self.notify(f"Undeployed {name}.")
        self.reload()

    def _changed(self, verb: str):
        def done(d: Deployment) -> None:
            with_canary = f", canary {canary(d.canary_version, d.canary_traffic)}" if d.canary_version is not None else ""
            self.notify(f"{d.name} {verb}: {model_ref(d.model, d.version)}{with_canary} ({d.state.value}).")
            self.log_of = d.name
            self.reload()

        return done

    def action_promote_canary(self) -> None:
        d = self._need_selected()
        if d is None:
            return
        if d.canary_version is None:
            self.notify(f"{d.name} has no canary to promote (t sets one).", severity="warning")
            return
        def promote(move_alias: bool) -> None:
            self.call(serving.promote_canary, self.platform, d.name, move_alias, then=self._changed("promoted"))

        def alias_too() -> None:  # the alias it was deployed by would name the old version: offer to move it
            from dlptui.tui.dialogs.confirm import ConfirmDialog

            self.ask(ConfirmDialog(f"{d.name} was deployed as {d.model}@{d.alias}. Move {d.alias} to version "
                                   f"{d.canary_version} too?"), promote)

        self.confirm(f"Promote the canary of {d.name}: all traffic to version {d.canary_version}, version {d.version} stopped?",
                     lambda: self.call(serving.alias_would_drift, self.platform, d,
                                       then=lambda drift: alias_too() if drift else promote(False)))

    def action_retrain(self) -> None:
        """What the drift line suggests, when a person asks (T: retrain, as on the Pipelines screen): train on the newest
        commit of the drifting version's data."""
        from dlptui.actions import drift

        d = self._need_selected()
        if d is None:
            return
        shown_for = self.drift if self.drift is not None and self.drift.deployment == d.name else None
        drifting = [v for v in (shown_for.drifting if shown_for else []) if v.retrain_on]
        if not drifting:
            self.notify(f"No version of {d.name} drifts from its training data: nothing to retrain.", severity="warning")
            return
        version = drifting[0]

        def started(experiment) -> None:
            self.notify(f"Started experiment {experiment.id} on {data_ref(experiment.data_repo, experiment.data_commit)} "
                        "(3 shows it).")

        ref = data_ref(*version.retrain_on.split("@", 1))
        self.confirm(f"Version {version.version} of {d.name} drifts from its training data. Train the demo model on {ref} now?",
                     lambda: self.call(drift.retrain, self.platform, version, then=started))

    def action_abort_canary(self) -> None:
        d = self._need_selected()
        if d is None:
            return
        if d.canary_version is None:
            self.notify(f"{d.name} has no canary to abort.", severity="warning")
            return
        self.confirm(f"Abort the canary of {d.name}: all traffic back to version {d.version}, version {d.canary_version} stopped?",
                     lambda: self.call(serving.abort_canary, self.platform, d.name, then=self._changed("canary aborted")))

    def action_shadow(self) -> None:
        d = self._need_selected()
        if d is None:
            return
        from dlptui.tui.dialogs.serving import NONE, ShadowDialog

        def chosen(ref: str) -> None:
            target = None if ref == NONE else ref
            self.notify(f"Removing the shadow of {d.name}..." if target is None else f"Mirroring {d.name} to {model_ref(d.model, ref)}...")
            self.call(serving.set_shadow, self.platform, d.name, d.model, target, then=self._changed("shadow set"))

        def ask(choices: serving.Choices) -> None:
            if d.model not in choices:
                self.notify(f"The registry has no versions of {d.model}.", severity="warning")
            else:
                self.ask(ShadowDialog(d, choices), chosen)

        self.call(serving.choices, self.platform, then=ask)

    def action_rollback(self) -> None:
        d = self._need_selected()
        if d is None:
            return

        def ask(history) -> None:
            before = next((h for h in reversed(history) if h.to_version != d.version), None)
            if before is None:
                self.notify(f"{d.name} has served no other version; there is nothing to roll back to.", severity="warning")
                return
            self.confirm(f"Roll {d.name} back from version {d.version} to version {before.to_version}?",
                         lambda: self.call(serving.rollback, self.platform, d.name,
                                           then=lambda result: self._changed("rolled back")(result[0])))

        self.call(self.platform.serving.history, d.name, then=ask)

    def action_predictions(self) -> None:
        d = self._need_selected()
        if d is None:
            return
        from dlptui.actions import feedback
        from dlptui.actions.predict import logged
        from dlptui.platform.model import Feedback
        from dlptui.tui.dialogs.serving import PredictionsDialog

        def lineage(ident: int) -> None:
            self.call(lineage_of, self.platform, f"{d.name}#{ident}", None, then=self._show_lineage)

        def mark(prediction, label: str, then) -> None:
            def done(recorded) -> None:
                then(recorded)
                self.notify(feedback.sentence(d.name, recorded))

            self.call(feedback.record, self.platform, d.name, [Feedback(str(prediction.id), label=label)], then=done)

        def look(prediction) -> None:
            from dlptui.actions.kept_inputs import picture
            from dlptui.tui.dialogs.serving import KeptImageDialog

            self.call(picture, self.platform, d.name, prediction.id,
                      then=lambda shown: self.app.push_screen(KeptImageDialog(prediction, shown)))

        offered = None if self.app.config.read_only else mark  # read-only: the log, and no y / n
        self.call(logged, self.platform, d.name, None, 500,
                  then=lambda rows: self.ask(PredictionsDialog(d.name, rows, offered, look), lineage))

    def action_lineage(self) -> None:
        d = self._need_selected()
        if d is not None:
            self.call(lineage_of, self.platform, d.name, None, then=self._show_lineage)

    def _show_lineage(self, dialog: LineageDialog) -> None:
        self.ask(dialog, lambda link: follow(self.app, link))
