"""`dlptui deploy`, `deployments`, `undeploy`, `predict`: model versions behind a prediction endpoint."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dlptui.cli.models import require_writable
from dlptui.cli.output import emit_json, emit_object, emit_table
from dlptui.errors import InvalidInput, Unreachable
from dlptui.platform.model import DeploymentState, Prediction, to_dict

DEFAULT_DEPLOYMENT = "dogcat-deploy"


def register(sub) -> None:
    d = sub.add_parser("deploy", help="serve a model version (or update a deployment to it, without downtime)")
    d.add_argument("target", metavar="MODEL[@VERSION|@ALIAS]", help="e.g. dogcat-model@production (no @: the latest version)")
    d.add_argument("--name", default=DEFAULT_DEPLOYMENT, help=f"the deployment (default {DEFAULT_DEPLOYMENT})")
    d.add_argument("--canary", metavar="VERSION", help="a second version of the same model taking --traffic percent")
    d.add_argument("--traffic", type=int, default=10, metavar="PERCENT", help="the canary's share (default 10; 0 removes it)")
    d.add_argument("--wait", action="store_true", help="return once the deployment is available (or failed)")
    d.add_argument("--timeout", type=float, default=300.0, help="how long --wait waits, in seconds (default 300)")
    d.add_argument("--json", action="store_true", help="print a JSON object")
    d.set_defaults(func=deploy)

    ls = sub.add_parser("deployments", help="the deployments, their versions, endpoints and states")
    ls.add_argument("name", nargs="?", help="show one deployment with the last lines of its log")
    ls.add_argument("--lines", type=int, default=20, help="log lines to show with NAME (default 20)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=deployments)

    u = sub.add_parser("undeploy", help="stop a deployment and every process it runs")
    u.add_argument("name")
    u.set_defaults(func=undeploy)

    p = sub.add_parser("predict", help="classify images with a deployment")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG or PNG files")
    p.add_argument("--deployment", default=DEFAULT_DEPLOYMENT, help=f"default {DEFAULT_DEPLOYMENT}")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per image")
    p.set_defaults(func=predict)


def _split(target: str) -> tuple[str, str]:
    model, _, ref = target.partition("@")
    if not model or target.endswith("@"):
        raise InvalidInput(f"{target!r} is not MODEL[@VERSION|@ALIAS]; write e.g. dogcat-model@production.")
    return model, ref or "latest"


def wait_until_settled(serving, name: str, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        deployment = serving.get_deployment(name)
        if deployment.state is not DeploymentState.STARTING:
            return deployment
        if time.monotonic() > deadline:
            raise Unreachable(f"Deployment {name} was still starting after {timeout:.0f} s; see `dlptui deployments {name}`.")
        time.sleep(0.5)


def deploy(args, platform) -> int:
    require_writable(platform, "deploying")
    model, ref = _split(args.target)
    version = platform.registry.get_version(model, ref)
    serving = platform.serving
    existing = {d.name: d for d in serving.list_deployments()}.get(args.name)
    if existing is None or existing.state is DeploymentState.FAILED:
        deployment = serving.deploy(args.name, version)
        verb = "Deploying"
    elif (existing.model, existing.version) != (version.model, version.version):
        deployment = serving.update(args.name, version)
        verb = f"Updated from version {existing.version} to"
    else:
        deployment, verb = existing, "Already serving"
    if args.canary is not None:
        if args.traffic == 0:
            deployment = serving.set_canary(args.name, None, 0)
        else:
            canary = platform.registry.get_version(model, args.canary)
            deployment = serving.set_canary(args.name, canary, args.traffic)
    if args.wait:
        deployment = wait_until_settled(serving, args.name, args.timeout)
    if args.json:
        emit_object(deployment, True)
    else:
        print(f"{verb} {version} as {deployment.name}: {deployment.state.value}, endpoint {deployment.endpoint}")
        if deployment.canary_version is not None:
            print(f"Canary: version {deployment.canary_version} takes {deployment.canary_traffic}% of the requests.")
        if deployment.detail:
            print(deployment.detail)
    return 1 if deployment.state is DeploymentState.FAILED else 0


def deployments(args, platform) -> int:
    serving = platform.serving
    if args.name:
        deployment = serving.get_deployment(args.name)
        lines = serving.logs(args.name, args.lines)
        if args.json:
            emit_json({**to_dict(deployment), "log": lines})
        else:
            emit_object(deployment, False)
            print("\n".join(lines))
        return 0
    columns = [
        ("NAME", lambda d: d.name),
        ("MODEL", lambda d: d.model),
        ("VERSION", lambda d: d.version),
        ("CANARY", lambda d: f"v{d.canary_version} {d.canary_traffic}%" if d.canary_version is not None else None),
        ("REPLICAS", lambda d: d.replicas),
        ("STATE", lambda d: d.state.value),
        ("ENDPOINT", lambda d: d.endpoint),
        ("DETAIL", lambda d: d.detail or None),  # the reason when not available; logs: `deployments NAME`
    ]
    emit_table(serving.list_deployments(), columns, args.json)
    return 0


def undeploy(args, platform) -> int:
    require_writable(platform, "undeploying")
    platform.serving.undeploy(args.name)
    print(f"Undeployed {args.name}.")
    return 0


def _read(path: str) -> bytes | str:
    """The file's bytes, or one sentence on why it cannot be read."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return f"There is no file {path}."
    except IsADirectoryError:
        return f"{path} is a folder, not an image file."
    except PermissionError:
        return f"{path} cannot be read (permission denied)."
    except OSError as e:
        return f"{path} cannot be read ({e.strerror or e})."
    return data if data else f"{path} is empty."


def predict(args, platform) -> int:
    serving = platform.serving
    serving.get_deployment(args.deployment)  # an unknown deployment fails once, before any image
    results: list[Prediction] = []
    for path in args.images:
        data = _read(path)
        if isinstance(data, str):
            results.append(Prediction(image=path, error=data))
        else:
            results.append(serving.predict(args.deployment, data, path))
    if args.json:
        emit_json([_prediction_json(p) for p in results])
    else:
        columns = [
            ("IMAGE", lambda p: p.image),
            ("LABEL", lambda p: p.label),
            ("P(CAT)", lambda p: f"{p.probabilities['cat']:.3f}" if "cat" in p.probabilities else None),
            ("P(DOG)", lambda p: f"{p.probabilities['dog']:.3f}" if "dog" in p.probabilities else None),
            ("VERSION", lambda p: p.version),
            ("LATENCY", lambda p: f"{p.latency_ms:.0f} ms" if p.latency_ms is not None else None),
            ("ERROR", lambda p: p.error),
        ]
        emit_table(results, columns, False)
    failed = [p for p in results if p.error]
    if failed and not args.json:
        print(f"dlptui: {len(failed)} of {len(results)} images failed.", file=sys.stderr)
    return 1 if failed else 0


def _prediction_json(p: Prediction) -> dict:
    if p.error:
        return {"image": p.image, "error": p.error}
    return {
        "image": p.image,
        "label": p.label,
        "probabilities": p.probabilities,
        "latency_ms": round(p.latency_ms, 2) if p.latency_ms is not None else None,
        "version": p.version,
    }
