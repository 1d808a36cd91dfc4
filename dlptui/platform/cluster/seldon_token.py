"""The serving token: what the Istio gateway's AuthorizationPolicy (infra/istio/serving-auth.yaml) asks of
every prediction, sent by the cluster's serving client as the header TOKEN_HEADER.

It comes from the environment (DLPTUI_SERVING_TOKEN) or, when that is unset, from key `token` of the
Kubernetes Secret the profile names (serving_token_secret, in the serving namespace; the Role
dlptui-predictor of infra/rbac.yaml may read it); never from the config file, and it is never logged
or put in a sentence. It never goes over plain http:// to a host that is not this machine (`in_clear`).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from dlptui.errors import NotAvailable, NotFound

TOKEN_HEADER = "X-Dlptui-Token"
TOKEN_ENV = "DLPTUI_SERVING_TOKEN"
TOKEN_KEY = "token"


def in_clear(url: str) -> bool:
    """Whether a request to `url` would carry the token across a network unencrypted: not https://, and its host
    not this machine (localhost, 127.0.0.0/8, ::1: a `kubectl port-forward`)."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return parts.scheme.lower() != "https" and not loopback


def check_gateway_transport(url: str) -> None:
    """The serving token never crosses a network in clear: plain http:// only to this machine (a port-forward)."""
    if in_clear(url):
        raise NotAvailable(
            f"The Istio gateway at {url} is not on this machine and its address is not https://, so the serving token "
            "would cross the network in clear; set istio_ingress to the gateway's https:// address (or `kubectl "
            "port-forward` it to localhost)."
        )


def token_place(namespace: str, secret: str) -> str:
    return f"{namespace}/{secret} (key {TOKEN_KEY})"


def serving_token(kube: Any, namespace: str, secret: str, env: Any = os.environ) -> str:
    """The token, from `env` or the Secret `namespace`/`secret` read with `kube` (a KubeClient); one sentence if neither has one."""
    token = str(env.get(TOKEN_ENV) or "").strip()
    where = TOKEN_ENV
    if not token:
        where = f"the Secret {token_place(namespace, secret)}"
        try:
            found = kube.call(f"read the Secret {namespace}/{secret}", kube.core.read_namespaced_secret, secret, namespace)
        except NotFound:
            raise NotAvailable(
                f"Predictions on the cluster need the serving token, and there is neither {TOKEN_ENV} nor {where}; "
                "set the variable, or create the Secret with infra/secrets/create-secrets.sh."
            ) from None
        except NotAvailable:  # RBAC: this user may not read it
            raise NotAvailable(
                f"Your Kubernetes user may not read {where}, which holds the serving token: bind it to the Role "
                f"dlptui-predictor of infra/rbac.yaml, or set {TOKEN_ENV}."
            ) from None
        data = (getattr(found, "data", None) or {}).get(TOKEN_KEY) or ""
        try:
            token = base64.b64decode(data, validate=True).decode("ascii").strip()
        except (ValueError, UnicodeDecodeError):
            token = ""
    if not token or not token.isprintable() or " " in token:
        raise NotAvailable(f"The serving token from {where} is empty or holds spaces or line breaks; set it again "
                           "(infra/secrets/secrets.env.template says how).")
    return token
