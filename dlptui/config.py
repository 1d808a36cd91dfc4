"""Profiles from a TOML file in the XDG config dir; environment variables win.

    # ~/.config/dlptui/config.toml  (or $DLPTUI_CONFIG)
    profile = "local"                    # the default profile
    max_concurrent_experiments = 2       # local experiments training at once, platform-wide (default: cores // 2, at least 1)
    drift_reference_on_deploy = true     # deploying computes the version's drift reference in the background

    [keymap]                             # binding id -> keys, see `?` in the console
    "app.quit" = "ctrl+q"

    [profiles.cluster]
    kind = "cluster"
    kube_context = "gke_my-project_us-central1-a_dlp"
    namespace = "default"                # where pachd and the Determined master run
    seldon_namespace = "seldon"
    det_master = "http://10.0.0.5:8080"
    pachd_address = "grpc://10.0.0.6:30650"
    istio_ingress = "https://34.1.2.3"
    serving_image = "gcr.io/my-project/dlptui-serving:0.1.0"
    ca_file = "~/.config/dlptui/cluster-ca.pem"   # a private CA trusted beyond the system roots

Environment variables that win over the file: DLPTUI_PROFILE, DLPTUI_HOME (where the
local profile keeps all its state), DLPTUI_READ_ONLY, DLPTUI_MAX_CONCURRENT_EXPERIMENTS,
DLPTUI_DRIFT_REFERENCE_ON_DEPLOY, DET_MASTER,
PACHD_ADDRESS, KUBECONFIG, DLPTUI_KUBE_CONTEXT, DLPTUI_ISTIO_INGRESS, DLPTUI_CA_FILE. Secrets (DET_PASS, DET_TOKEN,
PACHD_TOKEN, DLPTUI_SERVING_TOKEN) are never read from this file, in any profile or at the top:
only from the environment (or, on the cluster, a Kubernetes Secret: serving_token_secret for the token
the Istio gateway asks of a prediction, and storage_secret for the read-only storage credentials the
serving pods may read). A value of the wrong type is one sentence naming the setting and the type it takes.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dlptui.errors import InvalidInput

KINDS = ("local", "cluster")
SECRET_KEYS = {"password", "token", "det_pass", "det_password", "pachd_token", "auth_token", "key"}


@dataclass(frozen=True)
class ClusterSettings:
    kubeconfig: str | None = None
    kube_context: str | None = None
    namespace: str = "default"
    seldon_namespace: str = "seldon"
    det_master: str | None = None
    det_user: str | None = None
    pachd_address: str | None = None
    istio_ingress: str | None = None
    serving_image: str = "dlptui-serving:0.1.0"
    # a Kubernetes Secret of read-only storage credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) that the serving
    # pods read with envFrom, for S3 checkpoint storage without workload identity; unset: the pods' own account
    storage_secret: str | None = None
    serving_token_secret: str = "dlptui-serving-token"  # the Secret (key token) holding what the gateway asks of a prediction
    # the model container's requests and limits (Kubernetes quantities); unset: seldon_template.RESOURCES
    serving_cpu_request: str | None = None
    serving_memory_request: str | None = None
    serving_cpu_limit: str | None = None
    serving_memory_limit: str | None = None
    prometheus_url: str | None = None  # Seldon's and Istio's metrics: per-version figures of a deployment
    request_logger_url: str | None = None  # rendered as Seldon's `logger` on every predictor when set
    platform_namespaces: tuple[str, ...] = ("default", "seldon", "seldon-system", "pachyderm", "determined")
    allow_insecure_http: bool = False  # let the client speak plain http:// to a master that is not on this machine
    # a PEM bundle of the private CA that signed the cluster's TLS certificates, trusted beyond the system
    # roots by the pachd, Determined and Seldon gateway clients (read by platform/cluster/ca_file.py)
    ca_file: str | None = None


@dataclass(frozen=True)
class Config:
    profile: str = "local"
    kind: str = "local"
    home: Path = field(default_factory=lambda: default_home())
    read_only: bool = False
    keymap: dict[str, str] = field(default_factory=dict)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    timeout_s: float = 5.0  # how long a health check may wait for a backend
    file: Path | None = None
    # local experiments that train at once, on the whole platform (DLPTUI_HOME); one started beyond it is queued
    # until a slot frees. A search's own max_concurrent_trials still applies inside its one slot.
    max_concurrent_experiments: int = field(default_factory=lambda: default_max_concurrent())
    # deploying a version starts computing its drift reference in the background (local profile); off: only
    # `dlptui drift NAME --reference` computes it
    drift_reference_on_deploy: bool = True


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dlptui"


def default_home(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("DLPTUI_HOME"):
        return Path(env["DLPTUI_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dlptui"


def default_max_concurrent(cpus: int | None = None) -> int:
    """Half the cores, at least one: a local experiment keeps a core busy with its model and another with its
    loader workers (1 on a two-core machine)."""
    count = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, count // 2)


def _cap(value: object, where: str) -> int:
    """max_concurrent_experiments as a whole number of 1 or more, or one sentence naming where it was set."""
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isdigit() else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{where} takes a whole number of experiments, 1 or more, not {value!r}.")
    return value


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_config(
    profile: str | None = None,
    read_only: bool | None = None,
    path: Path | None = None,
    env: Mapping[str, str] = os.environ,
    kube_context: str | None = None,
) -> Config:
    """The active profile: arguments win over the environment, which wins over the file.

    `kube_context` (`dlptui --context`) picks the kubeconfig context, over DLPTUI_KUBE_CONTEXT."""
    file = path or Path(env.get("DLPTUI_CONFIG") or config_dir(env) / "config.toml")
    data: dict = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InvalidInput(f"The config file {file} is not valid TOML ({e}); fix or remove it.") from None
    name = profile or env.get("DLPTUI_PROFILE") or data.get("profile") or "local"
    profiles = data.get("profiles", {})
    section = dict(profiles.get(name, {}))
    if name not in KINDS and name not in profiles:
        known = ", ".join(sorted(set(KINDS) | set(profiles)))
        raise InvalidInput(f"There is no profile named {name!r}; the known profiles are {known}.")
    leaked = sorted(_secrets(data))
    if leaked:
        raise InvalidInput(
            f"The config file {file} holds a secret ({', '.join(leaked)}); "
            "remove it and set it in the environment (DET_PASS, DET_TOKEN, PACHD_TOKEN) instead."
        )
    kind = section.pop("kind", name if name in KINDS else "local")
    if kind not in KINDS:
        raise InvalidInput(f"Profile {name!r} has kind {kind!r}; use 'local' or 'cluster'.")

    home = Path(section.pop("home")).expanduser() if "home" in section else default_home(env)
    if env.get("DLPTUI_HOME"):
        home = Path(env["DLPTUI_HOME"]).expanduser()

    if "credentials_secret" in section:
        raise InvalidInput(
            f"Profile {name!r} sets credentials_secret, which dlptui no longer uses: the serving pods read checkpoints "
            "from storage and hold no Determined credential; remove it (storage_secret names a Secret of read-only "
            "storage credentials, where the pods have no workload identity)."
        )
    known_fields = set(ClusterSettings.__dataclass_fields__)
    unknown = set(section) - known_fields - {"timeout_s"}
    if unknown:
        raise InvalidInput(f"Profile {name!r} has unknown settings: {', '.join(sorted(unknown))}.")
    timeout = _number(section.pop("timeout_s", 5.0), "timeout_s", name)
    for key, value in section.items():
        section[key] = _typed(key, value, name)
    cluster = ClusterSettings(**section)
    overrides = {
        "kubeconfig": env.get("KUBECONFIG"),
        "kube_context": kube_context or env.get("DLPTUI_KUBE_CONTEXT"),
        "det_master": env.get("DET_MASTER"),
        "det_user": env.get("DET_USER"),
        "pachd_address": env.get("PACHD_ADDRESS"),
        "istio_ingress": env.get("DLPTUI_ISTIO_INGRESS"),
        "prometheus_url": env.get("DLPTUI_PROMETHEUS_URL"),
        "request_logger_url": env.get("DLPTUI_REQUEST_LOGGER_URL"),
        "ca_file": env.get("DLPTUI_CA_FILE"),
    }
    cluster = replace(cluster, **{k: v for k, v in overrides.items() if v})

    if read_only is None:
        file_read_only = data.get("read_only", False)
        if not isinstance(file_read_only, bool):
            raise InvalidInput(f"read_only in {file} must be true or false, not {file_read_only!r}.")
        read_only = _truthy(env.get("DLPTUI_READ_ONLY")) or file_read_only
    keymap_table = data.get("keymap", {})
    if not isinstance(keymap_table, dict) or not all(isinstance(v, str) for v in keymap_table.values()):
        raise InvalidInput(f"[keymap] in {file} maps binding ids to keys, as \"app.quit\" = \"ctrl+q\".")
    keymap = {str(k): v for k, v in keymap_table.items()}
    if env.get("DLPTUI_MAX_CONCURRENT_EXPERIMENTS"):
        cap = _cap(env["DLPTUI_MAX_CONCURRENT_EXPERIMENTS"], "DLPTUI_MAX_CONCURRENT_EXPERIMENTS")
    elif "max_concurrent_experiments" in data:
        cap = _cap(data["max_concurrent_experiments"], f"max_concurrent_experiments in {file}")
    else:
        cap = default_max_concurrent()
    on_deploy = data.get("drift_reference_on_deploy", True)
    if env.get("DLPTUI_DRIFT_REFERENCE_ON_DEPLOY"):
        on_deploy = _truthy(env["DLPTUI_DRIFT_REFERENCE_ON_DEPLOY"])
    elif not isinstance(on_deploy, bool):
        raise InvalidInput(f"drift_reference_on_deploy in {file} must be true or false, not {on_deploy!r}.")
    return Config(
        profile=name,
        kind=kind,
        home=home,
        read_only=read_only,
        keymap=keymap,
        cluster=cluster,
        timeout_s=timeout,
        file=file if file.exists() else None,
        max_concurrent_experiments=cap,
        drift_reference_on_deploy=on_deploy,
    )


def _secrets(data: Mapping) -> set[str]:
    """Secret-looking keys anywhere in the file: at the top, in any profile, in any table."""
    found: set[str] = set()
    for key, value in data.items():
        if str(key).lower() in SECRET_KEYS:
            found.add(str(key))
        if isinstance(value, Mapping) and key != "keymap":
            found |= _secrets(value)
    return found


def _number(value: object, key: str, profile: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidInput(f"Profile {profile!r}: {key} takes a number of seconds above 0, not {value!r}.")
    return float(value)


def _typed(key: str, value: object, profile: str) -> object:
    """A cluster setting of the type its field takes, or one sentence."""
    if key == "platform_namespaces":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise InvalidInput(f"Profile {profile!r}: platform_namespaces takes a list of names, as [\"default\", \"seldon\"], not {value!r}.")
        return tuple(value)
    if key == "allow_insecure_http":
        if not isinstance(value, bool):
            raise InvalidInput(f"Profile {profile!r}: allow_insecure_http takes true or false, not {value!r}.")
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"Profile {profile!r}: {key} takes a string, not {value!r}.")
    return value
