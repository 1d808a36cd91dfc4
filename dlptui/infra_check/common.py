"""What the checks of `dlptui infra check` share: the Check row, the Secrets create-secrets.sh declares,
and the SeldonDeployment the serving adapter renders for a sample model (from the infra/ folder checked)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET_LINE = re.compile(r'^\s*"(?P<ns>[a-z0-9-]+)\s+(?P<name>[a-z0-9.-]+)\s+(?P<pairs>[^"]+)"\s*$', re.M)
TEMPLATE = ("seldon", "deployment.yaml.tmpl")
SAMPLE = {
    "name": "dogcat-deploy",
    "namespace": "seldon",
    "image": "us-docker.pkg.dev/my-project/dlptui/dlptui-serving:0.1.0",
    "model": "dogcat-model",
    "version": 3,
}
# where the sample's versions keep their checkpoints: the checkpoint bucket of helm/determined.yaml (version 3),
# and a shared_fs storage (version 2, the canary: its read-only mount is checked too)
SAMPLE_STORAGE = {
    3: ("gcs", "3f1c2a9e-0000-4000-8000-000000000003", {"bucket": "my-project-dlp-checkpoints", "prefix": "checkpoints"}),
    2: ("shared_fs", "3f1c2a9e-0000-4000-8000-000000000002", {"host_path": "/mnt/determined", "storage_path": "checkpoints"}),
}


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    detail: str
    warning: bool = False  # a missing tool or variable: reported, never a failure


def get(tree: Any, *keys: str) -> Any:
    """tree[k1][k2]... or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def declared_secrets(script: Path, optional: bool | None = None) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(namespace, Secret) -> [(key, ENV_VAR)] as declared in create-secrets.sh (its SECRETS
    and OPTIONAL lists; `optional` picks one of the two)."""
    if not script.is_file():
        return {}
    text = script.read_text()
    required, _, optional_part = text.partition("OPTIONAL=(")
    text = {None: text, True: optional_part, False: required}[optional]
    found = {}
    for m in SECRET_LINE.finditer(text):
        # key=VARIABLE; a bare VARIABLE names a file (the certificate and key of a TLS Secret)
        pairs = [tuple(p.split("=", 1)) if "=" in p else ("file", p) for p in m["pairs"].split()]
        found[(m["ns"], m["name"])] = pairs
    return found


def render_samples(infra: Path | None = None) -> list[tuple[str, dict]]:
    """The adapter's SeldonDeployment for the sample, plain and with a canary, from the template of
    `infra` (default: the one dlptui ships)."""
    from dlptui.platform.cluster.seldon_template import render_deployment
    from dlptui.platform.model import CheckpointStorage

    template = infra.joinpath(*TEMPLATE) if infra is not None else None
    storage = {n: CheckpointStorage(kind, uuid, **where) for n, (kind, uuid, where) in SAMPLE_STORAGE.items()}
    return [
        ("plain", render_deployment(**SAMPLE, storage=storage, template=template)),
        ("canary", render_deployment(**SAMPLE, storage=storage, canary=2, traffic=80, template=template)),
    ]
