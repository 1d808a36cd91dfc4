"""`dlptui infra check` on the cluster's blast radius (issue 19): the serving pods hold no Determined credential,
a NetworkPolicy keeps the model servers away from pachd, their egress is denied but for what they need, and no
profile sends the serving token over plain http:// to another machine. Each pattern of the files as they were
before fails its check on a copy of infra/, with its sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dlptui.config import ClusterSettings
from dlptui.infra_check.checks import failed, run_checks
from dlptui.infra_check.network import Pod, namespace_labels, reaches
from tests.helpers import INFRA, ROOT

# infra/network-policy.yaml before issue 19: the model servers' ingress only; nothing around pachd, no egress rule
OLD_NETWORK_POLICY = """\
# The model servers of namespace seldon take traffic from the Istio ingress gateway's namespace
# only: no other pod of the cluster reaches their REST, gRPC or metrics ports.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: model-servers-from-the-gateway-only
  namespace: seldon
  labels: {app.kubernetes.io/part-of: dlptui}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector:
            matchLabels: {dlptui.io/role: ingress}
"""
# secrets/create-secrets.sh before: the serving pods' Determined login, in their namespace
OLD_CREDENTIALS = '  "seldon        dlptui-credentials   DET_USER=DET_SERVING_USER DET_PASS=DET_SERVING_PASS"\n'
TOKEN_LINE = '  "seldon        dlptui-serving-token'
ENV_LINE = "                env:\n"
# deployment.yaml.tmpl before: the model container read that Secret whole (envFrom secretRef ${secret})
OLD_ENV_FROM = "                envFrom:\n                  - secretRef:\n                      name: dlptui-credentials\n"


def copy_of_infra(tmp_path: Path) -> Path:
    shutil.copytree(INFRA, tmp_path / "infra")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}: the test needs updating"
    path.write_text(text.replace(old, new, 1))


def checked(root: Path, profile=None) -> dict:
    return {c.check: c for c in run_checks(root, env={}, profile=profile)}


def test_the_repository_passes_the_blast_radius_checks():
    found = checked(ROOT)
    for name in ("security serving credentials", "security pachd network policy", "security serving egress",
                 "security gateway address"):
        assert found[name].ok and not found[name].warning, found[name]


def test_the_files_of_before_fail_infra_check(tmp_path):
    """Today's (pre-change) patterns written into a copy of infra/: the Determined login in a Secret of the serving
    namespace, read whole by the model container; no NetworkPolicy around pachd and none on the model servers'
    egress; a committed profile whose gateway is plain http:// on another machine."""
    root = copy_of_infra(tmp_path)
    infra = root / "infra"
    edit(infra / "secrets" / "create-secrets.sh", TOKEN_LINE, OLD_CREDENTIALS + TOKEN_LINE)
    edit(infra / "seldon" / "deployment.yaml.tmpl", ENV_LINE, OLD_ENV_FROM + ENV_LINE)
    (infra / "network-policy.yaml").write_text(OLD_NETWORK_POLICY)
    (infra / "cluster-profile.toml").write_text('[profiles.cluster]\nkind = "cluster"\nistio_ingress = "http://34.1.2.3"\n')

    found = checked(root)
    bad = {c.check: c.detail for c in failed(list(found.values()))}
    assert bad["security serving credentials"] == (
        "create-secrets.sh puts Determined credentials (DET_PASS, DET_USER) into the Secret seldon/dlptui-credentials, "
        "beside the model servers: remove it, they read checkpoints from storage; "
        "the serving pods get Determined credentials (envFrom of the Secret dlptui-credentials, which holds DET_PASS, DET_USER): "
        "a compromised model server could start tasks on the master with write access to both buckets; they read "
        "checkpoints from storage and need none"
    )
    assert bad["security pachd network policy"] == (
        "no NetworkPolicy guards pachd in namespace pachyderm: any pod of the cluster reaches it (a model server too), "
        "and without auth whoever reaches it owns the data; apply pachd-from-the-platform-only of network-policy.yaml"
    )
    assert bad["security serving egress"] == (
        "no egress NetworkPolicy selects the model servers of namespace seldon: a compromised one may open connections "
        "anywhere in the cluster; apply model-servers-egress of network-policy.yaml"
    )
    assert bad["security gateway address"] == (
        "profile cluster of infra/cluster-profile.toml has istio_ingress http://34.1.2.3, plain HTTP to another machine, "
        "so the serving token would cross the network in clear: use the gateway's https:// address"
    )
    assert found["security network policy"].ok  # the model servers' ingress rule was there before too


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (ENV_LINE, ENV_LINE + "                  - {name: DET_MASTER, value: 'https://determined-master:8443'}\n",
         "the serving pods get Determined credentials (env DET_MASTER)"),
        (ENV_LINE, ENV_LINE + "                  - name: DET_PASS\n                    valueFrom:\n"
                              "                      secretKeyRef: {name: det-login, key: DET_PASS}\n",
         "the serving pods get Determined credentials (env DET_PASS)"),
    ],
    ids=["literal DET_MASTER", "secretKeyRef"],
)
def test_a_serving_pod_with_determined_credentials_fails(tmp_path, old, new, words):
    root = copy_of_infra(tmp_path)
    edit(root / "infra" / "secrets" / "create-secrets.sh", TOKEN_LINE,
         '  "determined    det-login   DET_USER=DET_USER DET_PASS=DET_PASS"\n' + TOKEN_LINE)  # not beside the model servers
    edit(root / "infra" / "seldon" / "deployment.yaml.tmpl", old, new)
    found = checked(root)["security serving credentials"]
    assert not found.ok and words in found.detail, found.detail
    assert "create-secrets.sh puts" not in found.detail


def test_a_secret_of_the_serving_namespace_with_determined_credentials_fails_and_so_does_a_reference_to_it(tmp_path):
    root = copy_of_infra(tmp_path)
    edit(root / "infra" / "secrets" / "create-secrets.sh", TOKEN_LINE,
         '  "seldon        det-login   DET_TOKEN=DET_SERVING_TOKEN"\n' + TOKEN_LINE)
    found = checked(root)["security serving credentials"]
    assert not found.ok and found.detail.startswith(
        "create-secrets.sh puts Determined credentials (DET_TOKEN) into the Secret seldon/det-login, beside the model servers")
    assert "the serving pods get" not in found.detail
    edit(root / "infra" / "seldon" / "deployment.yaml.tmpl", ENV_LINE,
         ENV_LINE + "                  - name: MASTER_LOGIN\n                    valueFrom:\n"
                    "                      secretKeyRef: {name: det-login, key: DET_TOKEN}\n")
    referenced = checked(root)["security serving credentials"]
    assert "the serving pods get Determined credentials (a secretKeyRef of the Secret det-login, which holds DET_TOKEN)" \
        in referenced.detail


def _policies(infra: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all((infra / "network-policy.yaml").read_text()) if d]


def _write_policies(infra: Path, docs: list[dict]) -> None:
    (infra / "network-policy.yaml").write_text(yaml.safe_dump_all(docs))


def _named(docs: list[dict], name: str) -> dict:
    [found] = [d for d in docs if d["metadata"]["name"] == name]
    return found


def _open_pachd(docs):
    _named(docs, "pachd-from-the-platform-only")["spec"]["ingress"].append({"from": [{"namespaceSelector": {}}]})


def _open_egress_to_every_namespace(docs):
    _named(docs, "model-servers-egress")["spec"]["egress"].append({"to": [{"namespaceSelector": {}}]})


def _egress_to_any_address(docs):
    rule = _named(docs, "model-servers-egress")["spec"]["egress"][-1]
    rule["to"][0]["ipBlock"].pop("except")


@pytest.mark.parametrize(
    ("change", "check", "words"),
    [
        (_open_pachd, "security pachd network policy", "admit a model server of namespace seldon to pachd"),
        (_open_egress_to_every_namespace, "security serving egress",
         "lets a model server reach pachd and the Determined master"),
        (_egress_to_any_address, "security serving egress", "lets a model server reach pachd and the Determined master"),
    ],
    ids=["pachd admits every namespace", "egress to every namespace", "egress to any address"],
)
def test_a_policy_that_lets_a_model_server_reach_pachd_fails(tmp_path, change, check, words):
    root = copy_of_infra(tmp_path)
    docs = _policies(root / "infra")
    change(docs)
    _write_policies(root / "infra", docs)
    found = checked(root)[check]
    assert not found.ok and words in found.detail, found.detail


def test_trial_pods_that_cannot_reach_pachd_fail(tmp_path):
    root = copy_of_infra(tmp_path)
    values = root / "infra" / "helm" / "determined.yaml"
    text = values.read_text()
    assert text.count('labels: {dlptui.io/pachd-client: "true"}') == 2
    values.write_text(text.replace('labels: {dlptui.io/pachd-client: "true"}', "labels: {team: ml}"))
    found = checked(root)["security pachd network policy"]
    assert not found.ok and "Determined's trial pods cannot reach pachd" in found.detail


@pytest.mark.parametrize(
    ("ingress", "ok"),
    [("http://34.1.2.3", False), ("http://gateway.example.com:8080/", False), ("https://34.1.2.3", True),
     ("http://localhost:8080", True), ("http://127.0.0.1:31380", True), ("http://[::1]:8080", True)],
)
def test_the_active_profiles_gateway_address(ingress, ok):
    found = checked(ROOT, ClusterSettings(istio_ingress=ingress))["security gateway address"]
    assert found.ok is ok, found.detail
    if not ok:
        assert found.detail.startswith(f"the active cluster profile has istio_ingress {ingress}, plain HTTP to another machine")


def test_who_reaches_whom_under_the_shipped_policies():
    docs = [d for p in (INFRA / "network-policy.yaml", INFRA / "namespaces.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    namespaces = namespace_labels(docs)
    server = Pod("seldon", {"seldon-deployment-id": "dogcat-deploy"})
    pachd = Pod("pachyderm", {"app": "pachd"})
    trial = Pod("determined", {"dlptui.io/pachd-client": "true"})
    unlabelled = Pod("determined", {"app": "something-else"})
    worker = Pod("pachyderm", {"component": "worker"})
    gateway = Pod("istio-system", {"istio": "ingressgateway"})
    assert not reaches(docs, server, pachd, namespaces)
    assert reaches(docs, trial, pachd, namespaces) and reaches(docs, worker, pachd, namespaces)
    assert not reaches(docs, unlabelled, pachd, namespaces)
    assert reaches(docs, gateway, server, namespaces) and not reaches(docs, pachd, server, namespaces)
    assert not reaches(docs, server, Pod("determined", {"app": "determined-master-determined"}), namespaces)
    assert reaches(docs, server, Pod("istio-system", {"app": "istiod"}), namespaces)
