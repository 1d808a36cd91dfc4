"""`dlptui infra check` on serving: the predictions endpoint asks for the serving token (an Istio
AuthorizationPolicy on the ingress gateway) and the model server's pod is locked down. Each insecure
variant of a copy of infra/ fails its check in one sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dlptui.infra_check.checks import failed, run_checks
from dlptui.infra_check.manifest_schema import validate_object
from tests.helpers import INFRA, ROOT

POLICY = INFRA / "istio" / "serving-auth.yaml"


def copy_of_infra(tmp_path: Path) -> Path:
    shutil.copytree(INFRA, tmp_path / "infra")
    return tmp_path


def checked(root: Path) -> dict:
    return {c.check: c for c in run_checks(root, env={})}


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}: the test needs updating"
    path.write_text(text.replace(old, new))


def test_the_shipped_policy_and_pod_pass():
    found = checked(ROOT)
    for name in ("security serving authorization", "security serving pod", "security gateway"):
        assert found[name].ok, found[name]
    assert found["manifest infra/istio/serving-auth.yaml#0 AuthorizationPolicy/seldon-predictions-need-the-serving-token"].ok


def test_the_authorization_policy_schema_catches_what_istio_would_refuse():
    policy = yaml.safe_load(POLICY.read_text())
    assert validate_object(policy) == []
    policy["spec"]["rules"][0]["to"][0]["operation"]["paths"] = "/seldon/*"
    policy["spec"]["rulez"] = []
    policy["spec"]["action"] = "PERMIT"
    errors = validate_object(policy)
    assert any("'/seldon/*' is not of type 'array'" in e for e in errors), errors
    assert any("'rulez' was unexpected" in e for e in errors), errors
    assert any("'PERMIT' is not one of" in e for e in errors), errors


# --- the predictions endpoint ----------------------------------------------------------------------

NO_POLICY = "no AuthorizationPolicy on the ingress gateway: anyone who reaches it gets predictions"
OPEN_RULE = "lets requests reach /seldon/ without the serving token (header x-dlptui-token)"
AUTH_VARIANTS = [
    ("no policy", lambda p: p.unlink(), NO_POLICY),
    ("another workload", lambda p: _replace(p, "matchLabels: {istio: ingressgateway}", "matchLabels: {istio: eastwestgateway}"), NO_POLICY),
    ("a DENY policy", lambda p: _replace(p, "action: ALLOW", "action: DENY"), NO_POLICY),
    ("no token asked", lambda p: _replace(
        p, '      when:\n        - key: request.headers[x-dlptui-token]\n          values: ["@DLPTUI_SERVING_TOKEN@"]\n', ""),
     f"rule 0 of AuthorizationPolicy seldon-predictions-need-the-serving-token {OPEN_RULE}"),
    ("a rule for everything", lambda p: p.write_text(p.read_text() + "    - {}\n"),
     f"rule 2 of AuthorizationPolicy seldon-predictions-need-the-serving-token {OPEN_RULE}"),
    ("the other rule covers /seldon/", lambda p: _replace(p, '{notPaths: ["/seldon/*"]}', '{paths: ["/*"]}'),
     f"rule 1 of AuthorizationPolicy seldon-predictions-need-the-serving-token {OPEN_RULE}"),
    ("a literal token", lambda p: _replace(p, '"@DLPTUI_SERVING_TOKEN@"', '"0123456789abcdef0123456789abcdef"'),
     "AuthorizationPolicy seldon-predictions-need-the-serving-token holds a token in the repository"),
]


@pytest.mark.parametrize("change, words", [v[1:] for v in AUTH_VARIANTS], ids=[v[0] for v in AUTH_VARIANTS])
def test_a_predictions_endpoint_open_to_anyone_fails(tmp_path, change, words):
    root = copy_of_infra(tmp_path)
    change(root / "infra" / "istio" / "serving-auth.yaml")
    check = checked(root)["security serving authorization"]
    assert not check.ok and not check.warning
    assert words in check.detail and ";" not in check.detail.replace("; apply", ""), check.detail


def test_the_https_port_must_be_on_the_ingress_service(tmp_path):
    root = copy_of_infra(tmp_path)
    _replace(root / "infra" / "helm" / "istio-gateway.yaml", "    - {name: https, port: 443, protocol: TCP, targetPort: 443}\n", "")
    check = checked(root)["security gateway"]
    assert not check.ok
    assert check.detail == ("the ingress Service (helm/istio-gateway.yaml service.ports) does not expose port 443, "
                            "which Gateway seldon-gateway serves: add it")


# --- the model server's pod -------------------------------------------------------------------------

POD_VARIANTS = [
    ("no limits", "                  limits: {cpu: ${cpu_limit}, memory: ${memory_limit}}\n", "",
     "container model sets no limits.cpu, limits.memory: one model server could take all of a node's CPU and memory"),
    ("no requests", "                  requests: {cpu: ${cpu_request}, memory: ${memory_request}}\n", "",
     "container model sets no requests.cpu, requests.memory"),
    ("root", "runAsUser: 8888", "runAsUser: 0",
     "container model may run as root: set securityContext.runAsNonRoot: true and a numeric runAsUser other than 0"),
    ("no securityContext", "                securityContext:\n                  runAsNonRoot: true\n                  runAsUser: 8888\n"
     "                  readOnlyRootFilesystem: true\n                  allowPrivilegeEscalation: false\n"
     "                  capabilities: {drop: [ALL]}\n", "",
     "container model does not set securityContext.allowPrivilegeEscalation: false"),
    ("escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true",
     "container model does not set securityContext.allowPrivilegeEscalation: false"),
    ("capabilities", "capabilities: {drop: [ALL]}", "capabilities: {drop: [NET_RAW]}",
     "container model keeps its Linux capabilities: set securityContext.capabilities.drop: [ALL]"),
    ("writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
     "container model's root filesystem is writable: set securityContext.readOnlyRootFilesystem: true"),
    ("no volume", "                volumeMounts:\n                  - {name: tmp, mountPath: /tmp}\n", "",
     "container model writes /tmp (the temp folder), /tmp/.cache (XDG_CACHE_HOME), /tmp/.config (XDG_CONFIG_HOME), "
     "/tmp/dlptui-checkpoints (DLPTUI_CHECKPOINT_CACHE) on its read-only root filesystem: "
     "mount an emptyDir there"),
    ("checkpoint cache at home", "                  - {name: DLPTUI_CHECKPOINT_CACHE, value: /tmp/dlptui-checkpoints}\n", "",
     "container model leaves DLPTUI_CHECKPOINT_CACHE unset, so the checkpoint it reads from a bucket would go under its "
     "home folder"),
    ("gRPC", '                  - {name: GRPC_WORKERS, value: "0"}\n', "",
     "container model does not set GRPC_WORKERS=0: the microservice would open a gRPC port that nothing uses"),
]


@pytest.mark.parametrize("old, new, words", [v[1:] for v in POD_VARIANTS], ids=[v[0] for v in POD_VARIANTS])
def test_a_model_server_pod_that_is_not_locked_down_fails(tmp_path, old, new, words):
    root = copy_of_infra(tmp_path)
    _replace(root / "infra" / "seldon" / "deployment.yaml.tmpl", old, new)
    found = checked(root)
    check = found["security serving pod"]
    assert not check.ok and not check.warning
    assert words in check.detail, check.detail
    if "securityContext:\n" not in old:
        assert ";" not in check.detail, f"one sentence: {check.detail}"
    assert check in failed(list(found.values()))


def test_a_pod_spec_field_kubernetes_does_not_know_fails(tmp_path):
    root = copy_of_infra(tmp_path)
    _replace(root / "infra" / "seldon" / "deployment.yaml.tmpl", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true")
    detail = checked(root)["security serving pod"].detail
    assert "pod spec.containers[0].securityContext.readOnlyRootFileSystem: unknown field of V1SecurityContext" in detail
