"""The model server's pod on the cluster (infra/seldon/deployment.yaml.tmpl): requests and limits, a
locked-down securityContext, a read-only root filesystem with an emptyDir on /tmp, GRPC_WORKERS=0;
and the real model server, run with that pod's environment, writes nowhere but that emptyDir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dlptui.config import ClusterSettings, Config
from dlptui.errors import InvalidInput
from dlptui.platform.cluster.seldon_serving import SeldonServing, render_deployment
from dlptui.platform.cluster.seldon_template import RESOURCES
from dlptui.platform.model import ModelVersion
from tests.helpers import ROOT
from tests.test_infra_check import RecordingKube

IMAGE = "registry.example/dlptui-serving:0.1.0"


def pods(obj: dict) -> list[dict]:
    return [c["spec"] for p in obj["spec"]["predictors"] for c in p["componentSpecs"]]


def test_every_predictor_runs_a_locked_down_model_server():
    obj = render_deployment("dogcat-deploy", "seldon", IMAGE, "dogcat-model", 1, canary=2, traffic=20, shadow=3)
    assert len(pods(obj)) == 3
    for spec in pods(obj):
        [container] = spec["containers"]
        assert container["resources"] == {
            "requests": {"cpu": RESOURCES["cpu_request"], "memory": RESOURCES["memory_request"]},
            "limits": {"cpu": RESOURCES["cpu_limit"], "memory": RESOURCES["memory_limit"]},
        }
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 8888
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert spec["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert [(m["mountPath"], "emptyDir" in volumes[m["name"]]) for m in container["volumeMounts"]] == [("/tmp", True)]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["GRPC_WORKERS"] == "0"
        assert all(env[v].startswith("/tmp/") for v in ("DLPTUI_CHECKPOINT_CACHE", "XDG_CONFIG_HOME"))


def test_the_profile_sets_the_requests_and_limits(tmp_path):
    settings = ClusterSettings(seldon_namespace="seldon", serving_image=IMAGE, serving_memory_limit="4Gi", serving_cpu_limit="3")
    serving = SeldonServing(Config(profile="cluster", kind="cluster", home=tmp_path, cluster=settings))
    serving.kube = RecordingKube()
    serving.deploy("dogcat-deploy", ModelVersion("dogcat-model", 1, "u", 0.0))
    [spec] = pods(serving.kube.objects["dogcat-deploy"])
    assert spec["containers"][0]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "4Gi"}}


def test_a_profile_setting_that_is_not_a_quantity_is_one_sentence(tmp_path):
    from dlptui.config import load_config

    file = tmp_path / "config.toml"
    file.write_text('[profiles.cluster]\nkind = "cluster"\nserving_memory_limit = "4 GB"\n')
    config = load_config(profile="cluster", path=file, env={})
    assert config.cluster.serving_memory_limit == "4 GB"
    with pytest.raises(InvalidInput) as caught:
        render_deployment("d", "seldon", IMAGE, "m", 1, resources={"memory_limit": config.cluster.serving_memory_limit})
    assert str(caught.value) == "serving_memory_limit is '4 GB', which is not a Kubernetes quantity; write it as 500m, 2 or 1536Mi."


# --- the real model server with the pod's environment ------------------------------------------------

# Installed before anything else runs in the server (and its forked workers): every path opened for
# writing, created, renamed, removed, bound as a socket or opened as SQLite goes to AUDIT_LOG.
AUDIT = r'''
import os, sys
_log = os.open(os.environ["AUDIT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATHS = {"os.rename": 2, "os.replace": 2, "os.symlink": 2, "os.link": 2, "os.remove": 1, "os.rmdir": 1,
          "os.truncate": 1, "os.chmod": 1}

def _note(event, path):
    if isinstance(path, (str, bytes, os.PathLike)):
        os.write(_log, (event + " " + os.path.abspath(os.fsdecode(path)) + "\n").encode())

def _hook(event, args):
    if event == "open" and isinstance(args[2], int) and args[2] & _WRITE:
        _note(event, args[0])
    elif event == "os.mkdir" and not os.path.isdir(args[0]):
        _note(event, args[0])
    elif event in _PATHS:
        for path in args[: _PATHS[event]]:
            _note(event, path)
    elif event == "socket.bind" and isinstance(args[1], (str, bytes)):
        _note(event, args[1])
    elif event == "sqlite3.connect" and args[0] != ":memory:":
        _note(event, args[0])

sys.addaudithook(_hook)
'''


def _pod_environment(spec: dict, volumes_dir: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """The model container's literal env, with each emptyDir mount mapped to a folder of `volumes_dir`."""
    [container] = spec["containers"]
    kinds = {v["name"]: v for v in spec.get("volumes") or []}
    mounts = {m["mountPath"]: volumes_dir / m["name"] for m in container.get("volumeMounts") or [] if "emptyDir" in kinds[m["name"]]}
    for folder in mounts.values():
        folder.mkdir(parents=True)

    def mapped(value: str) -> str:
        for mount, folder in mounts.items():
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return str(folder) + value[len(mount.rstrip("/")):]
        return value

    env = {e["name"]: mapped(e["value"]) for e in container.get("env") or [] if "value" in e}
    env.setdefault("TMPDIR", mapped("/tmp"))  # the temp folder of the pod is /tmp
    return env, mounts


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_model_server_writes_only_to_the_pods_empty_dir(tiny_checkpoints, det_master_standin_server, tmp_path):
    """Its root filesystem is read-only on the cluster: run the real microservice with the rendered pod's
    environment (mounts mapped to folders here), let it log in to the master, download a version and
    answer a prediction, and look at every path it wrote."""
    from dlptui.platform.local import backends, processes
    from tests.fixtures.serving import image_bytes
    from tests.standins.det_master_state import PASSWORD, USER

    assert "PYTHONDONTWRITEBYTECODE=1" in (ROOT / "serving" / "Dockerfile").read_text(), "the image writes no bytecode"
    [spec, *_] = pods(render_deployment("dogcat-deploy", "seldon", IMAGE, "read-only-check", 1))
    pod_env, mounts = _pod_environment(spec, tmp_path / "volumes")
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT)
    image_root = tmp_path / "image"  # stands for the image's read-only files: its home folder /app
    (image_root / "app").mkdir(parents=True)

    state = det_master_standin_server.state
    number = state.add_checkpoint_files(tiny_checkpoints[0], "read-only-check")
    parameters = [{"name": "det_model", "value": "read-only-check", "type": "STRING"},
                  {"name": "det_version", "value": str(number), "type": "INT"},
                  {"name": "load_retries", "value": "1", "type": "INT"}]
    args = ["--parameters", json.dumps(parameters)]  # no --grpc-workers: GRPC_WORKERS of the pod decides
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DET_", "XDG_", "DLPTUI_", "TMPDIR", "GRPC_"))}
    env.update(pod_env, HOME=str(image_root / "app"), AUDIT_LOG=str(tmp_path / "writes.log"), PYTHONDONTWRITEBYTECODE="1",
               DET_MASTER=det_master_standin_server.url, DET_USER=USER, DET_PASS=PASSWORD,
               PYTHONPATH=os.pathsep.join([str(audit), str(backends.serving_dir()), str(backends.trial_dir())]))
    # its sockets (how the local profile runs it; a pod listens on its ports) lie outside what is audited
    sockets = tmp_path / "sockets"
    backend = backends.launch("read-only", sockets, args, env, "read-only-check", number)
    log = Path(backend.log)
    try:
        try:
            backends.wait_ready(backend, timeout=240)
        except Exception as e:
            raise AssertionError(f"{e}\n{log.read_text()[-3000:]}") from None
        import base64

        body = json.dumps({"binData": base64.b64encode(image_bytes()).decode()}).encode()
        answer = backend.request("POST", "/api/v1.0/predictions", body, {"content-type": "application/json"}, timeout=60)
        assert answer.status_code == 200, answer.text
    finally:
        processes.stop_tree(backend.record)
        det_master_standin_server.reset()

    writes = [line.split(" ", 1) for line in (tmp_path / "writes.log").read_text().splitlines()]
    assert writes, "the audit hook saw no write: it did not run"
    writable = [str(folder) for folder in mounts.values()] + [str(sockets / "run")]  # a pod binds ports instead
    outside = sorted({f"{event} {path}" for event, path in writes if path != "/dev/null"  # /dev is not the image's
                      and not any(path == w or path.startswith(w + os.sep) for w in writable)})
    assert outside == [], "written outside the pod's emptyDir (the root filesystem is read-only there)"
    [tmp] = mounts.values()
    assert (tmp / "dlptui-checkpoints" / f"read-only-check-{number}" / "state_dict.pth").is_file()
    assert (tmp / ".config" / "determined" / "auth.json").is_file(), "the SDK's login token is written, into the emptyDir"
