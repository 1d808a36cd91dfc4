"""What the pachd stand-in's CreatePipeline checks, and the defaults it fills, as pachd does (tests only).

Written from pachd's `createPipeline` and `CreatePipelineInTransaction` (src/server/pps/server/api_server.go,
2.12.x and v2.7.8 alike; src/internal/ppsutil ValidateNames), in pachd's order and words:
- the request: a pipeline name (`ancestry.ValidateName`: letters, digits, '_' and '-'), at most 51 characters (the
  Kubernetes RC name `default-NAME-v99` must fit 63), starting with a letter or digit; a transform; no TFJob;
  no s3_out with a service or spout; a reprocess_spec of until_success or every_job; no autoscaling spout;
- the defaults: the image `ubuntu:20.04` when none is given (an empty `transform.image` is NOT refused: pachd
  fills it before it checks), output branch `master`, datum_tries 3, reprocess_spec `until_success`, a pfs
  input's branch `master` and name its repo, the glob cleaned;
- then the pipeline: each pfs input has a repo and a glob, no input is named `out` or `.env` and no name is used
  twice, no input comes from a commit, one input type per input; a service runs with parallelism 1; pod_spec and
  pod_patch are JSON; a spout without a service has no input;
- a transform secret names a Kubernetes secret (the stand-in has none: "missing Kubernetes secret");
- every input repo exists (NOT_FOUND "repo default/x not found"), and a new pipeline's name is not an existing
  repo's ("pipeline "x" cannot be created because a repo with the same name already exists").
These are the errors pachd makes with `errors.Errorf`: UNKNOWN on the wire.
"""

from __future__ import annotations

import json
import posixpath

import grpc

from tests.standins.pachd_state import PROJECT, Abort
from tests.standins.pachd_pfs import NAME

DEFAULT_IMAGE = "ubuntu:20.04"  # pachd's DefaultUserImage
DEFAULT_TRIES = 3  # pachd's DefaultDatumTries
MAX_NAME = 51  # maxPipelineNameLength
REPROCESS = ("until_success", "every_job")


def _unknown(text: str) -> Abort:
    return Abort(grpc.StatusCode.UNKNOWN, text)


def visit(message) -> list:
    """Every input of the tree, the parts before the whole (pps.VisitInput)."""
    out = []
    for kind in ("cross", "join", "group", "union"):
        for part in getattr(message, kind):
            out += visit(part)
    return out + [message]


def leaves(message) -> list:
    return [i.pfs for i in visit(message) if i.HasField("pfs")]


def check_request(request) -> None:
    """validatePipelineRequest: before the defaults."""
    name = request.pipeline.name
    if not name:
        raise _unknown("invalid pipeline spec: request.Pipeline.Name cannot be empty")
    if not NAME.match(name):
        raise _unknown(f"invalid pipeline name: name ({name}) invalid: only alphanumeric characters, underscores, and dashes are allowed")
    if len(name) > MAX_NAME:
        raise _unknown(f'pipeline name "{name}" is {len(name) - MAX_NAME} characters longer than the {MAX_NAME} max')
    if request.HasField("tf_job"):
        raise _unknown("embedding TFJobs in pipelines is not supported yet")
    if request.s3_out and (request.HasField("service") or request.HasField("spout")):
        raise _unknown("s3 output is not supported in spouts or services")
    if not request.HasField("transform"):
        raise _unknown("pipeline must specify a transform")
    if request.reprocess_spec and request.reprocess_spec not in REPROCESS:
        raise _unknown("invalid pipeline spec: ReprocessSpec must be one of 'until_success' or 'every_job'")
    if request.HasField("spout") and request.autoscaling:
        raise _unknown("autoscaling can't be used with spouts (spouts aren't triggered externally)")


def fill_defaults(request) -> None:
    """setPipelineDefaults, on the request the stand-in keeps as the pipeline's details."""
    if not request.transform.image:
        request.transform.image = DEFAULT_IMAGE
    for pfs in leaves(request.input):
        pfs.branch = pfs.branch or "master"
        pfs.name = pfs.name or pfs.repo
        pfs.repo_type = pfs.repo_type or "user"
        if pfs.glob:
            pfs.glob = posixpath.normpath("/" + pfs.glob.strip("/")) if pfs.glob.strip("/") else "/"
    request.output_branch = request.output_branch or "master"
    request.datum_tries = request.datum_tries or DEFAULT_TRIES
    request.reprocess_spec = request.reprocess_spec or "until_success"


def check_pipeline(request) -> None:
    """validatePipeline: after the defaults."""
    name = request.pipeline.name
    if not name[0].isalnum():
        raise _unknown("pipeline names must start with an alphanumeric character")
    if not request.transform.image:
        raise _unknown("invalid transform: pipeline transform must contain an image")
    _check_names(request.input, set())
    for i in visit(request.input) if request.HasField("input") else []:
        kinds = [k for k in ("pfs", "cron") if i.HasField(k)] + [k for k in ("cross", "join", "group", "union") if len(getattr(i, k))]
        if len(kinds) > 1:
            raise _unknown("multiple input types set")
        if not kinds:
            raise _unknown("no input set")
        if i.HasField("pfs"):
            pfs = i.pfs
            if not pfs.repo:
                raise _unknown("input must specify a repo")
            if not pfs.glob and not pfs.s3:
                raise _unknown("input must specify a glob")
            if pfs.commit:
                raise _unknown("input cannot come from a commit; use a branch with head pointing to the commit")
    if request.HasField("service") and request.parallelism_spec.constant not in (0, 1):
        raise _unknown("services can only be run with a constant parallelism of 1")
    for field, label in (("pod_spec", "PodSpec"), ("pod_patch", "PodPatch")):
        text = getattr(request, field)
        if text:
            try:
                json.loads(text)
            except ValueError:
                raise _unknown(f"malformed {label}") from None
    if request.HasField("spout") and not request.spout.HasField("service") and request.HasField("input"):
        raise _unknown("spout pipelines (without a service) must not have an input")


def _check_names(message, names: set) -> None:
    """ppsutil.ValidateNames: a union's parts may share names, nothing else may."""
    if message.HasField("pfs") or message.HasField("cron"):
        name = message.pfs.name if message.HasField("pfs") else message.cron.name
        if not name:
            raise _unknown("input must specify a name")
        if name in ("out", ".env"):
            raise _unknown(f"input cannot be named {name}")
        if name in names:
            raise _unknown(f'name "{name}" was used more than once')
        names.add(name)
    elif len(message.union):
        found: set = set()
        for part in message.union:
            mine = set(names)
            _check_names(part, mine)
            found |= mine
        names |= found
    else:
        for kind in ("cross", "join", "group"):
            for part in getattr(message, kind):
                _check_names(part, names)


def check_secrets(request) -> None:
    for secret in request.transform.secrets:
        if secret.env_var and not secret.key:
            raise _unknown(f"secret {secret.name} has env_var set but is missing key")
        raise _unknown(f"missing Kubernetes secret {secret.name}")


def check_repos(request, repos: dict, existing: bool) -> None:
    """The input repos exist; a new pipeline's output repo does not."""
    for pfs in leaves(request.input):
        if pfs.repo not in repos:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"repo {PROJECT}/{pfs.repo} not found")
    name = request.pipeline.name
    if not existing and name in repos:
        raise _unknown(f'pipeline "{name}" cannot be created because a repo with the same name already exists')
