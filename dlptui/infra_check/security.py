"""The ``security`` checks of `dlptui infra check` (checks.py): what a review found unsafe fails.

pachd (and the chart's proxy) on a public address, reachable from outside without auth, or without
TLS; the Determined master behind a public load balancer or without ``tlsSecret``; the serving pods
holding Determined credentials (an env DET_*, or a Secret that carries them: a compromised model server
could start tasks with write access to both buckets), or a Google account of theirs able to write a
bucket or read the data bucket; the Istio gateway serving plain HTTP (other than a redirect) or its HTTPS
port not on the ingress Service; a gateway address over plain http:// in a profile (the serving token
would cross the network in clear); no NetworkPolicy around the model servers, no NetworkPolicy guarding
pachd (a model server could reach it), no default-deny egress for the model servers (network.py decides
who reaches whom); the predictions endpoint open to anyone (no AuthorizationPolicy on the ingress gateway
asking for the serving token); the model server's pod without requests and limits, running as root, with
a writable root filesystem, privilege escalation or capabilities, or writing where no volume is mounted;
the NVIDIA driver DaemonSet taken from a branch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dlptui.infra_check.common import Check, declared_secrets, get, render_samples
from dlptui.infra_check.manifest_schema import validate_object
from dlptui.infra_check.network import Pod, egress_allows, ingress_allows, isolated, namespace_labels, reaches

PUBLIC = "LoadBalancer"
COMMIT_URL = re.compile(r"/[0-9a-f]{40}/")
TOKEN_HEADER = "request.headers[x-dlptui-token]"  # what the console sends (seldon_serving.TOKEN_HEADER)
TOKEN_PLACEHOLDER = "@DLPTUI_SERVING_TOKEN@"  # helm/install.sh puts the token of the environment in its place
SERVING_PATHS = "/seldon/"  # the prefix of every prediction URL through the gateway
WRITABLE_ENV = ("DLPTUI_CHECKPOINT_CACHE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TMPDIR")  # where the server writes
SERVING_NAMESPACE = "seldon"
# pachd and its proxy, and the Determined master, as their charts label their pods (helm/install.sh's namespaces)
PACHD_PODS = (Pod("pachyderm", {"app": "pachd", "suite": "pachyderm"}), Pod("pachyderm", {"app": "pachyderm-proxy", "suite": "pachyderm"}))
MASTER_POD = Pod("determined", {"app": "determined-master-determined", "release": "determined"})


def _public(service: Any) -> bool:
    """A Service (values) that gets an address outside the cluster with nothing narrowing who reaches it."""
    return get(service, "type") == PUBLIC and not get(service, "loadBalancerSourceRanges")


def security_checks(infra: Path, docs: dict[Path, list[Any]], profile: Any = None) -> list[Check]:
    helm = infra / "helm"
    values = {p.name: (d[0] if d and isinstance(d[0], dict) else {}) for p, d in docs.items() if helm in p.parents}
    out = []
    pachyderm = values.get("pachyderm.yaml", {})
    enterprise = values.get("pachyderm-enterprise.yaml", {})
    if pachyderm:
        exposed = [name for name, public in (
            ("proxy.service", _public(get(pachyderm, "proxy", "service"))),
            ("pachd.service", _public(get(pachyderm, "pachd", "service"))),
            ("pachd.externalService", bool(get(pachyderm, "pachd", "externalService", "enabled"))),
        ) if public]
        auth = bool(get(pachyderm, "pachd", "activateAuth"))
        errors = []
        if exposed:
            errors.append(f"{', '.join(exposed)} give pachd a public address: use ClusterIP and "
                          "`kubectl port-forward`, or an internal load balancer with loadBalancerSourceRanges")
            if not auth:
                errors.append("and pachd.activateAuth is false, so anyone who reaches it owns the data")
        if not get(pachyderm, "pachd", "tls", "enabled"):
            errors.append("pachd.tls.enabled is not true: the root token would cross the network in clear")
        if get(pachyderm, "proxy", "enabled") and not get(pachyderm, "proxy", "tls", "enabled"):
            errors.append("proxy.tls.enabled is not true")
        detail = "; ".join(errors) or ("inside the cluster only, TLS on" + (" (auth with PACHYDERM_ENTERPRISE_LICENSE)" if enterprise else ""))
        out.append(Check("security pachd", not errors, detail))
    determined = values.get("determined.yaml", {})
    if determined:
        errors = []
        if not determined.get("useNodePortForMaster"):
            errors.append("useNodePortForMaster is false, so the chart puts the master on a public load balancer")
        if not determined.get("tlsSecret"):
            errors.append("no tlsSecret: passwords and tokens would reach the master over plain HTTP")
        out.append(Check("security determined master", not errors, "; ".join(errors) or "NodePort, TLS in the master"))
    ingress = values.get("istio-gateway.yaml", {})
    out.append(_serving_credentials_check(infra))
    out.append(_gateway_check(docs, ingress))
    out.append(_gateway_url_check(infra, profile))
    out.append(_network_policy_check(docs))
    out.extend(_reach_checks(infra, docs, values.get("determined.yaml", {})))
    out.append(_serving_auth_check(docs, ingress))
    out.append(_serving_pod_check(infra))
    out.append(_gpu_driver_check(infra))
    return out


def _serving_credentials_check(infra: Path) -> Check:
    """The serving pods hold no Determined credential (they read one checkpoint from storage), and their Google
    account may only read the checkpoint bucket."""
    errors = []
    declared = declared_secrets(infra / "secrets" / "create-secrets.sh")
    determined = {name: sorted(key for key, var in pairs if _determined(key) or _determined(var))
                  for (namespace, name), pairs in declared.items() if namespace == SERVING_NAMESPACE}
    determined = {name: keys for name, keys in determined.items() if keys}
    for name, keys in sorted(determined.items()):
        errors.append(f"create-secrets.sh puts Determined credentials ({', '.join(keys)}) into the Secret "
                      f"{SERVING_NAMESPACE}/{name}, beside the model servers: remove it, they read checkpoints from storage")
    try:
        samples = render_samples(infra)
    except Exception as e:  # the adapter's own sentence, or its bug: the serving pod check says it too
        samples = []
        errors.append(f"seldon/deployment.yaml.tmpl does not render: {e}")
    found = sorted({given for _, obj in samples for given in _determined_credentials(obj, determined)})
    if found:
        errors.append(f"the serving pods get Determined credentials ({'; '.join(found)}): a compromised model server could "
                      "start tasks on the master with write access to both buckets; they read checkpoints from storage and need none")
    identity = infra / "workload-identity.sh"
    text = identity.read_text() if identity.is_file() else ""
    serving = re.search(r"^SERVING_BINDINGS=\(\n(?P<body>.*?)^\)", text, re.M | re.S)
    if serving is None:
        errors.append("workload-identity.sh has no SERVING_BINDINGS list (the serving account's roles)")
    else:
        roles = re.findall(r"roles/storage\.\w+", serving["body"])
        buckets = re.findall(r"\$\{?(\w+_BUCKET)\}?", serving["body"])
        if set(roles) != {"roles/storage.objectViewer"}:
            errors.append(f"the serving account gets {', '.join(sorted(set(roles))) or 'no role'}: it needs roles/storage.objectViewer only")
        if set(buckets) != {"CHECKPOINT_BUCKET"}:
            errors.append(f"the serving account reaches {', '.join(sorted(set(buckets))) or 'no bucket'}: the checkpoint bucket only")
    return Check("security serving credentials", not errors, "; ".join(errors) or
                 "no Determined credential in the serving pods; objectViewer on the checkpoint bucket only")


def _determined(name: str) -> bool:
    return str(name).upper().startswith("DET_")


def _determined_credentials(obj: dict, secrets: dict[str, list[str]]) -> list[str]:
    """What in a rendered SeldonDeployment hands its pods Determined credentials: an env DET_*, or a reference
    to a Secret that carries them (`secrets`: name -> its DET_ keys; envFrom, secretKeyRef, a secret volume,
    the graph's envSecretRefName)."""
    found = []

    def secret(name: Any, how: str) -> None:
        if name in secrets:
            found.append(f"{how} of the Secret {name}, which holds {', '.join(secrets[name])}")

    for predictor in get(obj, "spec", "predictors") or []:
        graph = predictor.get("graph") or {}
        secret(graph.get("envSecretRefName"), "the graph's envSecretRefName")
        for component in predictor.get("componentSpecs") or []:
            spec = component.get("spec") or {}
            for volume in spec.get("volumes") or []:
                secret(get(volume, "secret", "secretName"), "a volume")
            for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
                for env in container.get("env") or []:
                    if _determined(env.get("name", "")):
                        found.append(f"env {env.get('name')}")
                    secret(get(env, "valueFrom", "secretKeyRef", "name"), "a secretKeyRef")
                for source in container.get("envFrom") or []:
                    secret(get(source, "secretRef", "name"), "envFrom")
    return found


def _gateway_url_check(infra: Path, profile: Any) -> Check:
    """No profile sends the serving token to the gateway over plain http:// (the console refuses it too): the active
    cluster profile, and any profile committed under infra/ (a TOML file with [profiles.NAME] istio_ingress)."""
    import tomllib

    from dlptui.platform.cluster.seldon_token import in_clear

    places, errors = [], []
    for path in sorted(infra.rglob("*.toml")):
        where = path.relative_to(infra.parent)
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
            errors.append(f"{where} does not parse ({e})")
            continue
        for name, section in (data.get("profiles") or {}).items():
            if isinstance(section, dict) and isinstance(section.get("istio_ingress"), str):
                places.append((f"profile {name} of {where}", section["istio_ingress"]))
    if profile is not None and getattr(profile, "istio_ingress", None):
        places.append(("the active cluster profile", profile.istio_ingress))
    for where, url in places:
        if in_clear(url):
            errors.append(f"{where} has istio_ingress {url}, plain HTTP to another machine, so the serving token would cross "
                          "the network in clear: use the gateway's https:// address")
    return Check("security gateway address", not errors, "; ".join(errors) or
                 ("every istio_ingress is https:// (or this machine)" if places else "no profile names an istio_ingress"))


def _gateway_check(docs: dict[Path, list[Any]], ingress: dict) -> Check:
    gateways = [o for d in docs.values() for o in d if isinstance(o, dict) and o.get("kind") == "Gateway"]
    exposed = get(ingress, "service", "ports")  # unset: the chart's own list (80 and 443)
    errors = []
    for gateway in gateways:
        name = get(gateway, "metadata", "name")
        for server in get(gateway, "spec", "servers") or []:
            protocol = str(get(server, "port", "protocol") or "").upper()
            if protocol == "HTTP" and not get(server, "tls", "httpsRedirect"):
                errors.append(f"Gateway {name} serves predictions over plain HTTP (port {get(server, 'port', 'number')}); "
                              "serve HTTPS and let port 80 only redirect")
            if protocol == "HTTPS" and not get(server, "tls", "credentialName"):
                errors.append(f"Gateway {name}'s HTTPS server names no certificate (tls.credentialName)")
            number = get(server, "port", "number")
            if isinstance(exposed, list) and number not in [get(p, "port") for p in exposed]:
                errors.append(f"the ingress Service (helm/istio-gateway.yaml service.ports) does not expose port {number}, "
                              f"which Gateway {name} serves: add it")
    if not gateways:
        errors.append("no Istio Gateway under infra/")
    return Check("security gateway", not errors, "; ".join(errors) or "HTTPS only; port 80 redirects")


def _network_policy_check(docs: dict[Path, list[Any]]) -> Check:
    policies = [o for d in docs.values() for o in d if isinstance(o, dict) and o.get("kind") == "NetworkPolicy"
                and get(o, "metadata", "namespace") == "seldon"]
    ok = bool(policies)
    return Check("security network policy", ok, "the model servers of namespace seldon take traffic from the gateway only"
                 if ok else "no NetworkPolicy in namespace seldon: any pod can reach the model servers' gRPC and metrics ports")


def _reach_checks(infra: Path, docs: dict[Path, list[Any]], determined: dict) -> list[Check]:
    """Who reaches pachd under the NetworkPolicies of infra/: not a model server, but Determined's trial pods (they
    read the data); and a model server opens no connection to pachd or the Determined master (default-deny egress)."""
    objects = [o for d in docs.values() for o in d if isinstance(o, dict)]
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    namespaces = namespace_labels(objects)
    try:
        [(_, obj), *_] = render_samples(infra)
        [predictor, *_] = get(obj, "spec", "predictors") or [{}]
        labels = {**(predictor.get("labels") or {}), "seldon-deployment-id": get(obj, "metadata", "name") or ""}
        server = Pod(get(obj, "metadata", "namespace") or SERVING_NAMESPACE, labels)
    except Exception:  # noqa: BLE001  (the serving pod check says why it does not render)
        server = Pod(SERVING_NAMESPACE, {})
    trials = [Pod("determined", dict(get(determined, "taskContainerDefaults", kind, "metadata", "labels") or {}))
              for kind in ("cpuPodSpec", "gpuPodSpec")]
    errors = []
    if not all(isolated(policies, pachd, "Ingress") for pachd in PACHD_PODS):
        errors.append("no NetworkPolicy guards pachd in namespace pachyderm: any pod of the cluster reaches it (a model server "
                      "too), and without auth whoever reaches it owns the data; apply pachd-from-the-platform-only of network-policy.yaml")
    elif any(ingress_allows(policies, server, pachd, namespaces) for pachd in PACHD_PODS):
        errors.append(f"the NetworkPolicies of namespace pachyderm admit a model server of namespace {server.namespace} to pachd "
                      "(whatever its own egress rules say): admit only pachd's own namespace and the labelled platform pods")
    if not errors and not all(reaches(policies, trial, pachd, namespaces) for trial in trials for pachd in PACHD_PODS):
        errors.append("Determined's trial pods cannot reach pachd under the NetworkPolicies, so training could not read its "
                      "data: label them dlptui.io/pachd-client (helm/determined.yaml, taskContainerDefaults) and admit that label")
    out = [Check("security pachd network policy", not errors, "; ".join(errors) or
                 "pachd takes connections from its own namespace and Determined's labelled trial pods only; a model server cannot reach it")]
    problems = []
    if not isolated(policies, server, "Egress"):
        problems.append(f"no egress NetworkPolicy selects the model servers of namespace {server.namespace}: a compromised one "
                        "may open connections anywhere in the cluster; apply model-servers-egress of network-policy.yaml")
    else:
        reached = [what for what, pods in (("pachd", PACHD_PODS), ("the Determined master", (MASTER_POD,)))
                   if any(egress_allows(policies, server, pod, namespaces) for pod in pods)]
        if reached:
            problems.append(f"the egress NetworkPolicy of namespace {server.namespace} lets a model server reach {' and '.join(reached)}: "
                            "allow DNS, the storage endpoint and what Seldon needs, no cluster address")
    out.append(Check("security serving egress", not problems, "; ".join(problems) or
                     "the model servers' egress is denied but for DNS, the metadata server, istiod, the request logger "
                     "and HTTPS outside the cluster's private ranges (the storage)"))
    return out


def _gpu_driver_check(infra: Path) -> Check:
    script = infra / "create-cluster.sh"
    text = script.read_text() if script.is_file() else ""
    found = re.search(r'GPU_DRIVER_DAEMONSET="\$\{GPU_DRIVER_DAEMONSET:-(?P<url>[^}]+)\}"', text)
    if found is None:
        return Check("security gpu driver", False, "create-cluster.sh sets no GPU_DRIVER_DAEMONSET")
    url = found["url"]
    ok = bool(COMMIT_URL.search(url)) and "/master/" not in url
    return Check("security gpu driver", ok, "the NVIDIA driver DaemonSet is pinned to a commit" if ok else
                 f"{url} follows a branch: pin it to a commit, so the cluster runs only what was reviewed")


# --- the predictions endpoint: only callers with the serving token ------------------------------


def _serving_auth_check(docs: dict[Path, list[Any]], ingress: dict) -> Check:
    """An ALLOW AuthorizationPolicy on the ingress gateway: /seldon/ only with the token header, the
    token itself never in the repository (install.sh fills it in)."""
    labels = ingress.get("labels") or {}
    policies = [o for d in docs.values() for o in d if isinstance(o, dict) and o.get("kind") == "AuthorizationPolicy"
                and get(o, "metadata", "namespace") == "istio-system" and (get(o, "spec", "action") or "ALLOW") == "ALLOW"
                and all(labels.get(k) == v for k, v in (get(o, "spec", "selector", "matchLabels") or {}).items())]
    errors, guarded = [], False
    for policy in policies:
        name = get(policy, "metadata", "name")
        for i, rule in enumerate(get(policy, "spec", "rules") or []):
            rule = rule if isinstance(rule, dict) else {}
            token = [c for c in rule.get("when") or [] if isinstance(c, dict) and c.get("key") == TOKEN_HEADER]
            if any((c.get("values") or []) != [TOKEN_PLACEHOLDER] for c in token):
                errors.append(f"AuthorizationPolicy {name} holds a token in the repository: write {TOKEN_PLACEHOLDER}, "
                              "which helm/install.sh replaces with DLPTUI_SERVING_TOKEN")
            if _admits_serving(rule) and not token:
                errors.append(f"rule {i} of AuthorizationPolicy {name} lets requests reach {SERVING_PATHS} without the serving "
                              "token (header x-dlptui-token): anyone who reaches the gateway gets predictions")
            guarded = guarded or bool(token) and _admits_serving(rule)
    if not policies:
        errors.append("no AuthorizationPolicy on the ingress gateway: anyone who reaches it gets predictions; "
                      "apply istio/serving-auth.yaml, which asks for the serving token")
    elif not guarded and not errors:
        errors.append(f"no rule admits {SERVING_PATHS} with the serving token: the console's predictions would be refused")
    return Check("security serving authorization", not errors, "; ".join(errors) or
                 f"{SERVING_PATHS} only with the serving token (header x-dlptui-token), filled in by install.sh")


def _admits_serving(rule: dict) -> bool:
    """Whether an ALLOW rule lets (some) requests to /seldon/... through, from its `to` operations."""
    operations = [get(t, "operation") or {} for t in rule.get("to") or []]
    if not operations:
        return True
    for op in operations:
        if any(_covers(p) for p in op.get("notPaths") or []):
            continue
        paths = op.get("paths") or []
        if not paths or any(_covers(p) or str(p).startswith((SERVING_PATHS, "*")) for p in paths):
            return True
    return False


def _covers(pattern: Any) -> bool:
    """Whether an Istio path pattern matches every /seldon/... path ("*", "/seldon/*", "/s*")."""
    pattern = str(pattern)
    return pattern == "*" or pattern.endswith("*") and SERVING_PATHS.startswith(pattern[:-1])


# --- the model server's pod --------------------------------------------------------------------

REQUIRED_WRITABLE = {"DLPTUI_CHECKPOINT_CACHE": "the checkpoint it reads from a bucket"}


def _serving_pod_check(infra: Path) -> Check:
    label = "security serving pod"
    try:
        [(_, obj), *_] = render_samples(infra)
    except Exception as e:  # the adapter's own sentence, or its bug: either way the check fails
        return Check(label, False, f"seldon/deployment.yaml.tmpl does not render: {e}")
    [predictor, *_] = get(obj, "spec", "predictors") or [{}]
    errors = []
    for component in predictor.get("componentSpecs") or [{}]:
        spec = component.get("spec") or {}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "model-server"}, "spec": spec}
        errors += [f"pod {e}" for e in validate_object(pod)]
        volumes = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
        for container in spec.get("containers") or []:
            errors += _container_errors(container, spec.get("securityContext") or {}, volumes)
    return Check(label, not errors, "; ".join(errors) or
                 "the model server has requests and limits, runs as a numeric non-root user with a read-only root "
                 "filesystem, no capability and no privilege escalation, and writes only to its emptyDir")


def _container_errors(container: dict, pod_context: dict, volumes: dict) -> list[str]:
    who = f"container {container.get('name')}"
    context = container.get("securityContext") or {}
    user = {**{k: pod_context.get(k) for k in ("runAsNonRoot", "runAsUser") if k in pod_context}, **context}
    env = {e.get("name"): e.get("value") for e in container.get("env") or [] if isinstance(e, dict)}
    errors = []
    missing = [f"{kind}.{r}" for kind in ("requests", "limits") for r in ("cpu", "memory") if not get(container, "resources", kind, r)]
    if missing:
        errors.append(f"{who} sets no {', '.join(missing)}: one model server could take all of a node's CPU and memory")
    uid = user.get("runAsUser")
    if user.get("runAsNonRoot") is not True or not isinstance(uid, int) or isinstance(uid, bool) or uid == 0:
        errors.append(f"{who} may run as root: set securityContext.runAsNonRoot: true and a numeric runAsUser other than 0")
    if context.get("allowPrivilegeEscalation") is not False:
        errors.append(f"{who} does not set securityContext.allowPrivilegeEscalation: false")
    if "ALL" not in (get(context, "capabilities", "drop") or []):
        errors.append(f"{who} keeps its Linux capabilities: set securityContext.capabilities.drop: [ALL]")
    if context.get("readOnlyRootFilesystem") is not True:
        errors.append(f"{who}'s root filesystem is writable: set securityContext.readOnlyRootFilesystem: true")
    else:
        mounts = [m.get("mountPath") for m in container.get("volumeMounts") or []
                  if isinstance(m, dict) and not m.get("readOnly") and "emptyDir" in (volumes.get(m.get("name")) or {})]
        wanted = {env.get("TMPDIR") or "/tmp": "the temp folder"}
        for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", *REQUIRED_WRITABLE):
            if env.get(var):
                wanted.setdefault(env[var], var)
        unmounted = [f"{path} ({why})" for path, why in wanted.items()
                     if not any(str(path) == m or str(path).startswith(str(m).rstrip("/") + "/") for m in mounts)]
        if unmounted:
            errors.append(f"{who} writes {', '.join(unmounted)} on its read-only root filesystem: mount an emptyDir there")
        errors += [f"{who} leaves {var} unset, so {why} would go under its home folder on the read-only root "
                   "filesystem: point it into the emptyDir" for var, why in REQUIRED_WRITABLE.items() if not env.get(var)]
    if env.get("GRPC_WORKERS") != "0":
        errors.append(f"{who} does not set GRPC_WORKERS=0: the microservice would open a gRPC port that nothing uses")
    return errors
