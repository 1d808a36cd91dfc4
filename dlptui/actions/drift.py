"""Drift and outliers of a deployment's versions, each against the reference from its own training data.

    report = judge(platform, "dogcat-deploy")     # per version: stable / drifting (p-value, window), a score series,
    report.versions[0].sentence                   #   outliers counted; the changes of verdict, kept in the record
    flagged = outliers(platform, "dogcat-deploy") # logged predictions far from every training image, with their scores

A version's window is its last WINDOW answered predictions that carry a summary (analysis/drift.py says how
it is tested and what alpha bounds). Each look judges the windows that end at every STEP new predictions since
the last look (at most MOST, the newest), and keeps them in the deployment's drift record: a series for the
sparkline and a change entry when a version's verdict changes. A look where the platform is read-only judges
and shows, and records nothing. Where the profile keeps no prediction log (a cluster) the report is one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlptui import text
from dlptui.actions import drift_reference
from dlptui.analysis import drift as stats
from dlptui.analysis.outliers import outlier_rule, outlier_scores
from dlptui.errors import InvalidInput, NotAvailable, PlatformError, ReadOnlyError

MOST = 10  # windows judged by one look
SERIES_KEEP = 120  # evaluations kept per version (the sparkline, `drift --since`)
CHANGES_KEEP = 100
OUTLIER_LAST = 10_000  # a version's latest predictions whose outliers are counted
RETRAIN_PIPELINE = "dogs-and-cats-retrain"


@dataclass(frozen=True)
class VersionDrift:
    version: int
    role: str
    state: str  # "stable", "drifting", "not yet", "no reference"
    latest: dict | None = None  # the latest window's test (analysis.drift.DriftResult.to_json, with time and last_id)
    since: float | None = None  # when the version's verdict became what it is
    scores: tuple[float, ...] = ()  # the recorded windows' scores, oldest first (the alarm line is 2)
    reference: dict | None = None
    outliers: int | None = None  # among the last `scored` predictions
    scored: int = 0
    outlier_rule: dict | None = None
    note: str = ""  # why there is no verdict
    suggestion: str = ""  # what to do about a drift, with its numbers
    retrain_on: str = ""  # the data commit (repo@commit) the suggestion would train on

    @property
    def sentence(self) -> str:
        head = f"Version {self.version} ({self.role})"
        if self.latest is None:
            return f"{head}: {self.note}"
        r = self.latest
        reference = self.reference or {}
        told = (f"{head}: {self.state}" + (f" since {text.timestamp(self.since)}" if self.state == stats.DRIFTING and self.since else "")
                + f", p {_p(r['p_value'])} over its last {r['window']} predictions against {r['reference']}"
                f" {'held-out' if r['reference'] == reference.get('held_out') else 'training'} images of {short(reference.get('data', ''))} (embeddings MMD² {r['mmd2']:.3g}, p {_p(r['p_embeddings'])};"
                f" confidences KS {r['ks']:.2f}, p {_p(r['p_confidences'])}; score {r['score']:.1f}, alarm at {_alarm(r)})")
        if self.outliers is not None:
            told += f"; {self.outliers} outlier{'s' if self.outliers != 1 else ''} in its last {self.scored} predictions"
        return told + "."

    def to_json(self) -> dict:
        return {"version": self.version, "role": self.role, "state": self.state, "latest": self.latest, "since": self.since,
                "scores": list(self.scores), "reference": self.reference, "outliers": self.outliers, "scored": self.scored,
                "outlier_rule": self.outlier_rule, "note": self.note, "suggestion": self.suggestion,
                "retrain_on": self.retrain_on or None}


@dataclass(frozen=True)
class DriftReport:
    deployment: str
    versions: tuple[VersionDrift, ...] = ()
    changes: tuple[dict, ...] = ()  # the recorded changes of verdict, oldest first
    recorded: bool = True  # False: judged but not kept (read-only)
    note: str = ""  # the whole report in one sentence where drift cannot be judged here
    series: dict = field(default_factory=dict)  # version -> the recorded evaluations (for --since)

    @property
    def drifting(self) -> list[VersionDrift]:
        return [v for v in self.versions if v.state == stats.DRIFTING]

    def to_json(self) -> dict:
        return {"deployment": self.deployment, "versions": [v.to_json() for v in self.versions],
                "changes": list(self.changes), "recorded": self.recorded, "note": self.note}


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _alarm(r: dict) -> str:
    return f"{-np.log10(r.get('alpha', stats.ALPHA)):.0f}"


def short(data: str) -> str:
    repo, _, commit = data.partition("@")
    return f"{repo}@{commit[:12]}" if commit else data


# --- judging ------------------------------------------------------------------------------------------------


def judge(platform, name: str) -> DriftReport:
    """Look at each version the deployment serves: judge its new windows, count its outliers, record what changed."""
    serving = platform.serving
    deployment = serving.get_deployment(name)
    try:
        record = serving.drift_record(name)
    except NotAvailable as e:
        return DriftReport(name, note=str(e))
    if record.get("created") != deployment.created:
        record = {"created": deployment.created, "versions": {}, "changes": []}
    record.setdefault("versions", {})
    record.setdefault("changes", [])
    roles = [("primary", deployment.version), ("canary", deployment.canary_version), ("shadow", deployment.shadow_version)]
    changed, versions = False, []
    for role, number in roles:
        if number is None:
            continue
        found, moved = _judge_version(platform, name, deployment.model, number, role, record)
        versions.append(found)
        changed = changed or moved
    recorded = True
    if changed:
        record["changes"] = record["changes"][-CHANGES_KEEP:]
        try:
            serving.save_drift_record(name, record)
        except ReadOnlyError:
            recorded = False
    return DriftReport(name, tuple(versions), tuple(record["changes"]), recorded,
                       series={int(v): list(e.get("series", [])) for v, e in record["versions"].items()})


def _judge_version(platform, name: str, model: str, number: int, role: str, record: dict) -> tuple[VersionDrift, bool]:
    try:
        version = platform.registry.get_version(model, number)
        reference = drift_reference.stored(platform, version)
    except PlatformError as e:
        return VersionDrift(number, role, "no reference", note=str(e)), False
    if reference is None:
        how = ("is being computed in the background" if drift_reference.computing(platform, version)
               else f"is not computed yet; `dlptui drift {name} --reference` computes it")
        return VersionDrift(number, role, "no reference", note=f"its drift reference (from its training data) {how}."), False
    entry = record["versions"].get(str(number)) or {}
    if entry.get("reference") != reference.computed:  # a new reference: judged again from the start
        entry = {"reference": reference.computed, "last_id": 0, "state": None, "since": None, "series": []}
    rows = platform.serving.prediction_summaries(name, number, limit=stats.WINDOW + stats.STEP * (MOST - 1))
    rows = [r for r in rows if r.basis == reference.basis]
    base = stats.Reference(*drift_reference.drift_part(reference))
    moved = _judge_windows(base, rows, entry, record, number, role)
    everything = stats.Reference(reference.embeddings, reference.confidences)
    record["versions"][str(number)] = entry
    scored = platform.serving.prediction_summaries(name, number, limit=OUTLIER_LAST)
    scored = [r for r in scored if r.basis == reference.basis]
    rule = outlier_rule(everything)
    flagged = int(np.sum(outlier_scores(everything, [r.embedding for r in scored]) > rule.threshold)) if scored else 0
    series = entry["series"]
    common = dict(reference=reference.to_json(), outliers=flagged, scored=len(scored), outlier_rule=rule.to_json(),
                  scores=tuple(p["score"] for p in series))
    if not series:
        need = stats.MIN_WINDOW - len(rows)
        note = (f"not judged yet: {len(rows)} of its predictions carry a summary, the first window needs {stats.MIN_WINDOW}"
                f" ({need} more)." if need > 0 else "not judged yet.")
        return VersionDrift(number, role, stats.NOT_YET, note=note, **common), moved
    latest = series[-1]
    found = VersionDrift(number, role, latest["verdict"], latest=latest, since=entry.get("since"), **common)
    if found.state == stats.DRIFTING:
        found = _with_suggestion(platform, found, reference.data)
    return found, moved


def _judge_windows(base: stats.Reference, rows: list, entry: dict, record: dict, number: int, role: str) -> bool:
    """Judge the windows ending at every STEP new rows (the newest first chosen), append them to the entry's series,
    and a change to the record's changes where the verdict moved. Whether anything was judged."""
    last = entry.get("last_id", 0)
    new = next((i for i, r in enumerate(rows) if r.id > last), len(rows))
    ends = stats.window_ends(len(rows), new, judged=bool(entry["series"]), most=MOST)
    if not ends:
        return False
    for end in ends:
        window = rows[max(0, end - stats.WINDOW):end]
        result = stats.test_window(base, [r.embedding for r in window], [r.confidence for r in window], seed=window[-1].id)
        point = {"time": window[-1].time, "last_id": window[-1].id, **result.to_json()}
        entry["series"] = (entry["series"] + [point])[-SERIES_KEEP:]
        if result.verdict != entry.get("state"):
            if entry.get("state") is not None or result.verdict == stats.DRIFTING:
                record["changes"].append({"time": point["time"], "version": number, "role": role,
                                          "from": entry.get("state"), "to": result.verdict, "p_value": point["p_value"],
                                          "score": point["score"], "window": point["window"]})
            entry["state"], entry["since"] = result.verdict, point["time"]
        entry["last_id"] = window[-1].id
    return True


def _with_suggestion(platform, found: VersionDrift, data: str) -> VersionDrift:
    """Item 5 of the drift issue: say that it drifts, with the numbers, and what would retrain it; nothing retrains here."""
    from dataclasses import replace

    r = found.latest or {}
    repo, _, commit = data.partition("@")
    numbers = (f"p {_p(r.get('p_value', 1.0))} over its last {r.get('window')} predictions, score {r.get('score', 0):.1f} "
               f"(alarm at {_alarm(r)})")
    try:
        trained = platform.data.inspect_commit(repo, commit)
        newest = platform.data.inspect_commit(repo, trained.branch or "master")
    except PlatformError:
        trained = newest = None
    retrain_on = f"{repo}@{newest.id}" if newest is not None else ""
    if newest is not None and newest.id != trained.id:
        how = (f"retrain on the newest data commit, {repo}@{newest.id[:12]}: `dlptui train --data {repo}@{newest.id[:12]}`")
    else:
        how = (f"the newest commit of {repo} is the one it trained on, so add images like the ones it now gets "
               f"(`dlptui data put {repo} ...`), then retrain: `dlptui train --data {repo}@master`")
    try:
        platform.pipelines.inspect_pipeline(RETRAIN_PIPELINE)
        loop = f"; the retrain pipeline {RETRAIN_PIPELINE} trains on each new commit of {repo} by itself"
    except PlatformError:
        loop = f", or turn on retrain on commit (`dlptui pipeline create -f {RETRAIN_PIPELINE}`)"
    return replace(found, retrain_on=retrain_on,
                   suggestion=f"Version {found.version} drifts from the data it was trained on ({short(data)}): "
                              f"{numbers}; {how}{loop}. Nothing retrains by itself.")


def retrain(platform, version: VersionDrift):
    """What the suggestion says, done when a person asks for it (T on the Deployments screen): an experiment of the
    demo config on the newest commit of the data the drifting version was trained on. The started Experiment."""
    from dlptui.actions import training
    from dlptui.platform.model import DataRef

    if not version.retrain_on:
        raise InvalidInput(f"Version {version.version} has no data commit to retrain on; `dlptui train --data REPO@COMMIT` "
                           "names one.")
    repo, _, commit = version.retrain_on.partition("@")
    return training.start(platform, data=DataRef(repo, commit), name=f"retrain-v{version.version}-drift")


def history_entry(change: dict, model: str):
    """A recorded change of a version's drift verdict as an entry of the deployment's history."""
    from dlptui.platform.model import DeploymentChange

    return DeploymentChange(time=change["time"], change=f"drift: {change['to']} (p {_p(change['p_value'])}, window {change['window']})",
                            by="drift test", model=model, from_version=None, to_version=change["version"])


# --- outliers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    prediction: object  # platform.model.LoggedPrediction
    score: float | None  # None: no summary, or no reference for its version
    threshold: float | None

    @property
    def outlier(self) -> bool | None:
        return None if self.score is None else self.score > self.threshold


def score(platform, name: str, rows: list) -> list[Scored]:
    """Each logged prediction with its outlier score against its version's reference (None where there is none)."""
    model_of = {r.version: r.model for r in rows}
    scores: dict[int, tuple[float, float]] = {}
    for number, model in model_of.items():
        mine = [r for r in rows if r.version == number]
        try:
            reference = drift_reference.stored(platform, platform.registry.get_version(model, number))
        except PlatformError:
            reference = None
        if reference is None:
            continue
        summaries = [s for s in platform.serving.prediction_summaries(name, number, limit=len(mine)) if s.basis == reference.basis]
        if not summaries:
            continue
        base = stats.Reference(reference.embeddings, reference.confidences)
        threshold = outlier_rule(base).threshold
        values = outlier_scores(base, [s.embedding for s in summaries])
        scores.update({s.id: (float(v), threshold) for s, v in zip(summaries, values)})
    return [Scored(r, *scores.get(r.id, (None, None))) for r in rows]


def outliers(platform, name: str, since: float | None = None, limit: int = 1000) -> list[Scored]:
    """The outliers among the deployment's last `limit` logged predictions (after `since`), oldest first."""
    rows = platform.serving.predictions(name, since, limit)
    return [s for s in score(platform, name, rows) if s.outlier]
