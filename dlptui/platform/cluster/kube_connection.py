"""One Kubernetes API client per cluster profile, with short timeouts, no retries, and errors as sentences.

    kube = KubeClient(config)
    nodes = kube.call("list the nodes", kube.core.list_node)

The client is built from the kubeconfig of `config.cluster` (a path, or several joined
by ':' as in KUBECONFIG; default ~/.kube/config) and its `kube_context` (default: the
file's current context). Every request goes through `call`, which bounds it by
`config.timeout_s` and turns what the client raises into one `PlatformError` sentence:
a dead or hung server into `Unreachable`, 404 into `NotFound`, 409 into `Conflict`,
a rejected object (400, 422) into `InvalidInput`, a forbidden request (403) into
`NotAvailable`. The `kubernetes` package is imported when a part that uses it is built.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound, PlatformError, Unreachable

if TYPE_CHECKING:
    from dlptui.config import Config

T = TypeVar("T")

DEFAULT_KUBECONFIG = "~/.kube/config"
CONNECT_TIMEOUT_S = 3.0  # at most; a call's whole budget is the profile's timeout_s


def kubeconfig_paths(config: Config) -> str:
    """The kubeconfig path(s) of the profile, '~' expanded, as KUBECONFIG writes them."""
    raw = config.cluster.kubeconfig or DEFAULT_KUBECONFIG
    return os.pathsep.join(str(Path(p).expanduser()) for p in raw.split(os.pathsep) if p)


def _kubeconfig(config: Config) -> tuple[str, Any]:
    """The profile's kubeconfig path(s) and their merged content (a kubernetes ConfigNode)."""
    import yaml
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigMerger

    paths = kubeconfig_paths(config)
    if not any(Path(p).is_file() for p in paths.split(os.pathsep)):
        raise Unreachable(f"There is no kubeconfig at {paths}; set KUBECONFIG or `kubeconfig` in the cluster profile.")
    try:
        merged = KubeConfigMerger(paths).config
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as e:
        raise InvalidInput(f"The kubeconfig {paths} cannot be read ({_first_line(e)}); fix it or point KUBECONFIG elsewhere.") from None
    if merged is None or not isinstance(merged.value, dict):
        raise InvalidInput(f"The kubeconfig {paths} holds no configuration; fix it or point KUBECONFIG elsewhere.")
    return paths, merged


def list_contexts(config: Config) -> tuple[list[str], str | None]:
    """The context names of the profile's kubeconfig and the one in use (the profile's, else the file's current)."""
    _, merged = _kubeconfig(config)
    return _context_names(merged), config.cluster.kube_context or merged.value.get("current-context") or None


def describe_contexts(config: Config) -> tuple[list[dict[str, str | None]], str | None]:
    """Each context of the profile's kubeconfig as {name, cluster, server, namespace, user}, and the one in use."""
    _, merged = _kubeconfig(config)
    clusters = {}
    for entry in merged.value.get("clusters") or []:
        entry = getattr(entry, "value", entry)
        if isinstance(entry, dict) and isinstance(entry.get("cluster"), dict):
            clusters[entry.get("name")] = entry["cluster"].get("server")
    described = []
    for entry in merged.value.get("contexts") or []:
        entry = getattr(entry, "value", entry)
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        context = entry.get("context") if isinstance(entry.get("context"), dict) else {}
        described.append({"name": str(entry["name"]), "cluster": context.get("cluster"),
                          "server": clusters.get(context.get("cluster")), "namespace": context.get("namespace"),
                          "user": context.get("user")})  # fmt: skip
    return described, config.cluster.kube_context or merged.value.get("current-context") or None


def with_context(config: Config, context: str) -> Config:
    """The same profile on another context of its kubeconfig (build a new Platform from it to switch)."""
    paths, merged = _kubeconfig(config)
    _check_context(paths, _context_names(merged), context)
    return replace(config, cluster=replace(config.cluster, kube_context=context))


def _context_names(merged: Any) -> list[str]:
    entries = (getattr(c, "value", c) for c in merged.value.get("contexts") or [])  # ConfigNodes around dicts
    return [str(e["name"]) for e in entries if isinstance(e, dict) and e.get("name")]


def _check_context(paths: str, names: list[str], context: str | None) -> str:
    if not context:
        raise InvalidInput(f"The kubeconfig {paths} names no current context; set kube_context in the cluster profile.")
    if context not in names:
        known = ", ".join(names) or "none"
        raise InvalidInput(f"The kubeconfig {paths} has no context {context!r}; its contexts are: {known}.")
    return context


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0].rstrip(".") if text else type(e).__name__


class KubeClient:
    """A lazily built `kubernetes.client.ApiClient` for the profile, and `call` to use it safely."""

    def __init__(self, config: Config) -> None:
        # Imported here, while Platform builds the part under its lock, not in a health check
        # running beside others: first imports of kubernetes, determined and grpc in parallel
        # threads have deadlocked CPython 3.11's import system (`dlptui status` hung for good).
        import kubernetes.client  # noqa: F401
        import kubernetes.config  # noqa: F401

        self.config = config
        self.timeout = float(config.timeout_s)
        self._client: Any = None
        self._lock = threading.Lock()
        self.context: str | None = config.cluster.kube_context
        self.server: str | None = None  # known once the client is built

    # --- building ---------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The ApiClient (built on first use; raises a PlatformError for a bad kubeconfig)."""
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def _build(self) -> Any:
        from kubernetes import client
        from kubernetes.config.config_exception import ConfigException
        from kubernetes.config.kube_config import KubeConfigLoader

        paths, merged = _kubeconfig(self.config)
        wanted = self.config.cluster.kube_context or merged.value.get("current-context")
        self.context = _check_context(paths, _context_names(merged), wanted)
        configuration = client.Configuration()
        try:
            KubeConfigLoader(config_dict=merged, active_context=self.context, config_base_path=None).load_and_set(configuration)
        except (ConfigException, KeyError, TypeError, ValueError) as e:
            raise InvalidInput(
                f"Context {self.context!r} of the kubeconfig {paths} cannot be used ({_first_line(e)}); fix it or pick another context."
            ) from None
        configuration.retries = False  # one attempt: a dead server is reported at once, not after three
        self.server = configuration.host
        return client.ApiClient(configuration)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    @property
    def version_api(self) -> Any:
        from kubernetes import client

        return client.VersionApi(self.api)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- calling ----------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` within `timeout` (default: the profile's) for connecting and answering together.

        `what` ("list the nodes") names the request in the sentence of an error.
        """
        limit = timeout or self.timeout
        connect = min(CONNECT_TIMEOUT_S, limit / 2)
        try:
            return fn(*args, _request_timeout=(connect, limit - connect), **kwargs)
        except PlatformError:
            raise
        except Exception as e:  # noqa: BLE001 - sorted below; anything unknown is re-raised
            raise self.error(e, what, limit, connect) from None

    def error(self, e: Exception, what: str, limit: float, connect: float) -> Exception:
        """The PlatformError for an exception the kubernetes client raised while trying to `what`."""
        import urllib3.exceptions as u3
        from kubernetes.client.exceptions import ApiException

        where = "The Kubernetes API server"
        if self.server:
            where += f" at {self.server} (context {self.context!r})"
        check = "check that the cluster is up and the kubeconfig points at it"
        if isinstance(e, ApiException) and not e.status:  # the client's wrapping of a urllib3 SSLError
            return Unreachable(f"{where} failed the TLS handshake ({_reason(e.reason)}); check the kubeconfig's certificate authority.")
        if isinstance(e, ApiException):
            status, message = e.status, api_message(e)
            if status == 404:
                return NotFound(f"Could not {what}: {message}.")
            if status == 409:
                return Conflict(f"Could not {what}: {message}.")
            if status in (400, 422):
                return InvalidInput(f"The API server rejected the request to {what}: {message}.")
            if status == 401:
                return Unreachable(f"{where} refused the credentials of the context; log in again or refresh the kubeconfig.")
            if status == 403:
                return NotAvailable(f"{where} does not allow its user to {what} ({message}); ask for the RBAC role.")
            return Unreachable(f"{where} failed to {what} (HTTP {status}: {message}); check the cluster's control plane.")
        reason = e.reason if isinstance(e, u3.MaxRetryError) else e
        if isinstance(reason, u3.NewConnectionError):  # before ConnectTimeoutError, of which it is a subclass
            return Unreachable(f"{where} cannot be reached ({_reason(reason)}); {check}.")
        if isinstance(reason, u3.ConnectTimeoutError):
            return Unreachable(f"{where} did not accept a connection within {connect:g} s; {check}.")
        if isinstance(reason, u3.ReadTimeoutError | TimeoutError):
            return Unreachable(f"{where} did not answer within {limit:g} s while trying to {what}; check that the cluster is up.")
        if isinstance(reason, u3.HTTPError | OSError):
            return Unreachable(f"{where} cannot be reached ({_reason(reason)}); {check}.")
        return e


def api_message(e: Any) -> str:
    """The `message` of a Kubernetes Status body, else the HTTP reason."""
    try:
        body = json.loads(e.body)
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"]).rstrip(".")
    except (TypeError, ValueError):
        pass
    return str(e.reason or "no reason given").rstrip(".")


def _reason(reason: Any) -> str:
    text = str(reason)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "certificate verify failed"):
        if marker in text:
            return marker.lower()
    # urllib3 prefixes the reason with the repr of its connection object: keep the end, on one line
    rest = text.split(": ", 1)[-1].strip().splitlines()
    return rest[0].rstrip(".") if rest else type(reason).__name__


def timestamp(value: Any) -> float | None:
    """A Kubernetes time (a datetime from the typed client, or an RFC 3339 string) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
