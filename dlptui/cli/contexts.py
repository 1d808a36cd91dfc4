"""`dlptui contexts`: the Kubernetes contexts of the cluster profile's kubeconfig, the one in use marked.

Pick one for a single command with the global option `dlptui --context NAME ...` (or for good
with `kube_context` in the cluster profile, or DLPTUI_KUBE_CONTEXT). When the active profile is
local, the kubeconfig is that of the profile named `cluster`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlptui.cli.output import emit_table


@dataclass(frozen=True)
class KubeContext:
    name: str
    current: bool
    cluster: str | None
    server: str | None
    namespace: str | None
    user: str | None


def register(sub) -> None:
    p = sub.add_parser("contexts", help="the Kubernetes contexts of the kubeconfig; choose one with --context NAME")
    p.add_argument("--json", action="store_true", help="print a JSON array of {name, current, cluster, server, namespace, user}")
    p.set_defaults(func=contexts)


def kube_config(config, context: str | None):
    """`config` if it is a cluster profile, else the profile named `cluster` (with the same --context)."""
    from dlptui.config import load_config

    return config if config.kind == "cluster" else load_config(profile="cluster", kube_context=context)


def contexts(args, platform) -> int:
    from dlptui.platform.cluster.kube_connection import describe_contexts, with_context

    config = kube_config(platform.config, args.context)
    if args.context:
        with_context(config, args.context)  # one sentence for a name the kubeconfig lacks
    described, current = describe_contexts(config)
    rows = [KubeContext(current=c["name"] == current, **c) for c in described]
    columns = [
        ("CURRENT", lambda c: "*" if c.current else ""),
        ("NAME", lambda c: c.name),
        ("SERVER", lambda c: c.server),
        ("NAMESPACE", lambda c: c.namespace),
        ("USER", lambda c: c.user),
    ]
    emit_table(rows, columns, args.json, title="Kubernetes contexts")
    return 0
