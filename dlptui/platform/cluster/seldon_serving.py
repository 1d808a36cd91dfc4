"""The serving part of the cluster profile: SeldonDeployments on Kubernetes, predictions through Istio.

A deployment is a `machinelearning.seldon.io/v1` SeldonDeployment in the profile's
`seldon_namespace`, rendered from infra/seldon/deployment.yaml.tmpl by `render_deployment`
(seldon_template.py, the one template: `infra check` validates the same rendering against the CRD).
Its predictor "main" serves a model version; a predictor "canary" serves another one with
its share of the traffic; a predictor "shadow" (`shadow: true`) gets a copy of every request
and its answers are dropped by Istio. Each predictor names where its version's checkpoint lies
(Determined's checkpoint storage, resolved here, in the console's process, from the registry's
version: `ModelVersion.checkpoint_storage`); its pod reads it with its own read-only access and holds
no Determined credential. With `request_logger_url` set, every predictor carries
Seldon's `logger` (mode all) pointing there; dlptui does not read that log back. The history
of versions lives in the annotation `dlptui.io/history` (JSON, with each version's storage), so rollback
knows where to go. Per-version figures come from Prometheus (`prometheus_url`: Seldon's executor metrics) when
the profile names one. The Seldon operator reports `status.state` (Available, Creating,
Failed), `status.address` and `status.replicas`; requests go through the Istio gateway at
`{istio_ingress}/seldon/<namespace>/<name>/api/v1.0/predictions`, with the serving token (DLPTUI_SERVING_TOKEN,
else the Secret `serving_token_secret` of the namespace) as the header X-Dlptui-Token, which the gateway's
AuthorizationPolicy asks for, over TLS that trusts the system roots and the profile's `ca_file`. The token
never goes over plain http:// to a gateway that is not on this machine (a port-forward to localhost is).
Feedback and the numbers a canary is judged on: seldon_feedback.py (a mixin of this class).
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound, PlatformError, Unreachable
from dlptui.platform import deployment_policy as policy
from dlptui.platform import rules
from dlptui.platform.cluster.ca_file import read_ca_file
from dlptui.platform.cluster.kube_connection import KubeClient
from dlptui.platform.cluster.seldon_template import (  # noqa: F401  (render_deployment: this module's API too)
    CANARY, DEFAULT_CANARY_TRAFFIC, MAIN, RESOURCES, SHADOW, check_name, render_deployment, stored_storage,
)
from dlptui.platform.cluster.seldon_feedback import FeedbackAndVerdicts
from dlptui.platform.cluster.seldon_object import (  # noqa: F401  (GROUP, PLURAL, VERSION: this module's API too)
    ALIAS, CRD_NAME, GATE_KEY, GROUP, HISTORY, PLURAL, VERSION, gate_of, history_of, history_storage, routing_of,
    to_deployment,
)
from dlptui.platform.cluster.seldon_token import TOKEN_ENV, TOKEN_HEADER, check_gateway_transport, serving_token, token_place
from dlptui.platform.model import (
    CheckpointStorage,
    Deployment,
    DeploymentChange,
    LoggedPrediction,
    ModelVersion,
    Prediction,
    Service,
    VersionFigures,
    to_dict,
)

if TYPE_CHECKING:
    from dlptui.config import ClusterSettings, Config
    from dlptui.platform.seldon_protocol import SeldonClient

POD_LABEL = "seldon-deployment-id"  # the operator labels each pod of a deployment with its name
MODEL_CONTAINER = "model"  # the graph's unit and its container, as in the template



def _entry(change: str, before: policy.Routing | None, after: policy.Routing, known: dict[int, CheckpointStorage],
           auto: dict | None = None) -> dict:
    return policy.entry(change, policy.who(), before, after, auto,
                        storages={str(n): to_dict(known[n]) for n in after.versions() if n in known})


def _same_model(name: str, routing: policy.Routing, version: ModelVersion | None) -> None:
    if version is not None and version.model != routing.model:
        raise InvalidInput(f"Deployment {name!r} serves {routing.model!r}; its canary and shadow are versions of "
                           f"{routing.model!r} too, not of {version.model!r}.")


def _known(version: ModelVersion) -> dict[int, CheckpointStorage]:
    return {version.version: version.checkpoint_storage} if version.checkpoint_storage is not None else {}


def prediction_client(cluster: ClusterSettings, token: str) -> SeldonClient:
    """The client for predictions through the Istio gateway: the serving token as TOKEN_HEADER, and TLS that
    trusts the system roots and, when the profile sets ca_file, the private CA that signed the gateway's certificate."""
    import ssl

    from dlptui.platform.seldon_protocol import SeldonClient

    pem = read_ca_file(cluster.ca_file)
    verify = None
    if pem is not None:
        verify = ssl.create_default_context()
        verify.load_verify_locations(cadata=pem)  # read and checked once, by read_ca_file
    return SeldonClient(headers={TOKEN_HEADER: token}, verify=verify)


# --- the part ---------------------------------------------------------------------------


class SeldonServing(FeedbackAndVerdicts):
    """`ports.Serving` over SeldonDeployments in the profile's `seldon_namespace`."""

    def __init__(self, config: Config, platform: Any = None) -> None:
        self.config = config
        self.platform = platform  # its registry says where a version's checkpoint lies, when nothing else does
        self.namespace = config.cluster.seldon_namespace
        self.kube = KubeClient(config)
        self._client: SeldonClient | None = None
        self._lock = threading.Lock()

    # --- health and reading --------------------------------------------------------

    def health(self) -> Service:
        service = Service(part="serving", backend="Seldon Core", reachable=False, endpoint=self.config.cluster.istio_ingress)
        try:
            items = self._list(timeout=self.config.timeout_s)
        except NotFound:
            detail = (
                f"The Kubernetes API server at {self.kube.server} answers, but the SeldonDeployment CRD ({CRD_NAME}) "
                "is not installed; install Seldon Core on the cluster."
            )
            return replace(service, detail=detail)
        except PlatformError as e:
            return replace(service, detail=str(e))
        return replace(
            service,
            reachable=True,
            version=f"{GROUP}/{VERSION}",
            detail=f"SeldonDeployment CRD installed; {len(items)} deployments in namespace {self.namespace}",
        )

    def list_deployments(self) -> list[Deployment]:
        ingress = self.config.cluster.istio_ingress
        return sorted((to_deployment(o, ingress) for o in self._list()), key=lambda d: d.name)

    def get_deployment(self, name: str) -> Deployment:
        return to_deployment(self._get(name), self.config.cluster.istio_ingress)

    # --- changing -----------------------------------------------------------------------

    def deploy(self, name: str, version: ModelVersion, alias: str | None = None) -> Deployment:
        storage = {version.version: self._storage(version.model, version.version, _known(version))}
        body = self._render(name, version.model, version.version, storage)
        entry = _entry("deployed", None, policy.Routing(version.model, version.version), storage)
        annotations = body["metadata"].setdefault("annotations", {})
        annotations[HISTORY] = json.dumps([entry])
        if alias:
            annotations[ALIAS] = alias
        return self.create_object(body)

    def create_object(self, body: dict) -> Deployment:
        """Create a SeldonDeployment object as given (the rendered template, or one of the user's)."""
        name = (body.get("metadata") or {}).get("name", "")
        try:
            created = self.kube.call(
                f"create SeldonDeployment {name!r} in namespace {self.namespace!r}",
                self.kube.custom.create_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, body,
            )  # fmt: skip
        except Conflict:
            raise Conflict(
                f"There is already a deployment {name!r} in namespace {self.namespace!r}; update it or pick another name."
            ) from None
        except NotFound:
            raise self._missing_place() from None
        return to_deployment(created, self.config.cluster.istio_ingress)

    def update(self, name: str, version: ModelVersion, alias: str | None = None, auto: dict | None = None) -> Deployment:
        """Point predictor "main" at `version` (the operator rolls its pods over); a canary of that version is
        promoted, a shadow of it becomes the primary (deployment_policy)."""
        obj = self._get(name)
        after, change = policy.with_primary(routing_of(obj), version.model, version.version)
        return self._apply(name, obj, after, change, _known(version), alias, auto)

    def rollback(self, name: str) -> Deployment:
        obj = self._get(name)
        target = policy.rollback_target(name, history_of(obj), routing_of(obj))
        return self._apply(name, obj, target, "rolled back", {})

    def history(self, name: str) -> list[DeploymentChange]:
        return policy.changes(history_of(self._get(name)))

    def set_canary(self, name: str, version: ModelVersion | None, traffic: int, auto: dict | None = None) -> Deployment:
        if version is not None:
            rules.check_canary_traffic(traffic)  # the arguments first, as on the local profile
        obj = self._get(name)
        current = routing_of(obj)
        _same_model(name, current, version)
        after = policy.with_canary(name, current, version.version if version else None, int(traffic))
        return self._apply(name, obj, after, "canary" if version else "canary removed", _known(version) if version else {},
                           auto=auto)

    def set_gate(self, name: str, gate: dict | None) -> Deployment:
        """The policy in the annotation (JSON), the change in the history; the routing stays as it is."""
        gate = policy.check_gate(gate)
        obj = self._get(name)
        if gate_of(obj) == gate:
            return to_deployment(obj, self.config.cluster.istio_ingress)
        history = policy.appended(history_of(obj), policy.gate_entry(policy.who(), routing_of(obj), gate))
        return self._patch(name, None, history, **{GATE_KEY: json.dumps(gate) if gate else None})

    def set_shadow(self, name: str, version: ModelVersion | None) -> Deployment:
        obj = self._get(name)
        current = routing_of(obj)
        _same_model(name, current, version)
        after = policy.with_shadow(name, current, version.version if version else None)
        return self._apply(name, obj, after, "shadow" if version else "shadow removed", _known(version) if version else {})

    def _apply(self, name: str, obj: dict, target: policy.Routing, change: str, known: dict[int, CheckpointStorage],
               alias: str | None = None, auto: dict | None = None) -> Deployment:
        """Render the predictors of `target` and record the change (with each version's storage) in the history."""
        current = routing_of(obj)
        if target == current and alias is None:
            return to_deployment(obj, self.config.cluster.istio_ingress)
        known = {**history_storage(history_of(obj)), **stored_storage(obj), **known}
        for number in target.versions():
            known[number] = self._storage(target.model, number, known)
        body = self._render(name, target.model, target.primary, known, target.canary,
                            target.share or DEFAULT_CANARY_TRAFFIC, target.shadow)
        history = history_of(obj)
        if target != current:
            history = policy.appended(history, _entry(change, current, target, known, auto))
        return self._patch(name, body, history, alias)

    def versions(self, name: str) -> list[VersionFigures]:
        """Traffic per predictor from the object; requests, errors and latency from Prometheus when it is named."""
        current = self.get_deployment(name)
        roles = [("primary", current.version, 100 - (current.canary_traffic if current.canary_version is not None else 0))]
        if current.canary_version is not None:
            roles.append(("canary", current.canary_version, current.canary_traffic))
        if current.shadow_version is not None:
            roles.append(("shadow", current.shadow_version, 100))
        url = self.config.cluster.prometheus_url
        if not url:
            note = ("The cluster profile names no Prometheus (prometheus_url or DLPTUI_PROMETHEUS_URL): requests, errors "
                    "and latency per version are not known here; Seldon's and Istio's metrics are in Prometheus.")
            return [VersionFigures(version=v, role=r, traffic=t, note=note) for r, v, t in roles]
        from dlptui.platform.cluster import seldon_metrics

        predictors = {"primary": MAIN, "canary": CANARY, "shadow": SHADOW}
        return [seldon_metrics.figures(url, self.namespace, name, predictors[r], r, v, t, self.config.timeout_s)
                for r, v, t in roles]

    def _no_kept_inputs(self, name: str):
        self._get(name)
        return NotAvailable("The cluster keeps no prediction log, so it keeps no inputs to look at or replay; "
                            "Seldon's request logger (request_logger_url) can send each request to a collector instead.")

    def kept_inputs(self, name: str):
        raise self._no_kept_inputs(name)

    def set_keep_inputs(self, name: str, keep: int, cap_bytes: int | None = None):
        raise self._no_kept_inputs(name)

    def kept_predictions(self, name: str, since: float | None = None, limit: int = 100_000):
        raise self._no_kept_inputs(name)

    def kept_input(self, name: str, prediction_id: int) -> bytes:
        raise self._no_kept_inputs(name)

    def predictions(self, name: str, since: float | None = None, limit: int = 1000) -> list[LoggedPrediction]:
        self._get(name)
        where = self.config.cluster.request_logger_url
        raise NotAvailable(
            "The cluster keeps no prediction log dlptui can read: "
            + (f"Seldon's request logger sends every request and answer to {where}; read them there."
               if where else "set request_logger_url (DLPTUI_REQUEST_LOGGER_URL) to have Seldon's logger send them to a collector.")
        )

    def prediction_summaries(self, name: str, version: int | None = None, limit: int = 1000) -> list:
        self._get(name)
        where = self.config.cluster.request_logger_url
        raise NotAvailable(
            f"The cluster keeps no prediction log dlptui can read, so the drift of {name} cannot be judged here: "
            + (f"each answer's summary (meta.tags) goes with it to Seldon's request logger at {where}."
               if where else "set request_logger_url (DLPTUI_REQUEST_LOGGER_URL) to have Seldon's logger keep each answer's summary.")
        )

    def drift_record(self, name: str) -> dict:
        return self.prediction_summaries(name)  # type: ignore[return-value]  (raises the sentence)

    def save_drift_record(self, name: str, record: dict) -> None:
        self.prediction_summaries(name)

    def undeploy(self, name: str) -> None:
        try:
            self.kube.call(
                f"delete SeldonDeployment {name!r}",
                self.kube.custom.delete_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name,
            )  # fmt: skip
        except NotFound:
            raise self._no_such(name) from None

    # --- logs and predictions -----------------------------------------------------------

    def logs(self, name: str, lines: int = 50) -> list[str]:
        """The last `lines` of the model container of each pod of the deployment (prefixed by pod when several)."""
        self._get(name)
        pods = self.kube.call(
            f"list the pods of deployment {name!r}",
            self.kube.core.list_namespaced_pod, self.namespace, label_selector=f"{POD_LABEL}={name}",
        ).items  # fmt: skip
        if not pods:
            raise Conflict(
                f"Deployment {name!r} has no pod yet; the Seldon operator creates them once it has seen the deployment."
            )
        result: list[str] = []
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            prefix = f"{pod.metadata.name}: " if len(pods) > 1 else ""
            containers = [c.name for c in pod.spec.containers]
            container = MODEL_CONTAINER if MODEL_CONTAINER in containers else containers[0]
            waiting = _not_started(pod, container)
            if waiting and len(pods) == 1:
                raise Conflict(f"Pod {pod.metadata.name!r} of deployment {name!r} has not started its {container} container yet ({waiting}).")
            if waiting:
                result.append(f"{prefix}(not started yet: {waiting})")
                continue
            text = self.kube.call(
                f"read the log of pod {pod.metadata.name!r}",
                self.kube.core.read_namespaced_pod_log,
                pod.metadata.name, self.namespace, container=container, tail_lines=lines,
            )  # fmt: skip
            result.extend(prefix + line for line in str(text).splitlines())
        return result

    def predict(self, name: str, image: bytes, filename: str = "image") -> Prediction:
        deployment = self.get_deployment(name)  # an unknown name is NotFound first, as on the local profile
        if not self.config.cluster.istio_ingress:
            raise NotAvailable(
                "Predictions on the cluster go through the Istio gateway; set istio_ingress in the cluster profile "
                "(or DLPTUI_ISTIO_INGRESS) to its address."
            )
        check_gateway_transport(deployment.endpoint or self.config.cluster.istio_ingress)  # before the token is read
        from dlptui.platform.seldon_protocol import NotServing, Refused

        try:
            return self.client.predict(deployment.endpoint, image, filename)
        except NotServing as e:  # the gateway has no ready pod of it ("no healthy upstream"), or its model is loading
            raise Unreachable(f"Deployment {name!r} is not serving: the Istio gateway answered {e.answer}; see its pods "
                              f"with `dlptui deployment describe {name}`.") from None
        except Refused as e:
            self._drop_client()  # the next prediction reads the token again
            place = token_place(self.namespace, self.config.cluster.serving_token_secret)
            raise Refused(f"The Istio gateway refused the prediction ({e.status}): the serving token is missing or wrong; "
                          f"check {TOKEN_ENV} or the Secret {place}.", e.status) from None

    @property
    def client(self) -> SeldonClient:
        """The prediction client, sending the serving token (read on first use) as TOKEN_HEADER."""
        with self._lock:
            if self._client is not None:
                return self._client
        token = serving_token(self.kube, self.namespace, self.config.cluster.serving_token_secret)
        client = prediction_client(self.config.cluster, token)
        with self._lock:
            if self._client is None:
                self._client = client
                return client
            existing = self._client  # another thread made one meanwhile
        client.close()
        return existing

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        self.kube.close()
        self._drop_client()

    # --- helpers ------------------------------------------------------------------------

    def _render(self, name: str, model: str, version: int, storage: dict[int, CheckpointStorage], canary: int | None = None,
                traffic: int = DEFAULT_CANARY_TRAFFIC, shadow: int | None = None) -> dict:
        settings = self.config.cluster
        for number in (version, canary, shadow):
            if number is not None and number not in storage:
                storage = {**storage, number: self._storage(model, number, storage)}
        return render_deployment(
            name, self.namespace, settings.serving_image, model, version, storage, canary, traffic or DEFAULT_CANARY_TRAFFIC,
            shadow, settings.request_logger_url, {key: getattr(settings, f"serving_{key}", None) for key in RESOURCES},
            settings.storage_secret,
        )

    def _storage(self, model: str, version: int, known: dict[int, CheckpointStorage]) -> CheckpointStorage:
        """Where version `version` of `model` keeps its checkpoint: from what is known already (the version given,
        the predictors of the object, its history), else from the registry (the Determined master, as this user)."""
        if version in known:
            return known[version]
        registry = getattr(self.platform, "registry", None) if self.platform is not None else None
        found = registry.get_version(model, version).checkpoint_storage if registry is not None else None
        if found is None:
            raise NotAvailable(
                f"Where the checkpoint of version {version} of {model!r} lies is not known (the Determined master names "
                "no gcs, s3 or shared_fs checkpoint storage for it); the serving pods read checkpoints from that storage."
            )
        return found

    def _list(self, timeout: float | None = None) -> list[dict]:
        listing = self.kube.call(
            f"list the SeldonDeployments of namespace {self.namespace!r}",
            self.kube.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, timeout=timeout,
        )  # fmt: skip
        return listing.get("items", [])

    def _get(self, name: str) -> dict:
        check_name(name)
        try:
            return self.kube.call(
                f"read SeldonDeployment {name!r}",
                self.kube.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name,
            )  # fmt: skip
        except NotFound:
            raise self._no_such(name) from None

    def _patch(self, name: str, body: dict | None, history: list[dict] | None = None, alias: str | None = None,
               **annotations: str | None) -> Deployment:
        """Replace the predictors (a JSON merge patch replaces a list whole) with those of the rendered template (None:
        keep them), and set the annotations given (HISTORY, ALIAS, and those of `annotations`; a None removes one)."""
        patch: dict = {"spec": {"predictors": body["spec"]["predictors"]}} if body is not None else {}
        annotations = {**({HISTORY: json.dumps(history)} if history is not None else {}), **({ALIAS: alias} if alias else {}),
                       **annotations}
        if annotations:
            patch["metadata"] = {"annotations": annotations}
        try:
            patched = self.kube.call(
                f"update SeldonDeployment {name!r}",
                self.kube.custom.patch_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name, patch,
            )  # fmt: skip
        except NotFound:
            raise self._no_such(name) from None
        return to_deployment(patched, self.config.cluster.istio_ingress)

    def _no_such(self, name: str) -> NotFound:
        return NotFound(f"There is no deployment {name!r} in namespace {self.namespace!r}; list the deployments to see what is there.")

    def _missing_place(self) -> PlatformError:
        """Why a create found nothing: the namespace, or the CRD itself."""
        try:
            self.kube.call(f"read namespace {self.namespace!r}", self.kube.core.read_namespace, self.namespace)
        except NotFound:
            return NotFound(
                f"The namespace {self.namespace!r} does not exist; create it or set seldon_namespace in the cluster profile."
            )
        return NotAvailable(f"The SeldonDeployment CRD ({CRD_NAME}) is not installed on the cluster; install Seldon Core.")


def _not_started(pod: Any, container: str) -> str | None:
    """Why `container` of `pod` has no log to read yet (its waiting reason or the pod's phase), or None if it has one."""
    status = next((s for s in pod.status.container_statuses or [] if s.name == container), None)
    state = status.state if status else None
    if state and (state.running or state.terminated) or (status and status.restart_count):
        return None
    waiting = state.waiting.reason if state and state.waiting else None
    return waiting or pod.status.phase or "Pending"
