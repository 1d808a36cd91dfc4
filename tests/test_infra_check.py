"""`dlptui infra check`: the manifests and values validate, the validators fail on planted
mistakes, the SeldonDeployment the adapter sends is valid against the CRD, and the command
reports without leaking secret values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from dlptui.infra_check import checks as infra_check
from dlptui.infra_check.checks import RELEASE_NAMESPACES, failed, render_samples, run_checks
from dlptui.infra_check.manifest_schema import crd_schema, pruned_fields, schema_errors, validate_object
from tests.helpers import INFRA, ROOT

CRD = INFRA / "seldon" / "seldondeployment-crd.yaml"


# --- the validators fail on what they must ------------------------------------------------------

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "seldon"}}
DAEMONSET = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "d", "namespace": "kube-system"},
    "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"cpu": 1}}}]},
        },
    },
}


def test_valid_objects_pass():
    assert validate_object(NAMESPACE) == []
    assert validate_object(DAEMONSET) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda o: o["spec"].update(replicas=2), "spec.replicas: unknown field of V1DaemonSetSpec"),
        (lambda o: o["spec"]["template"]["spec"]["containers"][0].pop("name"),
         "spec.template.spec.containers[0].name: required by V1Container"),
        (lambda o: o["spec"].pop("selector"), "spec.selector: required by V1DaemonSetSpec"),
        (lambda o: o["spec"]["template"]["metadata"]["labels"].update(app=True),
         "spec.template.metadata.labels.app: expected str, got bool"),
        (lambda o: o["spec"]["template"]["spec"].update(containers={"name": "c"}),
         "spec.template.spec.containers: expected a list"),
        (lambda o: o["metadata"].pop("name"), "metadata.name is required"),
        (lambda o: o.update(kind="DaemonSett"), "apps/v1 DaemonSett is not a kind dlptui infra check knows"),
    ],
)
def test_a_broken_object_is_reported(change, expected):
    obj = json.loads(json.dumps(DAEMONSET))
    change(obj)
    errors = validate_object(obj)
    assert any(e.startswith(expected) for e in errors), errors


def test_a_broken_gateway_is_reported():
    gateway = yaml.safe_load((INFRA / "istio" / "gateway.yaml").read_text())
    assert validate_object(gateway) == []
    gateway["spec"]["servers"][0]["port"]["number"] = 70000
    gateway["spec"]["selectors"] = {}
    errors = validate_object(gateway)
    assert any("70000 is greater than the maximum" in e for e in errors)
    assert any("'selectors' was unexpected" in e for e in errors)


def crd_with_traffic_type(text: str, type_name: str) -> str:
    """The CRD with the type of a predictor's `traffic` changed (whatever its formatting)."""
    crd = yaml.safe_load(text)
    for version in crd["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"]["predictors"]["items"]["properties"]["traffic"]["type"] = type_name
    return yaml.safe_dump(crd)


def copy_of_infra(tmp_path: Path) -> Path:
    shutil.copytree(INFRA, tmp_path / "infra")
    return tmp_path


def test_the_repository_passes_every_check():
    checks = run_checks(ROOT, env={})
    assert failed(checks) == []
    names = {c.check for c in checks}
    for path in [*INFRA.rglob("*.yaml")]:
        assert f"yaml {path.relative_to(ROOT)}" in names
    assert {"seldon render plain", "seldon render canary"} <= names
    assert sum(n.startswith("manifest infra/namespaces.yaml#") for n in names) == 7
    assert {f"values infra/helm/{n}" for n in RELEASE_NAMESPACES} <= names
    assert "env DET_PASS" in names and "tool helm" in names  # reported, as warnings


@pytest.mark.parametrize(
    ("file", "edit", "expected"),
    [
        ("helm/determined.yaml", lambda t: t.replace("  user: postgres\n", "  user: postgres\n  password: hunter2\n"),
         "db.password holds a literal credential"),
        ("helm/pachyderm.yaml", lambda t: t.replace("existingSecret: pachyderm-postgres", "existingSecret: pg-secret"),
         "names the Secret pachyderm/pg-secret, which create-secrets.sh does not create"),
        ("helm/determined.yaml", lambda t: t.replace("serviceAccountName: dlp-storage", "serviceAccountName: nobody", 1),
         "the service account determined/nobody is not in infra/namespaces.yaml"),
        ("helm/determined.yaml", lambda t: t.replace("serviceAccountName: dlp-storage", "serviceAccount_Name: x", 1),
         "serviceAccount_Name: unknown field of V1PodSpec"),
        ("helm/seldon-core-operator.yaml", lambda t: t.replace("istio-system/seldon-gateway", "istio-system/other"),
         "istio-system/other is not a Gateway under infra/"),
        ("istio/gateway.yaml", lambda t: t.replace("istio: ingressgateway", "istio: gateway"),
         "does not match the labels"),
        ("namespaces.yaml", lambda t: t.replace("kind: Namespace", "kind: Namespace\nspec: {finalizers: kubernetes}", 1),
         "spec.finalizers: expected a list"),
        ("namespaces.yaml", lambda t: t + "\n---\n: [unclosed\n", "does not parse"),
        ("seldon/seldondeployment-crd.yaml", lambda t: crd_with_traffic_type(t, "string"), "is not of type 'string'"),
    ],
)
def test_a_planted_mistake_fails_the_check(tmp_path, file, edit, expected):
    root = copy_of_infra(tmp_path)
    path = root / "infra" / file
    text = path.read_text()
    assert edit(text) != text, "the edit did not apply: the test needs updating"
    path.write_text(edit(text))
    bad = failed(run_checks(root, env={}))
    assert any(expected in c.detail for c in bad), [c.detail for c in bad]


# --- the SeldonDeployment: the one the adapter sends, valid against the CRD ---------------------


class RecordingKube:
    """Stands in for the adapter's KubeClient: keeps what it is sent, like an API server would."""

    def __init__(self):
        from types import SimpleNamespace

        self.objects: dict[str, dict] = {}
        self.custom = SimpleNamespace(
            create_namespaced_custom_object="create",
            get_namespaced_custom_object="get",
            patch_namespaced_custom_object="patch",
        )

    def call(self, what, fn, *args, **kwargs):
        if fn == "create":
            body = json.loads(json.dumps(args[-1]))
            self.objects[body["metadata"]["name"]] = body
            return body
        if fn == "get":
            return self.objects[args[-1]]
        if fn == "patch":
            self.objects[args[-2]]["spec"].update(json.loads(json.dumps(args[-1]["spec"])))
            return self.objects[args[-2]]
        raise AssertionError(f"unexpected call {what}")

    def close(self):
        pass


def assert_valid_seldon_deployment(obj: dict) -> None:
    crd, schema = crd_schema(CRD)
    assert (obj["apiVersion"], obj["kind"]) == (f"{crd['spec']['group']}/v1", crd["spec"]["names"]["kind"])
    assert schema_errors(obj, schema) == []
    assert pruned_fields(obj, schema) == []


def test_the_adapter_sends_the_rendered_object_and_it_validates(tmp_path):
    from dlptui.config import ClusterSettings, Config
    from dlptui.platform.model import ModelVersion
    from dlptui.platform.cluster.seldon_serving import SeldonServing, render_deployment

    from dlptui.platform.model import CheckpointStorage

    settings = ClusterSettings(seldon_namespace="seldon", serving_image="gcr.io/p/dlptui-serving:0.1.0")
    serving = SeldonServing(Config(profile="cluster", kind="cluster", home=tmp_path, cluster=settings))
    serving.kube = RecordingKube()
    storage = {n: CheckpointStorage("gcs", f"uuid-{n}", bucket="p-dlp-checkpoints", prefix="checkpoints") for n in (1, 2)}
    v1, v2 = (ModelVersion("dogcat-model", n, f"uuid-{n}", 0.0, checkpoint_storage=storage[n]) for n in (1, 2))

    serving.deploy("dogcat-deploy", v1)
    sent = serving.kube.objects["dogcat-deploy"]
    assert_valid_seldon_deployment(sent)  # with the history annotation the adapter adds
    history = json.loads(sent["metadata"].pop("annotations")["dlptui.io/history"])
    assert [(e["change"], e["to_version"]) for e in history] == [("deployed", 1)]
    assert sent == render_deployment("dogcat-deploy", "seldon", settings.serving_image, "dogcat-model", 1, storage)
    [parameters] = [p["graph"]["parameters"] for p in sent["spec"]["predictors"]]
    assert {p["name"]: p["value"] for p in parameters} == {
        "checkpoint_uri": "gs://p-dlp-checkpoints/checkpoints/uuid-1", "model_name": "dogcat-model", "version": "1"}

    serving.set_canary("dogcat-deploy", v2, 20)
    with_canary = serving.kube.objects["dogcat-deploy"]
    assert [p["traffic"] for p in with_canary["spec"]["predictors"]] == [80, 20]
    assert_valid_seldon_deployment(with_canary)

    checked = dict(render_samples())
    assert set(checked) == {"plain", "canary"}
    for obj in checked.values():
        assert_valid_seldon_deployment(obj)


def test_the_crd_check_catches_a_field_the_server_would_drop():
    _, schema = crd_schema(CRD)
    [(_, obj)] = render_samples()[:1]
    obj["spec"]["predictors"][0]["trafic"] = 50
    obj["spec"]["predictors"][0]["traffic"] = "all"
    assert pruned_fields(obj, schema) == ["spec.predictors[0].trafic"]
    assert any("'all' is not of type 'integer'" in e for e in schema_errors(obj, schema))


# --- the command ----------------------------------------------------------------------------------


def test_cli_json_lists_every_check(home, capsys):
    from dlptui.cli import main

    assert main(["infra", "check", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(set(r) == {"check", "ok", "detail", "warning"} for r in rows)
    assert any(r["check"] == "seldon render plain" and r["ok"] for r in rows)


def test_cli_fails_on_a_broken_file_and_says_why(home, tmp_path, capsys):
    from dlptui.cli import main

    root = copy_of_infra(tmp_path)
    (root / "infra" / "namespaces.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {}\n")
    assert main(["infra", "check", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert "metadata.name is required" in captured.out
    assert re.search(r"\b[1-9]\d* failed", captured.err)


def test_cli_without_infra_folder_is_one_sentence(home, tmp_path, capsys):
    from dlptui.cli import main

    assert main(["infra", "check", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"dlptui: There is no infra/ folder in {tmp_path}; pass --root the folder that holds infra/."


def test_secret_values_never_appear_in_the_report(home, capsys, monkeypatch):
    from dlptui.cli import main

    monkeypatch.setenv("DET_PASS", "report-Value-7")
    assert main(["infra", "check"]) == 0
    out = capsys.readouterr().out
    assert "report-Value-7" not in out
    assert os.environ["DET_PASS"] == "report-Value-7"


def test_the_serving_pods_account_is_checked():
    [(_, obj)] = render_samples()[:1]
    accounts = {("seldon", "dlp-storage")}
    specs = [c.setdefault("spec", {}) for p in obj["spec"]["predictors"] for c in p["componentSpecs"]]
    for spec in specs:
        spec.pop("serviceAccountName", None)
    unset = infra_check._serving_account_check(obj, accounts)
    assert (unset.ok, unset.warning) == (False, True) and "serviceAccountName (dlp-storage)" in unset.detail
    for spec in specs:
        spec["serviceAccountName"] = "nobody"
    wrong = infra_check._serving_account_check(obj, accounts)
    assert (wrong.ok, wrong.warning) == (False, False) and "nobody is not declared" in wrong.detail
    for spec in specs:
        spec["serviceAccountName"] = "dlp-storage"
    assert infra_check._serving_account_check(obj, accounts).ok


def test_addresses_in_the_cluster_profile_count_as_set():
    from dlptui.config import ClusterSettings

    checks = {c.check: c for c in run_checks(ROOT, env={}, profile=ClusterSettings(det_master="http://m:8080"))}
    assert checks["env DET_MASTER"].ok and checks["env DET_MASTER"].detail == "set in the cluster profile (det_master)"
    assert not checks["env PACHD_ADDRESS"].ok and checks["env PACHD_ADDRESS"].warning
    assert not checks["env DET_PASS"].ok  # a password is never taken from the profile


def test_dlptui_infra_dir_may_name_a_folder_of_any_name(tmp_path, monkeypatch, capsys):
    from dlptui.cli import main

    shutil.copytree(INFRA, tmp_path / "my-infra")
    monkeypatch.setenv("DLPTUI_INFRA_DIR", str(tmp_path / "my-infra"))
    assert main(["infra", "check", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert any(c["check"].startswith("yaml my-infra/") for c in checks)
    assert any(c["check"].startswith("shellcheck my-infra/") and c["ok"] for c in checks)


# --- the insecure patterns a review found: each fails `infra check` on a copy of infra/ ----------------


def _edit_yaml(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))


def _edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))


def _public_pachd(v):
    v["proxy"]["service"] = {"type": "LoadBalancer"}
    v["pachd"]["activateAuth"] = False


INSECURE = [
    ("security pachd", "helm/pachyderm.yaml", _public_pachd, "public address"),
    ("security pachd", "helm/pachyderm.yaml", lambda v: v["pachd"].update(externalService={"enabled": True}), "activateAuth is false"),
    ("security pachd", "helm/pachyderm.yaml", lambda v: v["pachd"]["tls"].update(enabled=False), "in clear"),
    ("security determined master", "helm/determined.yaml", lambda v: v.update(useNodePortForMaster=False), "public load balancer"),
    ("security determined master", "helm/determined.yaml", lambda v: v.pop("tlsSecret"), "plain HTTP"),
    ("security gateway", "istio/gateway.yaml",
     lambda v: v["spec"].update(servers=[{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]),
     "plain HTTP"),
]


@pytest.mark.parametrize("check, file, change, words", INSECURE, ids=[f"{c}:{w}" for c, _, _, w in INSECURE])
def test_an_insecure_values_file_fails_its_security_check(tmp_path, check, file, change, words):
    root = copy_of_infra(tmp_path)
    _edit_yaml(root / "infra" / file, change)
    found = {c.check: c for c in run_checks(root, env={})}
    assert not found[check].ok and not found[check].warning
    assert words in found[check].detail


@pytest.mark.parametrize(
    "check, file, old, new, words",
    [
        ("security serving credentials", "secrets/create-secrets.sh", '  "seldon        dlptui-serving-token',
         '  "seldon        det-login   DET_USER=DET_USER DET_PASS=DET_PASS"\n  "seldon        dlptui-serving-token',
         "create-secrets.sh puts Determined credentials (DET_PASS, DET_USER) into the Secret seldon/det-login"),
        ("security serving credentials", "workload-identity.sh", '  "$CHECKPOINT_BUCKET roles/storage.objectViewer"\n)',
         '  "$CHECKPOINT_BUCKET roles/storage.objectAdmin"\n  "$DATA_BUCKET roles/storage.objectViewer"\n)', "objectViewer only"),
        ("security gpu driver", "create-cluster.sh", "container-engine-accelerators/feb27ef33e5fdf1b8ec7dafbf4cf527ee400278a/",
         "container-engine-accelerators/master/", "follows a branch"),
    ],
)
def test_an_insecure_script_fails_its_security_check(tmp_path, check, file, old, new, words):
    root = copy_of_infra(tmp_path)
    _edit_text(root / "infra" / file, old, new)
    found = {c.check: c for c in run_checks(root, env={})}
    assert not found[check].ok and words in found[check].detail


def test_no_network_policy_around_the_model_servers_fails(tmp_path):
    root = copy_of_infra(tmp_path)
    (root / "infra" / "network-policy.yaml").unlink()
    found = {c.check: c for c in run_checks(root, env={})}
    assert not found["security network policy"].ok


def test_every_security_check_passes_on_the_repository():
    security = [c for c in run_checks(ROOT, env={}) if c.check.startswith("security ")]
    assert len(security) == 11 and all(c.ok for c in security), [c for c in security if not c.ok]
