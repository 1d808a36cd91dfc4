"""Pipeline specs in Pachyderm's own format, checked the same way on both profiles.

A spec (the mapping `pachctl create pipeline -f` reads from JSON or YAML) is parsed into
python-pachyderm's `CreatePipelineRequest` with protobuf's JSON parser, so a misspelt or
unknown field, or a value of the wrong type, is one sentence naming it before anything runs.
`Spec` is what both profiles then use: the name, the inputs (pfs, cross, union), the transform.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from dlptui.errors import InvalidInput, NotAvailable
from dlptui.platform.rules import check_branch_name, check_repo_name

DEFAULT_TRIES = 3  # pachd's default datum_tries
DEFAULT_IMAGE = "ubuntu:20.04"  # pachd's DefaultUserImage, which it gives a transform without an image
MAX_NAME = 51  # pachd's maxPipelineNameLength: its workers' Kubernetes name, default-NAME-v99, must fit 63


@dataclass(frozen=True)
class PfsInput:
    name: str  # the folder under /pfs (default: the repo's name)
    repo: str
    branch: str
    glob: str


@dataclass(frozen=True)
class InputTree:
    kind: str  # "pfs", "cross" or "union"
    pfs: PfsInput | None = None
    parts: tuple[InputTree, ...] = ()

    def leaves(self) -> list[PfsInput]:
        if self.pfs is not None:
            return [self.pfs]
        return [leaf for part in self.parts for leaf in part.leaves()]


@dataclass(frozen=True)
class Spec:
    name: str
    input: InputTree
    cmd: tuple[str, ...]
    stdin: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    image: str = ""
    parallelism: int = 0  # 0: the number of cores
    datum_tries: int = DEFAULT_TRIES
    output_branch: str = "master"
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the spec as given, for the record

    @property
    def workers(self) -> int:
        return self.parallelism or os.cpu_count() or 1


def request(spec: Mapping) -> Any:
    """The spec as python-pachyderm's CreatePipelineRequest; InvalidInput in one sentence for a bad field."""
    if not isinstance(spec, Mapping):
        raise InvalidInput("A pipeline spec is a JSON or YAML mapping with at least `pipeline`, `input` and `transform`.")
    try:  # python-pachyderm's own parser (protobuf's ParseDict into CreatePipelineRequest), on both profiles
        import python_pachyderm
    except ImportError:
        raise NotAvailable(
            "Checking a pipeline spec needs the Python package 'python_pachyderm'; install 'dlptui[local]' or 'dlptui[cluster]'."
        ) from None
    try:
        return python_pachyderm.parse_dict_pipeline_spec(dict(spec))
    except Exception as e:  # protobuf's ParseError: an unknown field or a value of the wrong type
        if type(e).__name__ != "ParseError":
            raise
        raise InvalidInput(f"The pipeline spec is not valid: {_sentence(str(e))}") from None


def _sentence(message: str) -> str:
    first = message.strip().splitlines()[0].rstrip(".")
    match = re.search(r'has no field named "([^"]+)" at "([^"]+)"', first)
    if match:
        where = match.group(2).replace("CreatePipelineRequest", "the spec")
        return f"{where} has no field {match.group(1)!r} (misspelt?)."
    return first + "."


def parse(spec: Mapping) -> Spec:
    """Check a spec (as `request` does) and what both profiles need of it; InvalidInput in one sentence."""
    req = request(spec)
    name = req.pipeline.name
    if not name:
        raise InvalidInput("The pipeline spec has no pipeline.name; give the pipeline (and its output repo) a name.")
    try:
        check_repo_name(name)
        if len(name) > MAX_NAME:
            raise InvalidInput(name)
    except InvalidInput:
        raise InvalidInput(
            f"{name!r} is not a valid pipeline name; use at most {MAX_NAME} letters, digits, '-' and '_' "
            "(it names the output repo, and pachd its workers, too)."
        ) from None
    if not req.HasField("input"):
        raise InvalidInput(f"Pipeline {name!r} has no input; give `input.pfs` with a repo and a glob.")
    tree = _input(req.input, name)
    names = [leaf.name for leaf in tree.leaves()]
    if len(set(names)) != len(names):
        raise InvalidInput(f"Pipeline {name!r} has two inputs named the same; give each pfs input its own `name`.")
    if "out" in names:
        raise InvalidInput(f"Pipeline {name!r} has an input named 'out', which is the output folder; rename it.")
    if name in {leaf.repo for leaf in tree.leaves()}:
        raise InvalidInput(f"Pipeline {name!r} reads its own output repo; a pipeline's input must be another repo.")
    if not req.transform.cmd:
        raise InvalidInput(f"Pipeline {name!r} has no transform.cmd; give the command to run on each datum.")
    if req.parallelism_spec.constant < 0 or req.datum_tries < 0:
        raise InvalidInput(f"Pipeline {name!r} has a negative parallelism_spec.constant or datum_tries.")
    output_branch = req.output_branch or "master"
    check_branch_name(output_branch)
    return Spec(
        name=name,
        input=tree,
        cmd=tuple(req.transform.cmd),
        stdin=tuple(req.transform.stdin),
        env=dict(req.transform.env),
        image=req.transform.image or DEFAULT_IMAGE,
        parallelism=int(req.parallelism_spec.constant),
        datum_tries=int(req.datum_tries) or DEFAULT_TRIES,
        output_branch=output_branch,
        description=req.description,
        raw=_plain(spec),
    )


def _input(message: Any, pipeline: str) -> InputTree:
    for kind in ("cross", "union"):
        parts = getattr(message, kind)
        if len(parts):
            if message.HasField("pfs"):
                raise InvalidInput(f"Pipeline {pipeline!r} has an input with both `pfs` and `{kind}`; nest the pfs input.")
            return InputTree(kind=kind, parts=tuple(_input(p, pipeline) for p in parts))
    for unsupported in ("join", "group"):
        if len(getattr(message, unsupported)):
            raise InvalidInput(f"Pipeline {pipeline!r} uses a `{unsupported}` input, which dlptui does not run; use pfs, cross or union.")
    for unsupported in ("cron",):
        if message.HasField(unsupported):
            raise InvalidInput(f"Pipeline {pipeline!r} uses a `{unsupported}` input, which dlptui does not run; use pfs, cross or union.")
    if not message.HasField("pfs"):
        raise InvalidInput(f"Pipeline {pipeline!r} has an empty input; give `pfs` with a repo and a glob.")
    pfs = message.pfs
    if not pfs.repo:
        raise InvalidInput(f"Pipeline {pipeline!r} has a pfs input without a repo.")
    check_repo_name(pfs.repo)
    if not pfs.glob:
        raise InvalidInput(f"Input {pfs.repo!r} of pipeline {pipeline!r} has no glob; '/' takes the whole commit, '/*' each top-level entry.")
    if not pfs.glob.startswith("/"):
        raise InvalidInput(f"The glob {pfs.glob!r} of input {pfs.repo!r} must start with '/'.")
    branch = pfs.branch or "master"
    check_branch_name(branch)
    return InputTree(kind="pfs", pfs=PfsInput(name=pfs.name or pfs.repo, repo=pfs.repo, branch=branch, glob=pfs.glob))


def _plain(spec: Mapping) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(dict(spec), default=str))


def load(text: str, source: str = "the spec") -> dict[str, Any]:
    """A spec file's text (JSON or YAML) as a mapping; InvalidInput in one sentence when it is neither."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        import yaml

        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise InvalidInput(f"{source} is neither JSON nor YAML{line}; check its syntax.") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{source} is not a mapping; a pipeline spec starts with `pipeline: {{name: ...}}`.")
    return value
