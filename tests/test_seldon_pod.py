"""The model server's pod on the cluster (infra/seldon/deployment.yaml.tmpl): requests and limits, a
locked-down securityContext, a read-only root filesystem with an emptyDir on /tmp, GRPC_WORKERS=0, no
Determined credential; and the real model server, run with that pod's environment and parameters, loads its
checkpoint from the storage location the pod names (a shared_fs folder mounted read-only) with no Determined
master anywhere, and writes nowhere but that emptyDir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dlptui.config import ClusterSettings, Config
from dlptui.errors import InvalidInput
from dlptui.platform.cluster.seldon_serving import SeldonServing, render_deployment
from dlptui.platform.cluster.seldon_template import RESOURCES
from dlptui.platform.model import CheckpointStorage, ModelVersion
from tests.helpers import ROOT
from tests.test_infra_check import RecordingKube

IMAGE = "registry.example/dlptui-serving:0.1.0"
BUCKET = {n: CheckpointStorage("gcs", f"uuid-{n}", bucket="dlp-checkpoints", prefix="checkpoints") for n in (1, 2, 3)}


def pods(obj: dict) -> list[dict]:
    return [c["spec"] for p in obj["spec"]["predictors"] for c in p["componentSpecs"]]


def test_every_predictor_runs_a_locked_down_model_server():
    obj = render_deployment("dogcat-deploy", "seldon", IMAGE, "dogcat-model", 1, BUCKET, canary=2, traffic=20, shadow=3)
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
    serving.deploy("dogcat-deploy", ModelVersion("dogcat-model", 1, "uuid-1", 0.0, checkpoint_storage=BUCKET[1]))
    [spec] = pods(serving.kube.objects["dogcat-deploy"])
    assert spec["containers"][0]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "4Gi"}}


def test_a_profile_setting_that_is_not_a_quantity_is_one_sentence(tmp_path):
    from dlptui.config import load_config

    file = tmp_path / "config.toml"
    file.write_text('[profiles.cluster]\nkind = "cluster"\nserving_memory_limit = "4 GB"\n')
    config = load_config(profile="cluster", path=file, env={})
    assert config.cluster.serving_memory_limit == "4 GB"
    with pytest.raises(InvalidInput) as caught:
        render_deployment("d", "seldon", IMAGE, "m", 1, BUCKET, resources={"memory_limit": config.cluster.serving_memory_limit})
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


def _pod_environment(spec: dict, volumes_dir: Path, host: dict[str, Path]) -> tuple[dict[str, str], dict[str, Path], callable]:
    """The model container's literal env, with each emptyDir mount mapped to a folder of `volumes_dir` and each
    hostPath mount to the folder `host` gives for its path; and the mapping, for the parameters too."""
    [container] = spec["containers"]
    kinds = {v["name"]: v for v in spec.get("volumes") or []}
    mounts = {m["mountPath"]: volumes_dir / m["name"] for m in container.get("volumeMounts") or [] if "emptyDir" in kinds[m["name"]]}
    for folder in mounts.values():
        folder.mkdir(parents=True)
    mapped_mounts = {**mounts, **{m["mountPath"]: host[kinds[m["name"]]["hostPath"]["path"]]
                                  for m in container.get("volumeMounts") or [] if "hostPath" in kinds[m["name"]]}}

    def mapped(value: str) -> str:
        for mount, folder in mapped_mounts.items():
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return str(folder) + value[len(mount.rstrip("/")):]
        return value

    env = {e["name"]: mapped(e["value"]) for e in container.get("env") or [] if "value" in e}
    env.setdefault("TMPDIR", mapped("/tmp"))  # the temp folder of the pod is /tmp
    return env, mounts, mapped


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_model_server_reads_its_checkpoint_from_storage_and_writes_only_to_the_pods_empty_dir(tiny_checkpoints, tmp_path):
    """Its root filesystem is read-only on the cluster and it holds no Determined credential: run the real
    microservice with the rendered pod's environment and graph parameters (its mounts mapped to folders here: the
    emptyDir, and the shared_fs storage's host_path, made read-only), with no DET_* variable and no master anywhere;
    it loads the checkpoint in place from the location the pod names, answers a prediction, and every path it wrote
    is in the emptyDir."""
    import shutil
    import stat

    from dlptui.platform.local import backends, processes
    from tests.fixtures.serving import image_bytes

    assert "PYTHONDONTWRITEBYTECODE=1" in (ROOT / "serving" / "Dockerfile").read_text(), "the image writes no bytecode"
    uuid = "8b7cf0f2-4a47-4f55-9d2b-6c0a8d1e0a11"
    storage = CheckpointStorage("shared_fs", uuid, host_path="/mnt/determined", storage_path="determined-checkpoint")
    [predictor, *_] = render_deployment("dogcat-deploy", "seldon", IMAGE, "read-only-check", 4, {4: storage})["spec"]["predictors"]
    [spec] = [c["spec"] for c in predictor["componentSpecs"]]
    [container] = spec["containers"]
    assert "envFrom" not in container and not [e for e in container["env"] if e["name"].startswith("DET_")]
    shared = tmp_path / "shared-fs"  # stands for the nodes' /mnt/determined
    checkpoint = shared / "determined-checkpoint" / uuid
    shutil.copytree(tiny_checkpoints[0], checkpoint)
    pod_env, mounts, mapped = _pod_environment(spec, tmp_path / "volumes", {"/mnt/determined": shared})
    for path in [checkpoint, *checkpoint.rglob("*")]:  # mounted readOnly in the pod
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT)
    image_root = tmp_path / "image"  # stands for the image's read-only files: its home folder /app
    (image_root / "app").mkdir(parents=True)

    parameters = [{**p, "value": mapped(p["value"])} for p in predictor["graph"]["parameters"]]
    assert {p["name"]: p["value"] for p in parameters}["checkpoint_uri"] == str(checkpoint)
    parameters.append({"name": "load_retries", "value": "1", "type": "INT"})
    args = ["--parameters", json.dumps(parameters)]  # no --grpc-workers: GRPC_WORKERS of the pod decides
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DET_", "XDG_", "DLPTUI_", "TMPDIR", "GRPC_", "PACHD_", "AWS_", "GOOGLE_"))}
    env.update(pod_env, HOME=str(image_root / "app"), AUDIT_LOG=str(tmp_path / "writes.log"), PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join([str(audit), str(backends.serving_dir()), str(backends.trial_dir())]))
    assert not [k for k in env if k.startswith("DET_")]
    # its sockets (how the local profile runs it; a pod listens on its ports) lie outside what is audited
    sockets = tmp_path / "sockets"
    backend = backends.launch("read-only", sockets, args, env, "read-only-check", 4)
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
        assert (answer.json()["jsonData"]["model"], answer.json()["jsonData"]["version"]) == ("read-only-check", 4)
        tags = answer.json()["meta"]["tags"]  # the request's summary, for Seldon's request logger (no log in a pod)
        assert tags["dlptui.basis"].startswith("rp32x64-") and len(base64.b64decode(tags["dlptui.embedding"])) == 32 * 4
        assert tags["dlptui.confidence"] == pytest.approx(max(answer.json()["jsonData"]["probabilities"].values()), abs=1e-6)
    finally:
        processes.stop_tree(backend.record)
        for path in [checkpoint, *checkpoint.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)

    writes = [line.split(" ", 1) for line in (tmp_path / "writes.log").read_text().splitlines()]
    assert writes, "the audit hook saw no write: it did not run"
    writable = [str(folder) for folder in mounts.values()] + [str(sockets / "run")]  # a pod binds ports instead
    outside = sorted({f"{event} {path}" for event, path in writes if path != "/dev/null"  # /dev is not the image's
                      and not any(path == w or path.startswith(w + os.sep) for w in writable)})
    assert outside == [], "written outside the pod's emptyDir (the root filesystem is read-only there)"
    [tmp] = mounts.values()
    assert not (tmp / "dlptui-checkpoints").exists() or not any((tmp / "dlptui-checkpoints").iterdir()), \
        "a mounted checkpoint is read in place, not copied"


def test_a_checkpoint_in_a_bucket_the_pod_cannot_read_is_one_sentence(tmp_path, monkeypatch):
    """gs:// and s3:// locations are read with Determined's own storage managers and the pod's own credentials; one
    that cannot be read (here: an S3 endpoint nothing answers) fails the load with a sentence, no master involved."""
    from dlptui.platform.local import backends, processes

    monkeypatch.syspath_prepend(str(backends.trial_dir()))
    monkeypatch.syspath_prepend(str(backends.serving_dir()))
    monkeypatch.setenv("DLPTUI_CHECKPOINT_CACHE", str(tmp_path / "cache"))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "read-only-test")
    import dogcat_model

    dead = f"http://127.0.0.1:{processes.free_port()}"
    with pytest.raises(RuntimeError) as caught:
        dogcat_model.checkpoint_folder("s3://dlp-checkpoints/checkpoints/uuid-5", dead)
    assert str(caught.value).startswith("the checkpoint at s3://dlp-checkpoints/checkpoints/uuid-5 could not be read (")
    assert str(caught.value).endswith("); check that the serving pod's account may read that bucket (Workload Identity, "
                                      "or the profile's storage_secret)")
    assert not any((tmp_path / "cache").glob("*")), "nothing half-read is left to be taken for the checkpoint"
    with pytest.raises(ValueError, match="names no bucket or no checkpoint"):
        dogcat_model.checkpoint_folder("gs://bucket-only")
