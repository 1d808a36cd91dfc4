"""What the local runner does with each field of a pipeline spec: honours it, ignores it with a note, or refuses it.

pachd supports every field of its CreatePipelineRequest, and the cluster profile sends them all; the local
runner runs `cmd` as a plain process on this machine, so a field it cannot honour is never parsed and silently
dropped: `check(spec)` refuses the spec in one sentence (InvalidInput, nothing is created), or returns the notes
that `pipeline inspect` shows in its detail for a field that means nothing on one machine.

A field of a newer Pachyderm that is in no list below is refused (the safe default).
"""

from __future__ import annotations

from dlptui.errors import InvalidInput
from dlptui.platform.pipeline_spec import Spec

HONOURED = frozenset({
    "pipeline", "pipeline.name", "description", "input", "input.pfs", "input.cross", "input.union",
    "input.pfs.name", "input.pfs.repo", "input.pfs.branch", "input.pfs.glob",
    "transform", "transform.cmd", "transform.stdin", "transform.env", "transform.image", "transform.accept_return_code",
    "parallelism_spec", "parallelism_spec.constant", "datum_tries", "output_branch", "datum_timeout", "job_timeout",
    "salt", "reprocess_spec",
})

# ignored, with the note shown: a field that only matters where there is a scheduler, a container or a cluster
NOTED = {
    "resource_requests": "resource_requests (one machine: nothing to schedule)",
    "sidecar_resource_requests": "sidecar_resource_requests (no sidecar locally)",
    "sidecar_resource_limits": "sidecar_resource_limits (no sidecar locally)",
    "scheduling_spec": "scheduling_spec (Kubernetes only)",
    "pod_spec": "pod_spec (Kubernetes only)",
    "pod_patch": "pod_patch (Kubernetes only)",
    "tolerations": "tolerations (Kubernetes only)",
    "metadata": "metadata (Kubernetes annotations and labels)",
    "autoscaling": "autoscaling (one runner serves every pipeline)",
    "datum_set_spec": "datum_set_spec (datums are not batched into sets locally)",
    "transform.image_pull_secrets": "transform.image_pull_secrets (no image is pulled)",
    "transform.working_dir": "transform.working_dir (a folder of the image; the code runs in its datum's work folder)",
    "transform.user": "transform.user (the code runs as you)",
    "transform.debug": "transform.debug",
    "transform.memory_volume": "transform.memory_volume (no volumes locally)",
    "transform.dockerfile": "transform.dockerfile (no image is built)",
    "input.pfs.lazy": "input.pfs.lazy (inputs are copied)",
    "input.pfs.empty_files": "input.pfs.empty_files (inputs are copied whole)",
}

# refused: honouring them is beyond one machine's runner, and running without them would do something else
REFUSED = {
    "resource_limits": "the local runner cannot enforce resource_limits on a plain process; remove them to run it here, "
                       "or run it on the cluster profile",
    "egress": "there is no egress locally; write the output yourself from the code or run it on the cluster profile",
    "s3_out": "there is no S3 gateway locally",
    "service": "the local runner does not run services",
    "spout": "the local runner does not run spouts",
    "tf_job": "the local runner does not run TFJobs",
    "update": "there is no update locally; delete the pipeline and create it again",
    "reprocess": "use reprocess_spec \"every_job\"",
    "spec_commit": "spec_commit is pachd's own field",
    "details_json": "details_json is pachd's own field",
    "dry_run": "there is no dry run locally",
    "determined": "the Determined section of a pipeline needs pachd with Determined",
    "transform.err_cmd": "error handlers (err_cmd) are not run locally",
    "transform.err_stdin": "error handlers (err_stdin) are not run locally",
    "transform.secrets": "there are no Kubernetes secrets locally; give the code its settings in transform.env "
                         "(never a secret in a spec file) or run it on the cluster profile",
    "transform.datum_batching": "datum batching needs pachd's worker protocol",
    "input.pfs.project": "there are no projects locally but the default one",
    "project": "there are no projects locally but the default one",
    "input.pfs.repo_type": "only user repos are inputs locally",
    "input.pfs.commit": "an input pinned to a commit is not run locally; commit to a branch and name the branch",
    "input.pfs.join_on": "join inputs are not run locally",
    "input.pfs.outer_join": "join inputs are not run locally",
    "input.pfs.group_by": "group inputs are not run locally",
    "input.pfs.s3": "there is no S3 gateway locally",
    "input.pfs.trigger": "branch triggers are not run locally",
}

# what the local runner sets for the code after the spec's env: a spec's value for one of these is not used
RUNNER_VARS = ("DLPTUI_HOME", "DLPTUI_PROFILE")


def _general(name: str) -> str:
    """`input.cross.union.pfs.glob` -> `input.pfs.glob`: a field means the same at any depth of the input tree."""
    parts = name.split(".")
    if parts[0] != "input":
        return name
    rest = [p for p in parts[1:] if p not in ("cross", "union")]
    return ".".join(["input", *rest]) if rest else "input"


def check(spec: Spec) -> tuple[str, ...]:
    """InvalidInput in one sentence for a field the local runner refuses; else the notes of those it ignores."""
    notes: list[str] = []
    default_project = _projects(spec.raw) <= {"", "default"}
    for name in spec.fields:
        field = _general(name)
        key = field if field.startswith(("transform.", "input.", "pipeline.")) else field.split(".")[0]
        if key.startswith(("pipeline.project", "input.pfs.project")) and default_project:
            continue  # the default project is the only one there is
        if key in HONOURED:
            continue
        if key in NOTED:
            if NOTED[key] not in notes:
                notes.append(NOTED[key])
            continue
        why = REFUSED.get(key.removeprefix("pipeline.").replace("project.name", "project"),
                          "the local runner does not know this field")
        raise InvalidInput(f"Pipeline {spec.name!r} sets {key}, which the local profile refuses: {why}.")
    overridden = sorted(k for k in spec.env if k in RUNNER_VARS)
    if overridden:
        notes.append(f"transform.env {', '.join(overridden)} (the local runner sets {'them' if len(overridden) > 1 else 'it'})")
    return tuple(notes)


def _projects(raw: dict) -> set[str]:
    """The projects a spec names (its pipeline's and its inputs')."""
    found: set[str] = set()

    def name(project) -> str:
        return str(project.get("name", "")) if isinstance(project, dict) else str(project or "")

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pfs"), dict):
                found.add(name(node["pfs"].get("project")))
            for part in (node.get("cross") or []) + (node.get("union") or []):
                walk(part)

    if isinstance(raw.get("pipeline"), dict):
        found.add(name(raw["pipeline"].get("project")))
    walk(raw.get("input"))
    return found


def note_sentence(notes: tuple[str, ...]) -> str:
    """The notes as one sentence for the pipeline's detail ("" for none)."""
    return f"Not used locally: {'; '.join(notes)}." if notes else ""
