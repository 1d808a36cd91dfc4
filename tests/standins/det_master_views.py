"""The master stand-in's answers as the determined SDK's own binding objects (tests only), built from
det_master_state.py as a 0.38.1 master builds them (master/internal/api_experiment.go, api_trials.go,
api_model.go):

- an experiment's ACTIVE state is refined by its trials' allocations: RUNNING if one runs, else the most
  advanced of STARTING, PULLING, QUEUED (QUEUED with no allocation); a trial's likewise by its own;
- the experiment listing (`getExperimentColumns`) carries no trial ids and fills `bestTrialSearcherMetric`
  (the best trial's searcher metric) only when asked with `showTrialData=true`; one experiment
  (`getExperimentTx`) carries its trial ids and neither;
- a checkpoint's state is COMPLETED, or DELETED once the GC took it.
"""

from __future__ import annotations

import yaml
from determined.common.api import bindings as b

from tests.standins.det_master_state import ALLOCATION, USER, MasterError, MasterState, stamp


def _refined(state: str, allocations: list[str | None]) -> str:
    if state != "ACTIVE":
        return state
    found = [a for a in allocations if a]
    return max(found, key=ALLOCATION.index) if found else "QUEUED"


def experiment(s: MasterState, exp_id: int, listing: bool = False, trial_data: bool = False) -> b.v1Experiment:
    s.settle()
    e = s.experiments.get(exp_id)
    if e is None:
        raise MasterError("NotFound", f"experiment not found: {exp_id}")
    c = e["config"]
    searcher = c.get("searcher") or {}
    trial_ids = s.experiment_trials(exp_id)
    state = _refined(e["state"], [s.trials[t]["allocation"] for t in trial_ids])
    best = None
    if listing and trial_data:
        scored = [v for v in (_best_validation(s, t) for t in trial_ids) if v]
        metric, smaller = searcher.get("metric"), searcher.get("smaller_is_better", True) is not False
        if scored:
            pick = min if smaller else max
            best = pick(scored, key=lambda r: r["metrics"]["validation_metrics"][metric])["metrics"]["validation_metrics"][metric]
    max_len = (c.get("hyperparameters") or {}).get("max_batches") or searcher.get("max_time") or (searcher.get("max_length") or {}).get("batches", 0)
    max_len = max_len.get("val", 0) if isinstance(max_len, dict) else max_len
    done = sum(s.trials[t]["batches"] for t in trial_ids)
    extra = {"bestTrialSearcherMetric": best} if listing and trial_data else {}
    return b.v1Experiment(
        archived=False, config=c, id=exp_id, jobId=f"job-{exp_id}", name=c.get("name") or f"Experiment {exp_id}",
        numTrials=len(trial_ids), originalConfig=yaml.safe_dump(e.get("original", c)), projectId=1, projectOwnerId=1,
        searcherType=searcher.get("name", "single"), startTime=stamp(e["start"]), endTime=stamp(e["end"]) if e["end"] else None,
        state=b.experimentv1State(f"STATE_{state}"), username=USER, trialIds=None if listing else trial_ids,
        progress=min(1.0, done / (max_len * len(trial_ids))) if max_len and trial_ids else None,
        searcherMetric=searcher.get("metric"), **extra,
    )


def _best_validation(s: MasterState, trial_id: int) -> dict | None:
    """The trial's validation report with the best searcher metric, as the master ranks them."""
    metric, smaller = s.searcher(trial_id)
    scored = [r for r in s.reports if r["trialId"] == trial_id and metric in r["metrics"].get("validation_metrics", {})]
    pick = min if smaller else max
    return pick(scored, key=lambda r: r["metrics"]["validation_metrics"][metric], default=None)


def _best_checkpoint(s: MasterState, trial_id: int) -> dict | None:
    """The trial's completed checkpoint with the best searcher metric, ties to the latest."""
    metric, smaller = s.searcher(trial_id)
    mine = [c for c in s.checkpoints.values() if c["trial"] == trial_id and c["state"] == "COMPLETED" and metric in c["metrics"]]
    sign = 1 if smaller else -1
    return min(mine, key=lambda c: (sign * c["metrics"][metric], -c["batch"]), default=None)


def trial(s: MasterState, trial_id: int) -> b.trialv1Trial:
    s.settle()
    t = s.trials.get(trial_id)
    if t is None:
        raise MasterError("NotFound", f"trial not found: {trial_id}")
    best, top = _best_validation(s, trial_id), _best_checkpoint(s, trial_id)
    metric, _ = s.searcher(trial_id)
    return b.trialv1Trial(
        experimentId=t["experiment"], hparams=t["hparams"], id=trial_id, restarts=0, startTime=stamp(t["start"]),
        endTime=stamp(t["end"]) if t["end"] else None,
        state=b.trialv1State(f"STATE_{_refined(t['state'], [t['allocation']])}"), totalBatchesProcessed=t["batches"],
        bestCheckpoint=b.v1CheckpointWorkload(state=b.checkpointv1State.COMPLETED, totalBatches=top["batch"], uuid=top["uuid"])
        if top else None,
        bestValidation=b.v1MetricsWorkload(
            metrics=b.v1Metrics(avgMetrics=best["metrics"]["validation_metrics"]), numInputs=0,
            totalBatches=best["totalBatches"], endTime=stamp(best["endTime"])) if best else None,
        searcherMetricValue=best["metrics"]["validation_metrics"][metric] if best else None,
        taskId=f"{t['experiment']}.{trial_id}",
    )


def checkpoint(s: MasterState, ckpt: str) -> b.v1Checkpoint:
    c = s.checkpoints.get(ckpt)
    if c is None:
        raise MasterError("NotFound", f"checkpoint not found: {ckpt}")
    exp = s.experiments[s.trials[c["trial"]]["experiment"]]
    metric, _ = s.searcher(c["trial"])
    training = b.v1CheckpointTrainingMetadata(
        experimentConfig=exp["config"], experimentId=exp["id"], trialId=c["trial"],
        hparams=s.trials[c["trial"]]["hparams"], validationMetrics=b.v1Metrics(avgMetrics=c["metrics"]),
        searcherMetric=c["metrics"].get(metric),
    )
    return b.v1Checkpoint(
        metadata={"steps_completed": c["batch"], "framework": "torch"}, resources=_resources(s, ckpt),
        state=b.checkpointv1State(f"STATE_{c.get('state', 'COMPLETED')}"), training=training, uuid=ckpt,
        reportTime=stamp(c["time"]), taskId=f"{exp['id']}.{c['trial']}",
    )


def _resources(s: MasterState, ckpt: str) -> dict:
    folder = s.files.get(ckpt)
    if folder is None:
        return {"state_dict.pth": 1024}
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def model(s: MasterState, identifier: str) -> b.v1Model:
    m = s.find_model(identifier)
    return b.v1Model(
        archived=False, creationTime=stamp(m["created"]), id=m["id"], lastUpdatedTime=stamp(m["updated"]),
        metadata=m["metadata"], name=m["name"], numVersions=len(m["versions"]), userId=1, username=USER,
        workspaceId=1, description=m["description"], labels=m["labels"],
    )


def version(s: MasterState, identifier: str, number: int) -> b.v1ModelVersion:
    m = model(s, identifier)
    v = next((v for v in s.models[m.name]["versions"] if v["version"] == number), None)
    if v is None:
        raise MasterError("NotFound", f'version {number} for model "{identifier}" not found')
    return b.v1ModelVersion(
        checkpoint=checkpoint(s, v["checkpoint"]), creationTime=stamp(v["created"]), id=m.id * 1000 + number,
        lastUpdatedTime=stamp(v["created"]), model=m, version=number, notes=v["notes"], name=v["name"],
        labels=v["labels"], metadata=v["metadata"], username=USER,
    )
