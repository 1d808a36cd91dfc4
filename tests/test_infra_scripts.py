"""infra/'s shell scripts: create-cluster.sh plans and repeats safely, create-secrets.sh and
helm/install.sh keep secrets out of argv and output, and every script is shellcheck clean.

The cloud tools are fakes on PATH (the `tools` fixture below writes them): they log every call and
answer `describe`/`list`/`get` as if the things named in FAKE_EXISTING were there.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from dlptui.infra_check import checks as infra_check
from dlptui.infra_check.checks import RELEASE_NAMESPACES
from tests.helpers import INFRA, ROOT

CREATE = INFRA / "create-cluster.sh"
INSTALL = INFRA / "helm" / "install.sh"
SECRETS = INFRA / "secrets" / "create-secrets.sh"

# gcloud, kubectl and helm in one script: log argv, answer look-ups from FAKE_EXISTING.
FAKE_TOOL = r"""#!/usr/bin/env bash
tool="$(basename "$0")"
printf '%s\n' "$tool $*" >>"$FAKE_LOG"
has() { [[ " $FAKE_EXISTING " == *" $1 "* ]] && exit 0; exit 1; }
args=" $* "
case "$tool" in
  gcloud)
    case "$args" in
      *" config get-value project "*) echo "${FAKE_PROJECT:-(unset)}" ;;
      *" container clusters describe "*"--format"*) echo "projects/p/global/networks/dlp-net" ;;
      *" container clusters describe "*) has cluster ;;
      *" node-pools describe "*) has gpu-pool ;;
      *" routers nats describe "*) has nat ;;
      *" routers describe "*) has router ;;
      *" storage buckets describe "*) has buckets ;;
      *" iam service-accounts describe "*) has gsa ;;
      *" artifacts repositories describe "*) has registry ;;
      *" firewall-rules list "*) [[ " $FAKE_EXISTING " == *" master-rule "* ]] && echo "gke-dlp-0a1b2c3d-master" ;;
      *" firewall-rules describe gke-"*"sourceRanges"*) echo "172.16.0.32/28" ;;
      *" firewall-rules describe gke-"*"targetTags"*) echo "gke-dlp-0a1b2c3d-node" ;;
      *" firewall-rules describe gke-"*"network"*) echo "dlp-net" ;;
      *" firewall-rules describe "*) has istio-rule ;;
      *" describe "* | *" list "*) exit 1 ;;
    esac ;;
  kubectl)
    case "$args" in
      *" get daemonset "*) has daemonset ;;
      *" get secret "*) has secrets ;;
      *" config current-context "*) echo "${FAKE_CONTEXT:-}" ;;
      *" create secret generic "*)
        name="${args#* create secret generic }"
        for a in "$@"; do [[ "$a" == --from-env-file=* ]] && { echo "# ${name%% *}"; cat "${a#--from-env-file=}"; }; done ;;
      *" apply -f - "*) cat >>"$FAKE_APPLIED" ;;
    esac ;;
  helm)
    prev=""
    for a in "$@"; do
      [[ "$prev" == -f ]] && { printf -- '--- %s\n' "$a"; cat "$a"; } >>"$FAKE_VALUES"
      prev="$a"
    done ;;
esac
exit 0
"""

MUTATING = (" create ", " apply ", " annotate ", " add-iam-policy-binding ", " enable ", " get-credentials ",
            " upgrade ", " repo add ", " patch ", " delete ", " update ")


@pytest.fixture
def tools(tmp_path: Path):
    """Run an infra script with fake gcloud/kubectl/helm first on PATH and a clean environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gcloud", "kubectl", "helm"):
        (bin_dir / name).write_text(FAKE_TOOL)
        (bin_dir / name).chmod(0o755)
    log, applied, values = tmp_path / "calls.log", tmp_path / "applied.yaml", tmp_path / "values.yaml"
    tls = {}  # PEM files for the TLS Secrets (their paths reach kubectl; contents never matter here)
    for var in TLS_FILE_VARS:
        (tmp_path / var.lower()).write_text("-----BEGIN PLACEHOLDER-----\n")
        tls[var] = str(tmp_path / var.lower())

    def run(script: Path, *args: str, existing: str = "", **env: str) -> subprocess.CompletedProcess:
        for f in (log, applied, values):
            f.write_text("")
        environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "FAKE_LOG": str(log),
            "FAKE_APPLIED": str(applied),
            "FAKE_VALUES": str(values),
            "FAKE_EXISTING": existing,
            **tls,
            **env,
        }
        result = subprocess.run(["bash", str(script), *args], env=environment, capture_output=True, text=True, timeout=60)
        result.calls = log.read_text().splitlines()
        result.applied = applied.read_text()
        result.values = values.read_text()
        return result

    return run


def planned(output: str, mark: str = "+") -> list[list[str]]:
    """The commands of a plan, as argv lists (the script prints them shell-quoted)."""
    return [shlex.split(line[2:]) for line in output.splitlines() if line.startswith(mark + " ")]


def find(commands: list[list[str]], *words: str) -> list[list[str]]:
    return [c for c in commands if all(w in c for w in words)]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


TLS_FILE_VARS = ("PACHD_TLS_CERT_FILE", "PACHD_TLS_KEY_FILE", "DET_TLS_CERT_FILE", "DET_TLS_KEY_FILE",
                 "GATEWAY_TLS_CERT_FILE", "GATEWAY_TLS_KEY_FILE")
ALL_THERE = "cluster gpu-pool router nat daemonset buckets registry master-rule istio-rule gsa secrets"


# --- create-cluster.sh ------------------------------------------------------------------------


def test_dry_run_on_an_empty_project_plans_every_step_and_changes_nothing(tools):
    result = tools(CREATE, "--dry-run", PROJECT="demo-proj")
    assert result.returncode == 0, result.stderr
    plan = planned(result.stdout)

    [cluster] = find(plan, "gcloud", "container", "clusters", "create")
    assert cluster[4] == "dlp" and option(cluster, "--zone") == "us-central1-a"
    assert option(cluster, "--machine-type") == "e2-standard-8" and "--enable-autoscaling" in cluster
    assert option(cluster, "--workload-pool") == "demo-proj.svc.id.goog"

    [gpu] = find(plan, "node-pools", "create")
    assert gpu[4] == "gpu-pool" and option(gpu, "--cluster") == "dlp"
    assert option(gpu, "--accelerator").startswith("type=nvidia-tesla-t4,count=1")
    assert "--enable-autoscaling" in gpu and option(gpu, "--min-nodes") == "0"

    buckets = [c[4] for c in find(plan, "storage", "buckets", "create")]
    assert buckets == ["gs://demo-proj-dlp-data", "gs://demo-proj-dlp-checkpoints"]
    assert find(plan, "kubectl", "apply") and "nvidia-driver-installer" in find(plan, "kubectl", "apply")[0][-1]

    [lookup] = find(planned(result.stdout, "?"), "firewall-rules", "list")
    assert option(lookup, "--filter") == "name~^gke-dlp-[0-9a-f]+-master$"
    assert find(plan, "iam", "service-accounts", "create")
    [registry] = find(plan, "artifacts", "repositories", "create")
    assert registry[4] == "dlptui" and option(registry, "--repository-format") == "docker"

    executed = [c for c in result.calls if any(m in f" {c} " for m in MUTATING)]
    assert executed == [], "a dry run ran commands that change something"
    assert result.calls, "the look-ups should have run"


def test_names_zones_and_sizes_come_from_the_environment(tools):
    result = tools(CREATE, "--dry-run", PROJECT="p2", CLUSTER="lab", ZONE="europe-west4-b", REGION="europe-west4",
                   GPU_TYPE="nvidia-l4", GPU_MAX_NODES="6", DATA_BUCKET="my-data")
    plan = planned(result.stdout)
    [cluster] = find(plan, "clusters", "create")
    assert cluster[4] == "lab" and option(cluster, "--zone") == "europe-west4-b"
    [gpu] = find(plan, "node-pools", "create")
    assert option(gpu, "--accelerator").startswith("type=nvidia-l4,") and option(gpu, "--max-nodes") == "6"
    assert [c[4] for c in find(plan, "buckets", "create")][0] == "gs://my-data"
    [lookup] = find(planned(result.stdout, "?"), "firewall-rules", "list")
    assert option(lookup, "--filter") == "name~^gke-lab-[0-9a-f]+-master$"


def test_a_second_run_over_existing_things_creates_nothing(tools):
    first = tools(CREATE, "--dry-run", existing=ALL_THERE, PROJECT="demo-proj")
    second = tools(CREATE, "--dry-run", existing=ALL_THERE, PROJECT="demo-proj")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    plan = planned(first.stdout)
    assert find(plan, "create") == []
    # the only apply left is the namespaces (idempotent by nature), not the driver DaemonSet
    context = ["--context", "gke_demo-proj_us-central1-a_dlp"]
    assert find(plan, "kubectl", "apply") == [["kubectl", *context, "apply", "-f", str(INFRA / "namespaces.yaml")]]
    for thing in ("cluster dlp exists", "node pool gpu-pool exists", "bucket gs://demo-proj-dlp-data exists",
                  "firewall rule dlp-allow-istio-webhook exists", "the NVIDIA driver DaemonSet exists"):
        assert thing in first.stdout


def test_each_step_checks_its_own_thing(tools):
    # the cluster is there, its GPU pool and Istio's firewall rule are not
    result = tools(CREATE, "--dry-run", existing="cluster router nat daemonset buckets registry master-rule gsa", PROJECT="p")
    creates = [c[:4] for c in find(planned(result.stdout), "create")]
    assert creates == [["gcloud", "container", "node-pools", "create"], ["gcloud", "compute", "firewall-rules", "create"]]
    [rule] = find(planned(result.stdout), "firewall-rules", "create")
    assert option(rule, "--allow") == "tcp:15017"
    assert option(rule, "--source-ranges") == "172.16.0.32/28"  # read from GKE's own rule, not typed in
    assert option(rule, "--target-tags") == "gke-dlp-0a1b2c3d-node"
    assert option(rule, "--network") == "dlp-net"


def test_a_real_run_runs_only_the_missing_steps(tools):
    result = tools(CREATE, existing=ALL_THERE.replace(" buckets", ""), PROJECT="p")
    assert result.returncode == 0, result.stderr
    created = [c for c in result.calls if " create " in f" {c} "]
    assert created == [
        "gcloud storage buckets create gs://p-dlp-data --project p --location us-central1 --uniform-bucket-level-access --public-access-prevention",
        "gcloud storage buckets create gs://p-dlp-checkpoints --project p --location us-central1 --uniform-bucket-level-access --public-access-prevention",
    ]


def test_no_project_is_one_sentence(tools):
    result = tools(CREATE)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "create-cluster.sh: no Google Cloud project: set PROJECT or run 'gcloud config set project ID'."
    )
    assert not [c for c in result.calls if any(m in f" {c} " for m in MUTATING)]


def test_an_unknown_option_is_one_sentence(tools):
    result = tools(CREATE, "--force", PROJECT="p")
    assert result.returncode == 2
    assert result.stderr.strip() == "create-cluster.sh: unknown argument '--force'; the only option is --dry-run."


# --- secrets ------------------------------------------------------------------------------------

SECRET_ENV = {
    "PACHYDERM_DB_PASSWORD": "pg-Value-1",
    "PACHYDERM_DB_ROOT_PASSWORD": "pg 'root' \"Value-2\"",
    "DLPTUI_SERVING_TOKEN": "srvValue0123456789abcdef0123456789abcdef",
}


@pytest.mark.parametrize("missing", sorted(SECRET_ENV))
def test_a_missing_variable_is_named_in_one_sentence(tools, missing):
    env = {k: v for k, v in SECRET_ENV.items() if k != missing}
    result = tools(SECRETS, **env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"create-secrets.sh: the environment variable {missing} is not set (or holds a line break); "
        "set it (see infra/secrets/secrets.env.template) and run again."
    )
    assert result.calls == [] and result.applied == ""


def test_secrets_reach_kubectl_through_a_file_never_argv_or_output(tools):
    result = tools(SECRETS, existing="", FAKE_CONTEXT="lab-cluster", **SECRET_ENV)
    assert result.returncode == 0, result.stderr
    assert "# Kubernetes context: lab-cluster" in result.stdout
    for value in SECRET_ENV.values():
        assert value not in "\n".join(result.calls), "a secret value reached a command line"
        assert value not in result.stdout + result.stderr, "a secret value was printed"
    assert ("# pachyderm-postgres\npostgresql-password=pg-Value-1\n"
            f"postgresql-postgres-password={SECRET_ENV['PACHYDERM_DB_ROOT_PASSWORD']}\n") in result.applied
    assert "DET_" not in result.applied, "the serving pods get no Determined credential"
    assert f"# dlptui-serving-token\ntoken={SECRET_ENV['DLPTUI_SERVING_TOKEN']}\n" in result.applied
    creates = [shlex.split(c) for c in result.calls if "create secret generic" in c]
    assert all(c[:3] == ["kubectl", "--context", "lab-cluster"] for c in creates)
    tls = [shlex.split(c) for c in result.calls if "create secret tls" in c]
    assert [(option(c, "tls"), option(c, "--namespace")) for c in tls] == [
        ("pachd-tls", "pachyderm"), ("determined-tls", "determined"), ("seldon-gateway-tls", "istio-system"),
    ]
    assert all(any(a.startswith("--cert=") for a in c) and any(a.startswith("--key=") for a in c) for c in tls)
    assert [(option(c, "generic"), option(c, "--namespace")) for c in creates] == [
        ("pachyderm-postgres", "pachyderm"),
        ("dlptui-serving-token", "seldon"),
    ]
    assert all("--dry-run=client" in c for c in creates)  # rendered by kubectl, applied with `apply -f -`


def test_secrets_need_a_context(tools):
    result = tools(SECRETS, **SECRET_ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "create-secrets.sh: kubectl has no current context; set KUBE_CONTEXT or run create-cluster.sh first."
    )
    pinned = tools(SECRETS, KUBE_CONTEXT="gke_p_z_dlp", **SECRET_ENV)
    assert pinned.returncode == 0, pinned.stderr
    assert all(c.startswith("kubectl --context gke_p_z_dlp ") for c in pinned.calls)


def test_secrets_dry_run_names_keys_only(tools):
    result = tools(SECRETS, "--dry-run", PACHYDERM_ENTERPRISE_LICENSE="lic-Value-9", PACHD_TOKEN="tok-Value-8", **SECRET_ENV)
    assert result.returncode == 0, result.stderr
    assert "Secret pachyderm/pachyderm-enterprise with keys: enterprise-license-key root-token" in result.stdout
    assert "Secret seldon/dlptui-serving-token with keys: token" in result.stdout
    assert "Secret seldon/" not in result.stdout.replace("Secret seldon/dlptui-serving-token with keys: token", ""), \
        "the serving namespace gets no Secret but the token the console reads (no Determined credential)"
    assert "Secret determined/pachyderm-token with keys: root-token" in result.stdout
    assert "Value" not in result.stdout + result.stderr
    assert result.calls == ["kubectl config current-context"]  # the only call: a look-up

    community = tools(SECRETS, "--dry-run", **SECRET_ENV)
    assert community.returncode == 0, community.stderr
    assert "skipping pachyderm-token: PACHD_TOKEN is not set" in community.stdout
    assert "determined/pachyderm-token" not in community.stdout


def test_the_trials_pachyderm_token_secret_is_created_from_the_environment(tools):
    result = tools(SECRETS, existing="", FAKE_CONTEXT="lab-cluster", PACHD_TOKEN="tok-Value-8", **SECRET_ENV)
    assert result.returncode == 0, result.stderr
    assert "# pachyderm-token\nroot-token=tok-Value-8\n" in result.applied
    assert "tok-Value-8" not in "\n".join(result.calls) + result.stdout + result.stderr
    creates = [shlex.split(c) for c in result.calls if "create secret generic" in c]
    assert ("pachyderm-token", "determined") in [(option(c, "generic"), option(c, "--namespace")) for c in creates]
    assert "pachyderm-enterprise" not in result.applied, "the licence is not set: no enterprise Secret"


def test_the_trial_reads_the_pachyderm_token_from_a_secret_the_script_creates():
    const = yaml.safe_load((ROOT / "trial" / "const.yaml").read_text())
    env = const["environment"]["pod_spec"]["spec"]["containers"][0]["env"]
    ref = next(e["valueFrom"]["secretKeyRef"] for e in env if e["name"] == "PACHD_TOKEN")
    declared = infra_check.declared_secrets(SECRETS, optional=True)
    assert ("root-token", "PACHD_TOKEN") in declared[("determined", ref["name"])], (ref, declared)
    assert ref["key"] == "root-token" and ref.get("optional") is True, "the community edition has no token"
    # the trials run in the Determined release's namespace
    assert "release determined in namespace determined" in (INFRA / "helm" / "determined.yaml").read_text()


def test_the_template_lists_every_variable_the_scripts_read():
    template = (INFRA / "secrets" / "secrets.env.template").read_text()
    names = {line.split("=", 1)[0] for line in template.splitlines() if "=" in line and not line.startswith("#")}
    declared = {var for pairs in infra_check.declared_secrets(SECRETS).values() for _, var in pairs}
    assert declared and declared | set(infra_check.INSTALL_ENV) <= names
    values = {line.split("=", 1)[1] for line in template.splitlines() if "=" in line and not line.startswith("#")}
    assert values <= {"", "admin"}, "the template must carry placeholders only"
    assert set(TLS_FILE_VARS) <= names


# --- helm/install.sh ----------------------------------------------------------------------------

INSTALL_ENV = {"DET_DB_PASSWORD": "db-Value-5", "DET_PASS": "det-Value-'6'", "PROJECT": "p",
               "DLPTUI_SERVING_TOKEN": SECRET_ENV["DLPTUI_SERVING_TOKEN"]}


def test_install_plan_uses_every_values_file_in_its_namespace(tools):
    result = tools(INSTALL, "--dry-run", PACHYDERM_ENTERPRISE_LICENSE="x", **INSTALL_ENV)
    assert result.returncode == 0, result.stderr
    used = {}
    for command in find(planned(result.stdout), "helm", "upgrade", "--install"):
        for i, word in enumerate(command):
            if word == "-f" and command[i + 1].endswith(".yaml"):
                used[Path(command[i + 1]).name] = option(command, "--namespace")
    assert used == RELEASE_NAMESPACES
    on_disk = {p.name for p in (INFRA / "helm").glob("*.yaml")}
    assert on_disk == set(RELEASE_NAMESPACES)
    assert "Value" not in result.stdout + result.stderr


def test_install_passes_determined_passwords_through_a_file_descriptor(tools):
    result = tools(INSTALL, existing="secrets", **INSTALL_ENV)
    assert result.returncode == 0, result.stderr
    assert "Value" not in "\n".join(result.calls) + result.stdout + result.stderr
    overlays = [yaml.safe_load(part.split("\n", 1)[1]) for part in result.values.split("--- ")[1:]]
    assert {"db": {"password": "db-Value-5"}, "initialUserPassword": "det-Value-'6'"} in overlays
    [det] = [shlex.split(c) for c in result.calls if " upgrade --install determined " in c]
    assert det[:3] == ["helm", "--kube-context", "gke_p_us-central1-a_dlp"]
    assert "checkpointStorage.bucket=p-dlp-checkpoints" in det


def test_install_needs_the_secrets_first(tools):
    result = tools(INSTALL, existing="", **INSTALL_ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "install.sh: the Secret pachyderm/pachyderm-postgres does not exist; run infra/secrets/create-secrets.sh first."
    )
    assert not [c for c in result.calls if c.startswith("helm")]


def test_install_applies_the_serving_auth_policy_with_the_token_through_a_pipe(tools):
    result = tools(INSTALL, existing="secrets", **INSTALL_ENV)
    assert result.returncode == 0, result.stderr
    token = INSTALL_ENV["DLPTUI_SERVING_TOKEN"]
    assert token not in "\n".join(result.calls) + result.stdout + result.stderr
    [policy] = [d for d in yaml.safe_load_all(result.applied) if d and d.get("kind") == "AuthorizationPolicy"]
    [guarded] = [r for r in policy["spec"]["rules"] if r.get("when")]
    assert guarded["when"] == [{"key": "request.headers[x-dlptui-token]", "values": [token]}]
    assert "@DLPTUI_SERVING_TOKEN@" not in result.applied
    assert any(" get secret dlptui-serving-token" in c for c in result.calls), "the Secret the console reads is there"
    planned_run = tools(INSTALL, "--dry-run", **INSTALL_ENV)
    assert "would apply istio/serving-auth.yaml with DLPTUI_SERVING_TOKEN" in planned_run.stdout
    assert token not in planned_run.stdout + planned_run.stderr


@pytest.mark.parametrize("token", ["short-1", "has space 0123456789abcdef0123456789", "quote\"0123456789abcdef0123456789ab"])
def test_install_refuses_a_token_that_could_not_sit_in_the_policy(tools, token):
    result = tools(INSTALL, "--dry-run", **{**INSTALL_ENV, "DLPTUI_SERVING_TOKEN": token})
    assert result.returncode == 1
    assert result.stderr.strip() == ("install.sh: DLPTUI_SERVING_TOKEN must be at least 32 letters, digits, '-' or '_' "
                                     "(openssl rand -hex 32); set another and run again.")
    assert token not in result.stdout


def test_install_names_a_missing_password(tools):
    result = tools(INSTALL, "--dry-run", DET_PASS="x", PROJECT="p")
    assert result.returncode == 1
    assert "DET_DB_PASSWORD is not set" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- shellcheck ---------------------------------------------------------------------------------


def test_every_script_is_shellcheck_clean():
    checks = infra_check.shellcheck_checks(ROOT)
    scripts = {f"shellcheck {p.relative_to(ROOT)}" for p in INFRA.rglob("*.sh")}
    assert {c.check for c in checks} == scripts
    assert [c for c in checks if not c.ok] == []


def test_shellcheck_catches_a_bad_script(tmp_path):
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "bad.sh").write_text("#!/usr/bin/env bash\nrm -rf $1/tmp\n")
    [check] = infra_check.shellcheck_checks(tmp_path)
    assert not check.ok and not check.warning and "SC2086" in check.detail


def test_a_missing_tls_file_is_named_in_one_sentence(tools, tmp_path):
    result = tools(SECRETS, FAKE_CONTEXT="lab", DET_TLS_KEY_FILE=str(tmp_path / "absent.pem"), **SECRET_ENV)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"create-secrets.sh: DET_TLS_KEY_FILE names {tmp_path / 'absent.pem'}, which is not a file; "
        "point it at the PEM file of determined/determined-tls."
    )
    assert result.calls == [] and result.applied == ""


def test_the_serving_account_reads_the_checkpoint_bucket_only(tools):
    result = tools(INFRA / "workload-identity.sh", "--dry-run", PROJECT="p")
    assert result.returncode == 0, result.stderr
    bindings = find(planned(result.stdout), "gcloud", "storage", "buckets", "add-iam-policy-binding")
    by_member = {}
    for b in bindings:
        by_member.setdefault(option(b, "--member"), []).append((b[b.index("add-iam-policy-binding") + 1], option(b, "--role")))
    assert by_member["serviceAccount:dlp-serving@p.iam.gserviceaccount.com"] == [
        ("gs://p-dlp-checkpoints", "roles/storage.objectViewer")
    ]
    assert len(by_member["serviceAccount:dlp-storage@p.iam.gserviceaccount.com"]) == 2
    annotated = find(planned(result.stdout), "kubectl", "annotate", "serviceaccount")
    seldon = next(c for c in annotated if option(c, "--namespace") == "seldon")
    assert "iam.gke.io/gcp-service-account=dlp-serving@p.iam.gserviceaccount.com" in seldon
