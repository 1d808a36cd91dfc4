"""Pipeline specs in Pachyderm's own format, checked the same way on both profiles.

A spec (the mapping `pachctl create pipeline -f` reads from JSON or YAML) is parsed into
python-pachyderm's `CreatePipelineRequest` with protobuf's JSON parser, so a misspelt or
unknown field, or a value of the wrong type, is one sentence naming it before anything runs.
`Spec` is what both profiles then use: the name, the inputs (pfs, cross, union), the transform.

The rules here hold on both profiles, before a spec reaches pachd or the local runner:

- `datum_timeout` and `job_timeout` take Pachyderm's duration format ("30s", "1m", "1h5m", "1.5h"), turned into
  the protobuf Duration pachd receives; a timeout is positive.
- An input's `name` names its folder (/pfs/<name>) and an environment variable of the code (pachd sets one per
  input, and `<name>_COMMIT`), so it follows the NAME rule (letters, digits, '-' and '_'; no '/', no '..': a
  name such as '../../../tmp/escape' would copy the inputs outside the datum's folder), and it may not be a
  variable the runner sets for the code or one that changes how a program or its loader starts: see
  `check_input_name` (PATH, HOME, LD_*, PYTHON*, DLPTUI_*, PACH_*, PPS_*, ...).
- A glob is a path inside the repo: it starts with '/' and has no '.' or '..' segment nor a control character.
- A `transform.env` key is a plain variable name and does not name an input's variable (pachd would overwrite it).

Which fields a profile honours, notes or refuses is the profile's own (the local runner: `local/pipeline_support.py`):
`Spec.fields` lists the fields a spec sets, by their dotted names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from dlptui.errors import InvalidInput, NotAvailable
from dlptui.platform.rules import DEFAULT_BRANCH, NAME, check_branch_name, check_repo_name

DEFAULT_TRIES = 3  # pachd's default datum_tries
DEFAULT_IMAGE = "ubuntu:20.04"  # pachd's DefaultUserImage, which it gives a transform without an image
MAX_NAME = 51  # pachd's maxPipelineNameLength: its workers' Kubernetes name, default-NAME-v99, must fit 63
TIMEOUTS = ("datum_timeout", "job_timeout")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# What an input name may not be (it becomes an environment variable of the code): the variables a runner
# sets for the code (pachd's and dlptui's), and those that change how a shell, a loader or an interpreter starts.
RESERVED_NAMES = frozenset({
    "out", "PFS", "PATH", "HOME", "PWD", "OLDPWD", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "LANG", "LANGUAGE",
    "TMPDIR", "TEMP", "TMP", "IFS", "ENV", "BASH_ENV", "CDPATH", "SHELLOPTS", "BASHOPTS", "PS4", "PERL5LIB",
    "PERL5OPT", "PERLLIB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS",
    "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF", "TORCH_HOME",
    "CUDA_VISIBLE_DEVICES", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "no_proxy", "NO_PROXY",
})
RESERVED_PREFIXES = ("LD_", "LC_", "PYTHON", "DLPTUI_", "PACH_", "PPS_", "XDG_", "MALLOC_", "BASH_FUNC_", "DET_",
                     "KUBE", "OMP_", "MKL_", "OPENBLAS_", "GIT_")


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
    output_branch: str = DEFAULT_BRANCH
    description: str = ""
    datum_timeout: float | None = None  # seconds; None: no limit
    job_timeout: float | None = None
    accept_return_code: tuple[int, ...] = ()  # exit codes that count as success besides 0
    salt: str = ""  # part of every datum's identity: a new salt runs every datum again
    reprocess_every_job: bool = False  # reprocess_spec "every_job": no datum is skipped
    fields: tuple[str, ...] = ()  # the fields the spec sets, dotted ("transform.cmd", "resource_limits.memory")
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
    body = dict(spec)
    for key in TIMEOUTS:
        if isinstance(body.get(key), str):
            body[key] = _proto_duration(parse_duration(body[key], key))
    try:
        return python_pachyderm.parse_dict_pipeline_spec(body)
    except Exception as e:  # protobuf's ParseError: an unknown field or a value of the wrong type
        if type(e).__name__ != "ParseError":
            raise
        raise InvalidInput(f"The pipeline spec is not valid: {_sentence(str(e))}") from None


def parse_duration(text: str, what: str = "the duration") -> float:
    """Pachyderm's (Go's) duration format in seconds: "30s", "1m", "1h5m", "1.5h", "250ms"; InvalidInput otherwise."""
    given = text.strip() if isinstance(text, str) else text
    if not isinstance(given, str) or not given or _DURATION_PART.sub("", given) != "":
        raise InvalidInput(f"{what} {text!r} is not a duration; write it as Pachyderm does: \"30s\", \"1m\", \"1h5m\".")
    seconds = sum(float(number) * _UNIT_S[unit] for number, unit in _DURATION_PART.findall(given))
    if seconds <= 0:
        raise InvalidInput(f"{what} {text!r} is not positive; give a time such as \"30s\", or leave {what} out for no limit.")
    return seconds


def _proto_duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _seconds(duration: Any) -> float | None:
    value = duration.seconds + duration.nanos / 1e9
    return value if value > 0 else None


def fields_set(message: Any, prefix: str = "") -> list[str]:
    """The dotted names of the fields a protobuf message sets (a message's own and its children's; a repeated
    message's children under the field's name)."""
    found = []
    for descriptor, value in message.ListFields():
        name = f"{prefix}{descriptor.name}"
        found.append(name)
        kind = descriptor.message_type
        if kind is None or kind.GetOptions().map_entry or kind.full_name.startswith("google.protobuf."):
            continue  # a scalar, a map (transform.env) or a well-known type (a Duration): no fields of its own here
        items = value if descriptor.label == descriptor.LABEL_REPEATED else [value]
        for item in items:
            found += fields_set(item, name + ".")
    return sorted(set(found))


def check_input_name(name: str, pipeline: str) -> str:
    """An input's name (its /pfs folder and its environment variable): the NAME rule, and none of the names
    a runner sets for the code or that change how a program starts (RESERVED_NAMES, RESERVED_PREFIXES,
    anything ending in _COMMIT, which pachd sets per input)."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            f"Input name {name!r} of pipeline {pipeline!r} is not valid: use letters, digits, '-' and '_' "
            "(it names the input's folder under /pfs, so no '/' and no '..')."
        )
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES) or name.endswith("_COMMIT"):
        raise InvalidInput(
            f"Input name {name!r} of pipeline {pipeline!r} is refused: it would become the code's environment variable "
            f"{name}, which the runner sets or which changes how programs start (PATH, HOME, LD_*, PYTHON*, DLPTUI_*, "
            "PACH_*...); give the input another `name`."
        )
    return name


def check_glob(glob: str, repo: str, pipeline: str) -> str:
    if not glob:
        raise InvalidInput(f"Input {repo!r} of pipeline {pipeline!r} has no glob; '/' takes the whole commit, '/*' each top-level entry.")
    if not glob.startswith("/"):
        raise InvalidInput(f"The glob {glob!r} of input {repo!r} must start with '/'.")
    if _CONTROL.search(glob) or any(part in (".", "..") for part in glob.split("/")):
        raise InvalidInput(
            f"The glob {glob!r} of input {repo!r} of pipeline {pipeline!r} has a '.' or '..' segment or a control "
            "character; a glob is a path inside the repo, such as '/*' or '/train/*'."
        )
    return glob


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
    for leaf_name in names:
        check_input_name(leaf_name, name)
    taken = set(names) | {f"{n}_COMMIT" for n in names}
    for key in req.transform.env:
        if not ENV_KEY.match(key):
            raise InvalidInput(f"transform.env of pipeline {name!r} has the key {key!r}; a variable name is letters, digits and '_'.")
        if key in taken:
            raise InvalidInput(
                f"transform.env of pipeline {name!r} sets {key}, which the runner sets for an input; rename the input or the variable."
            )
    if name in {leaf.repo for leaf in tree.leaves()}:
        raise InvalidInput(f"Pipeline {name!r} reads its own output repo; a pipeline's input must be another repo.")
    if not req.transform.cmd:
        raise InvalidInput(f"Pipeline {name!r} has no transform.cmd; give the command to run on each datum.")
    if req.parallelism_spec.constant < 0 or req.datum_tries < 0:
        raise InvalidInput(f"Pipeline {name!r} has a negative parallelism_spec.constant or datum_tries.")
    output_branch = req.output_branch or DEFAULT_BRANCH
    check_branch_name(output_branch)
    if req.reprocess_spec not in ("", "until_success", "every_job"):
        raise InvalidInput(f"Pipeline {name!r} has reprocess_spec {req.reprocess_spec!r}; use \"until_success\" or \"every_job\".")
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
        datum_timeout=_seconds(req.datum_timeout) if req.HasField("datum_timeout") else None,
        job_timeout=_seconds(req.job_timeout) if req.HasField("job_timeout") else None,
        accept_return_code=tuple(int(c) for c in req.transform.accept_return_code),
        salt=req.salt,
        reprocess_every_job=req.reprocess_spec == "every_job",
        fields=tuple(fields_set(req)),
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
    check_glob(pfs.glob, pfs.repo, pipeline)
    branch = pfs.branch or DEFAULT_BRANCH
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
