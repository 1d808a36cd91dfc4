"""SeldonServing against a real kube-apiserver with the project's SeldonDeployment CRD installed.

There is no Seldon operator: where a test needs a status, it plays the operator and writes
`status` through the status subresource, as the operator does.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace

import pytest

from dlptui.platform import Platform
from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound, Unreachable
from dlptui.platform.model import CheckpointStorage, DeploymentState, ModelVersion
from dlptui.platform.cluster.seldon_serving import GROUP, PLURAL, VERSION, SeldonServing, render_deployment
from tests.fixtures.kube_cluster import CRD_FILE, GPU_NODE, ensure_service_account, install_crd

IMAGE = "registry.example/dlptui-serving:0.1.0"


def storage(n: int) -> CheckpointStorage:
    """Where version n keeps its checkpoint: the checkpoint bucket (odd n), or a shared_fs storage (even n)."""
    if n % 2:
        return CheckpointStorage("gcs", f"ckpt-{n}", bucket="dlp-checkpoints", prefix="checkpoints")
    return CheckpointStorage("shared_fs", f"ckpt-{n}", host_path="/mnt/checkpoints", storage_path="determined-checkpoint")


def version(n: int, model: str = "dogcat-model") -> ModelVersion:
    return ModelVersion(model=model, version=n, checkpoint_uuid=f"ckpt-{n}", created=0.0, checkpoint_storage=storage(n))


@pytest.fixture
def config(cluster_config, namespace):
    settings = replace(cluster_config.cluster, seldon_namespace=namespace, serving_image=IMAGE)
    return replace(cluster_config, cluster=settings)


@pytest.fixture
def serving(config):
    part = Platform(config).serving
    assert isinstance(part, SeldonServing)
    yield part
    part.close()


def stored(kube_api, namespace: str, name: str) -> dict:
    return kube_api[0].get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def write_status(kube_api, namespace: str, name: str, status: dict) -> None:
    """What the Seldon operator does when it has built (or failed to build) the deployment."""
    kube_api[0].patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": status})


def test_the_created_object_is_the_rendered_template(serving, kube_api, namespace):
    serving.deploy("dogcat-deploy", version(1))
    obj = stored(kube_api, namespace, "dogcat-deploy")
    expected = render_deployment("dogcat-deploy", namespace, IMAGE, "dogcat-model", 1, {1: storage(1)})
    assert obj["spec"] == expected["spec"]
    assert obj["metadata"]["labels"] == expected["metadata"]["labels"]
    assert (obj["apiVersion"], obj["kind"]) == ("machinelearning.seldon.io/v1", "SeldonDeployment")
    params = {p["name"]: p["value"] for p in obj["spec"]["predictors"][0]["graph"]["parameters"]}
    assert params == {"checkpoint_uri": "gs://dlp-checkpoints/checkpoints/ckpt-1", "model_name": "dogcat-model", "version": "1"}


def test_create_list_update_canary_delete_round_trip(serving, kube_api, namespace):
    created = serving.deploy("dogcat-deploy", version(1))
    assert (created.name, created.model, created.version, created.state) == ("dogcat-deploy", "dogcat-model", 1, DeploymentState.STARTING)
    assert created.detail == "The Seldon operator has not reported on it yet."
    assert created.created is not None and created.canary_version is None

    assert [d.name for d in serving.list_deployments()] == ["dogcat-deploy"]

    updated = serving.update("dogcat-deploy", version(2))
    assert (updated.version, updated.canary_version) == (2, None)
    assert stored(kube_api, namespace, "dogcat-deploy")["spec"]["predictors"][0]["labels"] == {"dlptui.io/model-version": "v2"}

    canary = serving.set_canary("dogcat-deploy", version(3), 20)
    assert (canary.version, canary.canary_version, canary.canary_traffic) == (2, 3, 20)
    predictors = stored(kube_api, namespace, "dogcat-deploy")["spec"]["predictors"]
    assert [(p["name"], p["traffic"]) for p in predictors] == [("main", 80), ("canary", 20)]
    assert sum(p["traffic"] for p in predictors) == 100

    promoted = serving.update("dogcat-deploy", version(3))  # the canary's version becomes the main one
    assert (promoted.version, promoted.canary_version, promoted.canary_traffic) == (3, None, 0)
    assert [p["traffic"] for p in stored(kube_api, namespace, "dogcat-deploy")["spec"]["predictors"]] == [100]

    serving.set_canary("dogcat-deploy", version(4), 50)
    removed = serving.set_canary("dogcat-deploy", None, 0)
    assert (removed.version, removed.canary_version) == (3, None)

    serving.undeploy("dogcat-deploy")
    assert serving.list_deployments() == []
    with pytest.raises(NotFound, match=rf"^There is no deployment 'dogcat-deploy' in namespace '{namespace}'"):
        serving.get_deployment("dogcat-deploy")


def test_shadow_logger_and_history_as_the_api_server_stores_them(config, kube_api, namespace):
    """A canary and a shadow side by side, Seldon's logger on every predictor, the history in an annotation."""
    logged = replace(config, cluster=replace(config.cluster, request_logger_url="http://logger.seldon-logs/"))
    serving = Platform(logged).serving
    try:
        serving.deploy("dogcat-deploy", version(1))
        serving.set_canary("dogcat-deploy", version(2), 30)
        both = serving.set_shadow("dogcat-deploy", version(3))
        assert (both.version, both.canary_version, both.canary_traffic, both.shadow_version) == (1, 2, 30, 3)
        predictors = stored(kube_api, namespace, "dogcat-deploy")["spec"]["predictors"]
        assert [(p["name"], p["traffic"], p.get("shadow", False)) for p in predictors] == [
            ("main", 70, False), ("canary", 30, False), ("shadow", 0, True)]
        assert all(p["graph"]["logger"] == {"url": "http://logger.seldon-logs/", "mode": "all"} for p in predictors)
        assert {p["labels"]["dlptui.io/model-version"] for p in predictors} == {"v1", "v2", "v3"}
        # the canary's share survives a shadow change, and the shadow a canary change
        assert serving.set_canary("dogcat-deploy", None, 0).shadow_version == 3
        assert serving.set_shadow("dogcat-deploy", None).shadow_version is None

        serving.update("dogcat-deploy", version(2))
        back = serving.rollback("dogcat-deploy")
        assert back.version == 1
        annotation = stored(kube_api, namespace, "dogcat-deploy")["metadata"]["annotations"]["dlptui.io/history"]
        entries = json.loads(annotation)
        assert [(e["change"], e["to_version"], e["storages"][str(e["to_version"])]["kind"]) for e in entries] == [
            ("deployed", 1, "gcs"), ("canary", 1, "gcs"), ("shadow", 1, "gcs"), ("canary removed", 1, "gcs"),
            ("shadow removed", 1, "gcs"), ("updated", 2, "shared_fs"), ("rolled back", 1, "gcs")]
        assert entries[2]["after"] == {"model": "dogcat-model", "primary": 1, "canary": 2, "share": 30, "shadow": 3}
        # rolled back to where version 1 lies, read from the history (no registry answers here)
        [main] = [p for p in stored(kube_api, namespace, "dogcat-deploy")["spec"]["predictors"] if p["name"] == "main"]
        assert {p["name"]: p["value"] for p in main["graph"]["parameters"]}["checkpoint_uri"] == (
            "gs://dlp-checkpoints/checkpoints/ckpt-1")

        figures = serving.versions("dogcat-deploy")
        assert [(f.role, f.version, f.requests) for f in figures] == [("primary", 1, None)]
        assert "Prometheus" in figures[0].note
        with pytest.raises(NotAvailable, match="logger.seldon-logs"):
            serving.predictions("dogcat-deploy")
    finally:
        serving.close()


def test_the_stored_object_gives_the_pods_no_determined_credential(serving, kube_api, namespace, monkeypatch):
    """The SeldonDeployment as the API server keeps it: no DET_* variable, no Secret reference of any kind (envFrom,
    secretKeyRef, a secret volume, the graph's envSecretRefName) and no credential of this console's environment; each
    predictor names where its checkpoint lies, a shared_fs storage mounted read-only."""
    password = secrets.token_hex(12)
    monkeypatch.setenv("DET_PASS", password)
    monkeypatch.setenv("DET_TOKEN", password)
    serving.deploy("dogcat-deploy", version(1))
    serving.set_canary("dogcat-deploy", version(2), 10)
    serving.set_shadow("dogcat-deploy", version(3))
    obj = stored(kube_api, namespace, "dogcat-deploy")
    assert password not in json.dumps(obj)
    uris = []
    for predictor in obj["spec"]["predictors"]:
        assert "envSecretRefName" not in predictor["graph"]
        uris.append({p["name"]: p["value"] for p in predictor["graph"]["parameters"]}["checkpoint_uri"])
        (component,) = predictor["componentSpecs"]
        assert component["spec"]["automountServiceAccountToken"] is False
        assert not [v for v in component["spec"].get("volumes", []) if "secret" in v]
        (container,) = component["spec"]["containers"]
        assert "envFrom" not in container
        names = {e["name"] for e in container.get("env", [])}
        assert not [n for n in names if n.startswith("DET_") or n == "PACHD_TOKEN"], names
        assert not [e for e in container.get("env", []) if "secretKeyRef" in (e.get("valueFrom") or {})]
    assert uris == ["gs://dlp-checkpoints/checkpoints/ckpt-1", "/mnt/checkpoints/determined-checkpoint/ckpt-2",
                    "gs://dlp-checkpoints/checkpoints/ckpt-3"]
    canary = obj["spec"]["predictors"][1]["componentSpecs"][0]["spec"]
    assert {"name": "checkpoints", "hostPath": {"path": "/mnt/checkpoints", "type": "Directory"}} in canary["volumes"]
    assert {"name": "checkpoints", "mountPath": "/mnt/checkpoints", "readOnly": True} in canary["containers"][0]["volumeMounts"]


def test_a_storage_secret_is_the_only_secret_the_pods_read(config, kube_api, namespace):
    """For S3 without workload identity: the profile's storage_secret (read-only keys) is read with envFrom, and the
    S3 endpoint of the checkpoint storage is a parameter."""
    reader = replace(config, cluster=replace(config.cluster, storage_secret="dlptui-storage-reader"))
    serving = Platform(reader).serving
    try:
        minio = CheckpointStorage("s3", "ckpt-7", bucket="checkpoints", prefix="det", endpoint_url="https://minio.storage:9000")
        serving.deploy("dogcat-deploy", replace(version(7), checkpoint_storage=minio))
        [predictor] = stored(kube_api, namespace, "dogcat-deploy")["spec"]["predictors"]
        assert {p["name"]: p["value"] for p in predictor["graph"]["parameters"]} == {
            "checkpoint_uri": "s3://checkpoints/det/ckpt-7", "model_name": "dogcat-model", "version": "7",
            "storage_endpoint": "https://minio.storage:9000"}
        [container] = predictor["componentSpecs"][0]["spec"]["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": "dlptui-storage-reader"}}]
    finally:
        serving.close()


def test_a_version_whose_storage_no_pod_can_read_is_one_sentence(serving):
    azure = CheckpointStorage("azure", "ckpt-9", bucket="container")
    with pytest.raises(NotAvailable) as caught:
        serving.deploy("dogcat-deploy", replace(version(9), checkpoint_storage=azure))
    assert str(caught.value) == ("Version 9 of 'dogcat-model' has its checkpoint in azure storage, which the serving pods "
                                 "cannot read; use gcs, s3 or shared_fs checkpoint storage on the Determined master.")


def test_the_status_the_operator_writes_shows_in_the_list(serving, kube_api, namespace, config):
    serving.deploy("dogcat-deploy", version(5))
    address = f"http://dogcat-deploy-default.{namespace}.svc.cluster.local:8000/api/v1.0/predictions"
    write_status(kube_api, namespace, "dogcat-deploy", {
        "state": "Available", "replicas": 2, "address": {"url": address},
        "deploymentStatus": {"dogcat-deploy-main-0-model": {"replicas": 2, "availableReplicas": 2}},
    })  # fmt: skip
    (shown,) = serving.list_deployments()
    assert (shown.state, shown.endpoint, shown.replicas, shown.version) == (DeploymentState.AVAILABLE, address, 2, 5)

    write_status(kube_api, namespace, "dogcat-deploy", {"state": "Failed", "description": "Deployment failed: image pull back-off."})
    failed = serving.get_deployment("dogcat-deploy")
    assert (failed.state, failed.detail) == (DeploymentState.FAILED, "Deployment failed: image pull back-off.")

    write_status(kube_api, namespace, "dogcat-deploy", {"state": "Creating"})
    assert serving.get_deployment("dogcat-deploy").state is DeploymentState.STARTING

    through_istio = SeldonServing(replace(config, cluster=replace(config.cluster, istio_ingress="http://34.1.2.3/")))
    assert through_istio.get_deployment("dogcat-deploy").endpoint == (
        f"http://34.1.2.3/seldon/{namespace}/dogcat-deploy/api/v1.0/predictions"
    )


def test_status_is_only_written_through_the_status_subresource(serving, namespace, kube_api):
    body = render_deployment("sneaky", namespace, IMAGE, "dogcat-model", 1, {1: storage(1)})
    body["status"] = {"state": "Available"}
    created = serving.create_object(body)
    assert created.state is DeploymentState.STARTING
    assert "status" not in stored(kube_api, namespace, "sneaky") or not stored(kube_api, namespace, "sneaky")["status"]


def test_the_schema_rejects_a_malformed_object_with_one_sentence(serving, namespace):
    bad = render_deployment("bad-traffic", namespace, IMAGE, "dogcat-model", 1, {1: storage(1)})
    bad["spec"]["predictors"][0]["traffic"] = 150
    with pytest.raises(InvalidInput) as caught:
        serving.create_object(bad)
    message = str(caught.value)
    assert message.startswith(f"The API server rejected the request to create SeldonDeployment 'bad-traffic' in namespace '{namespace}': ")
    assert "spec.predictors.traffic" in message or "spec.predictors[0].traffic" in message
    assert "\n" not in message and message.endswith(".")

    empty = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SeldonDeployment", "metadata": {"name": "no-predictors"}, "spec": {}}
    with pytest.raises(InvalidInput, match=r"spec\.predictors: Required value"):
        serving.create_object(empty)


def test_user_mistakes_are_sentences(serving, namespace, cluster_config):
    serving.deploy("dogcat-deploy", version(1))
    with pytest.raises(Conflict, match=rf"^There is already a deployment 'dogcat-deploy' in namespace '{namespace}'; update it"):
        serving.deploy("dogcat-deploy", version(2))
    with pytest.raises(NotFound, match="^There is no deployment 'nothing-here'"):
        serving.update("nothing-here", version(2))
    with pytest.raises(NotFound, match="^There is no deployment 'nothing-here'"):
        serving.undeploy("nothing-here")
    with pytest.raises(InvalidInput, match="^The deployment name 'Dogcat_Deploy' is not valid"):
        serving.deploy("Dogcat_Deploy", version(1))
    with pytest.raises(InvalidInput, match="between 1 and 99 percent of the traffic, not 100"):
        serving.set_canary("dogcat-deploy", version(2), 100)
    with pytest.raises(InvalidInput, match="already serves version 1; pick another version"):
        serving.set_canary("dogcat-deploy", version(1), 10)
    nowhere = SeldonServing(replace(cluster_config, cluster=replace(cluster_config.cluster, seldon_namespace="no-such-ns")))
    with pytest.raises(NotFound, match="^The namespace 'no-such-ns' does not exist; create it or set seldon_namespace"):
        nowhere.deploy("dogcat-deploy", version(1))


def test_logs_say_when_there_is_no_pod_or_no_log_yet(serving, kube_api, namespace):
    serving.deploy("dogcat-deploy", version(1))
    with pytest.raises(Conflict, match="^Deployment 'dogcat-deploy' has no pod yet"):
        serving.logs("dogcat-deploy")
    ensure_service_account(kube_api[1], namespace)
    pod = {
        "metadata": {"name": "dogcat-deploy-main-0-model-abc12", "labels": {"seldon-deployment-id": "dogcat-deploy"}},
        "spec": {"containers": [{"name": "model", "image": IMAGE}, {"name": "seldon-container-engine", "image": "executor"}]},
    }
    kube_api[1].create_namespaced_pod(namespace, pod)  # what the operator would create; no kubelet ever starts it
    with pytest.raises(Conflict, match=r"^Pod 'dogcat-deploy-main-0-model-abc12' of deployment 'dogcat-deploy' has not started its model container yet \(Pending\)\.$"):
        serving.logs("dogcat-deploy")
    with pytest.raises(NotFound, match="^There is no deployment 'other'"):
        serving.logs("other")


def running_pod(kube_api, namespace: str, name: str, deployment: str) -> None:
    """A pod of the deployment on GPU_NODE whose model container runs (as the operator and kubelet would make it)."""
    pod = {
        "metadata": {"name": name, "labels": {"seldon-deployment-id": deployment}},
        "spec": {"nodeName": GPU_NODE, "containers": [{"name": "seldon-container-engine", "image": "executor"}, {"name": "model", "image": IMAGE}]},
    }  # fmt: skip
    kube_api[1].create_namespaced_pod(namespace, pod)
    running = {"running": {"startedAt": "2026-11-29T02:00:00Z"}}
    statuses = [
        {"name": c, "ready": True, "restartCount": 0, "image": IMAGE, "imageID": "", "state": running}
        for c in ("model", "seldon-container-engine")
    ]
    kube_api[1].patch_namespaced_pod_status(name, namespace, {"status": {"phase": "Running", "containerStatuses": statuses}})


def test_logs_are_read_through_the_api_server_from_the_model_container(serving, kube_api, namespace, kube_cluster):
    serving.deploy("dogcat-deploy", version(1))
    ensure_service_account(kube_api[1], namespace)
    running_pod(kube_api, namespace, "dogcat-deploy-main-0-model-aaaaa", "dogcat-deploy")
    lines = [f"model loaded, request {i}" for i in range(100)]
    kube_cluster.kubelet.logs[(namespace, "dogcat-deploy-main-0-model-aaaaa", "model")] = "\n".join(lines) + "\n"
    kube_cluster.kubelet.logs[(namespace, "dogcat-deploy-main-0-model-aaaaa", "seldon-container-engine")] = "executor noise\n"
    assert serving.logs("dogcat-deploy", lines=3) == lines[-3:]

    running_pod(kube_api, namespace, "dogcat-deploy-canary-0-model-bbbbb", "dogcat-deploy")
    kube_cluster.kubelet.logs[(namespace, "dogcat-deploy-canary-0-model-bbbbb", "model")] = "canary up\n"
    assert serving.logs("dogcat-deploy", lines=2) == [
        "dogcat-deploy-canary-0-model-bbbbb: canary up",
        f"dogcat-deploy-main-0-model-aaaaa: {lines[-2]}",
        f"dogcat-deploy-main-0-model-aaaaa: {lines[-1]}",
    ]


def test_predictions_need_the_istio_gateway(serving, config, monkeypatch, dead_address):
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", "t" * 32)  # what the gateway asks for (test_seldon_token.py)
    serving.deploy("dogcat-deploy", version(1))
    with pytest.raises(NotAvailable, match="set istio_ingress in the cluster profile"):
        serving.predict("dogcat-deploy", b"\xff\xd8 not much of a jpeg")
    dead = f"http://{dead_address}"
    through_dead = SeldonServing(replace(config, cluster=replace(config.cluster, istio_ingress=dead)))
    with pytest.raises(Unreachable, match=rf"^The prediction endpoint {dead}/seldon/.+/dogcat-deploy/api/v1.0/predictions does not answer"):
        through_dead.predict("dogcat-deploy", b"\xff\xd8 not much of a jpeg")
    with pytest.raises(NotFound, match="^There is no deployment 'missing'"):
        through_dead.predict("missing", b"")
    through_dead.close()


@pytest.mark.parametrize("ingress", ["http://192.0.2.10", "http://gateway.example.com:8080/"])
def test_the_serving_token_never_goes_over_plain_http_to_another_machine(serving, config, monkeypatch, ingress):
    """Refused before the token is read (no DLPTUI_SERVING_TOKEN, no Secret: that would be another sentence) and
    before any connection (192.0.2.10 is a documentation address nothing answers on)."""
    monkeypatch.delenv("DLPTUI_SERVING_TOKEN", raising=False)
    serving.deploy("dogcat-deploy", version(1))
    plain = SeldonServing(replace(config, cluster=replace(config.cluster, istio_ingress=ingress)))
    try:
        with pytest.raises(NotAvailable) as caught:
            plain.predict("dogcat-deploy", b"\xff\xd8 not much of a jpeg")
        endpoint = f"{ingress.rstrip('/')}/seldon/{config.cluster.seldon_namespace}/dogcat-deploy/api/v1.0/predictions"
        assert str(caught.value) == (
            f"The Istio gateway at {endpoint} is not on this machine and its address is not https://, so the serving token "
            "would cross the network in clear; set istio_ingress to the gateway's https:// address (or `kubectl "
            "port-forward` it to localhost)."
        )
    finally:
        plain.close()


class IstioStandIn:
    """What the Istio gateway does for Seldon: `/seldon/<namespace>/<name>/<path>` goes to `<backend>/<path>`.

    A reverse proxy on 127.0.0.1 with the routes it is given; any other path gets 404, as from
    a gateway with no route for it. `paths` records what it was asked for.
    """

    def __init__(self, routes: dict[str, str]) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                paths.append(self.path)
                prefix = next((p for p in routes if self.path.startswith(p + "/")), None)
                if prefix is None:
                    self.send_error(404, "no route")
                    return
                backend = urlsplit(routes[prefix])
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                upstream = http.client.HTTPConnection(backend.hostname, backend.port, timeout=60)
                upstream.request("POST", backend.path + self.path[len(prefix):], body, {"Content-Type": "application/json"})
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for header in ("Content-Type", "X-Dlptui-Version"):
                    if answer.getheader(header):
                        self.send_header(header, answer.getheader(header))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_a_prediction_goes_through_the_gateway_path_to_a_real_seldon_microservice(served, serving, config, namespace, monkeypatch):
    """The real seldon-core microservice (the local profile's deployment) behind an Istio-like path prefix."""
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", "t" * 32)
    from tests.fixtures.serving import DEPLOYMENT, image_bytes

    backend = served.serving.get_deployment(DEPLOYMENT).endpoint.removesuffix("/api/v1.0/predictions")
    gateway = IstioStandIn({f"/seldon/{namespace}/dogcat-deploy": backend})
    through_istio = SeldonServing(replace(config, cluster=replace(config.cluster, istio_ingress=gateway.url)))
    try:
        serving.deploy("dogcat-deploy", version(1))
        prediction = through_istio.predict("dogcat-deploy", image_bytes(), "red.jpg")
        assert prediction.error is None, prediction.error
        assert set(prediction.probabilities) == {"cat", "dog"} and prediction.label in ("cat", "dog")
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert (prediction.image, prediction.version) == ("red.jpg", 1)
        refused = through_istio.predict("dogcat-deploy", b"this is not an image", "notes.txt")
        assert refused.label is None and refused.error and "\n" not in refused.error
        assert "notes.txt" in refused.error and "binData" not in refused.error  # about the file, not the protocol
        assert gateway.paths == [f"/seldon/{namespace}/dogcat-deploy/api/v1.0/predictions"] * 2
    finally:
        through_istio.close()
        gateway.close()


def test_health_reports_the_crd_and_the_deployments(serving, namespace):
    serving.deploy("dogcat-deploy", version(1))
    health = serving.health()
    assert (health.part, health.reachable, health.version) == ("serving", True, "machinelearning.seldon.io/v1")
    assert health.detail == f"SeldonDeployment CRD installed; 1 deployments in namespace {namespace}"


def test_health_says_when_the_crd_is_missing(serving, kube_cluster):
    """It removes the CRD, and installs it again before it ends (install_crd waits out the deletion and
    until the resource is served again), so the tests after it, in any --order, find it as before."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = "seldondeployments.machinelearning.seldon.io"
    api_client = kube_cluster.client()
    ext = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)

    def gone() -> bool:
        """The CRD and its resource both answer 404 (what health reads is the resource)."""
        for read in (lambda: ext.read_custom_resource_definition(name),
                     lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)):
            try:
                read()
                return False
            except ApiException as e:
                if e.status != 404:
                    raise
        return True

    ext.delete_custom_resource_definition(name)
    try:
        deadline = time.monotonic() + 60
        while not gone():
            assert time.monotonic() < deadline, f"the CRD {name} or its resource was still served 60 s after its deletion"
            time.sleep(0.2)
        health = serving.health()
        assert health.reachable is False
        assert health.detail == (
            f"The Kubernetes API server at {kube_cluster.url} answers, but the SeldonDeployment CRD "
            "(seldondeployments.machinelearning.seldon.io) is not installed; install Seldon Core on the cluster."
        )
        with pytest.raises(NotAvailable, match=r"^The SeldonDeployment CRD \(seldondeployments.machinelearning.seldon.io\) is not installed"):
            serving.deploy("dogcat-deploy", version(1))
    finally:
        install_crd(api_client, CRD_FILE)
        api_client.close()
    # installed again, as the next test needs it
    assert serving.health().reachable is True
    assert serving.deploy("dogcat-deploy", version(1)).state is DeploymentState.STARTING
