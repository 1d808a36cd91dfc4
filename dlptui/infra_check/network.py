"""Who may reach whom under the NetworkPolicies of infra/, as Kubernetes decides it (offline, for `infra check`).

A pod here is its namespace and its labels. Traffic from one pod to another is allowed when the
source's egress and the target's ingress both allow it: a pod that no policy of its namespace selects
for a direction is open in that direction; a selected one takes only what a rule of a selecting policy
admits (a rule without peers admits anyone; a peer is a namespaceSelector and/or a podSelector, or an
ipBlock). Pods have cluster addresses, so an ipBlock admits a pod when it covers a private range
(PRIVATE) that its `except` list does not take out whole. Namespaces carry the labels of
infra/namespaces.yaml and the `kubernetes.io/metadata.name` label Kubernetes gives every namespace.
Ports are not looked at: a rule that admits any port admits the pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# where a cluster's pod, service and node addresses come from (RFC 1918, and RFC 6598 that some clusters use)
PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))
NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


def namespace_labels(objects: Iterable[Any]) -> dict[str, dict[str, str]]:
    """The labels of each Namespace object, with the name label Kubernetes adds."""
    found: dict[str, dict[str, str]] = {}
    for obj in objects:
        if isinstance(obj, dict) and obj.get("kind") == "Namespace" and isinstance(obj.get("metadata"), dict):
            name = str(obj["metadata"].get("name") or "")
            found[name] = {**{str(k): str(v) for k, v in (obj["metadata"].get("labels") or {}).items()}, NAME_LABEL: name}
    return found


def selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels: {} (or none) selects everything."""
    if not isinstance(selector, dict):
        return selector is None
    if any(labels.get(str(k)) != str(v) for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = str(expression.get("key")), expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _covers_cluster(block: Any) -> bool:
    """Whether an ipBlock leaves some of a private range (where pods live) admitted."""
    try:
        cidr = ipaddress.ip_network(str(block.get("cidr")), strict=False)
        excepted = [ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []]
    except (ValueError, AttributeError):
        return True  # a block nobody can read is counted as open
    for private in PRIVATE:
        if cidr.version != private.version or not cidr.overlaps(private):
            continue
        inside = private if cidr.supernet_of(private) else cidr
        if not any(e.version == inside.version and e.supernet_of(inside) for e in excepted):
            return True
    return False


def _peer_admits(peer: Any, home: str, other: Pod, namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether one `from`/`to` peer of a policy of namespace `home` names the pod `other`."""
    if not isinstance(peer, dict):
        return False
    if "ipBlock" in peer:
        return _covers_cluster(peer["ipBlock"])
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"] or {}, namespaces.get(other.namespace, {NAME_LABEL: other.namespace}))
    else:
        in_namespace = other.namespace == home
    return in_namespace and selects(peer.get("podSelector") or {}, other.labels)


def _types(policy: dict) -> list[str]:
    spec = policy.get("spec") or {}
    given = spec.get("policyTypes")
    if given:
        return [str(t) for t in given]
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _direction_allows(policies: Iterable[dict], pod: Pod, direction: str, other: Pod,
                      namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if (p.get("metadata") or {}).get("namespace") == pod.namespace
                 and direction in _types(p) and selects((p.get("spec") or {}).get("podSelector") or {}, pod.labels)]
    if not selecting:
        return True  # not isolated in this direction
    for policy in selecting:
        for rule in (policy.get("spec") or {}).get(key) or []:
            named = (rule or {}).get(peers) if isinstance(rule, dict) else None
            if not named or any(_peer_admits(peer, pod.namespace, other, namespaces) for peer in named):
                return True
    return False


def egress_allows(policies: Iterable[dict], source: Pod, target: Pod, namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether the egress policies of `source`'s namespace let it open a connection to `target` (whatever the target's)."""
    policies = [p for p in policies if isinstance(p, dict) and p.get("kind") == "NetworkPolicy"]
    return _direction_allows(policies, source, "Egress", target, namespaces)


def ingress_allows(policies: Iterable[dict], source: Pod, target: Pod, namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether the ingress policies of `target`'s namespace admit a connection from `source` (whatever the source's)."""
    policies = [p for p in policies if isinstance(p, dict) and p.get("kind") == "NetworkPolicy"]
    return _direction_allows(policies, target, "Ingress", source, namespaces)


def isolated(policies: Iterable[dict], pod: Pod, direction: str) -> bool:
    """Whether some policy of the pod's namespace selects it for `direction` ("Ingress" or "Egress")."""
    return any((p.get("metadata") or {}).get("namespace") == pod.namespace and direction in _types(p)
               and selects((p.get("spec") or {}).get("podSelector") or {}, pod.labels) for p in policies)


def reaches(policies: Iterable[dict], source: Pod, target: Pod, namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether `source` may open a connection to `target`: its egress and the target's ingress both allow it."""
    policies = [p for p in policies if isinstance(p, dict) and p.get("kind") == "NetworkPolicy"]
    return (_direction_allows(policies, source, "Egress", target, namespaces)
            and _direction_allows(policies, target, "Ingress", source, namespaces))
