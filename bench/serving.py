"""Served prediction vs in-process decode + forward, same model, same JPEG, same CPU threads.

    .venv/bin/python bench/serving.py [--requests 60] [--rounds 3] [--threads 1]

The model is the trial's efficientnet_lite0 with its ImageNet weights (as in production: the
forward pass dominates), saved as a Determined checkpoint and deployed with the local Serving
part: the real seldon-core-microservice behind the deployment's Envoy. The served path is
the whole of it: base64 in the client, HTTP to Envoy, Envoy's hop to the model server, decode
and eval transform there, forward, the prediction log's row, JSON back. The in-process baseline decodes
the same JPEG with PIL, applies the same transform and runs the same forward, in this process.
The two alternate in rounds so that load from elsewhere on the machine falls on both.

Then `--clients` (4) clients at once against the same endpoint: served images/s over (cores x
in-process single-thread images/s), the most the machine's cores can give.

Targets: p50 ratio <= 1.10, throughput ratio >= 0.9, concurrent throughput ratio >= 0.85.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HPARAMS = {"backbone": "efficientnet_lite0", "pretrained": True, "image_size": 224}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cat_jpeg() -> bytes:
    """scikit-image's CC0 cat photo (451x300) as a JPEG."""
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_checkpoint(model_def, folder: Path) -> None:
    import torch

    net = model_def.build_model(HPARAMS)
    folder.mkdir(parents=True)
    torch.save({"models_state_dict": [net.state_dict()]}, folder / "state_dict.pth")
    (folder / "load_data.json").write_text(json.dumps({"trial_type": "PyTorchTrial", "hparams": HPARAMS}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="timed predictions per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, on both sides")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the last phase")
    args = parser.parse_args()

    os.environ["DLPTUI_TORCH_THREADS"] = str(args.threads)
    from dlptui import resources

    sys.path.insert(0, str(resources.trial_dir()))
    import torch
    from PIL import Image

    import model_def
    from dlptui.config import load_config
    from dlptui.platform import Platform
    from dlptui.platform.model import DeploymentState, ModelVersion
    import httpx

    from dlptui.platform.seldon_protocol import SeldonClient, parse_prediction, request_body

    torch.set_num_threads(args.threads)
    image = cat_jpeg()
    with tempfile.TemporaryDirectory(prefix="dlptui-bench-") as tmp:
        checkpoint = Path(tmp) / "checkpoint"
        write_checkpoint(model_def, checkpoint)
        net, hparams = model_def.load_model(checkpoint)
        transform = model_def.eval_transform(hparams)

        def in_process() -> str:
            batch = transform(Image.open(io.BytesIO(image)).convert("RGB")).unsqueeze(0)
            with torch.inference_mode():
                probs = torch.softmax(net(batch), dim=1)[0].tolist()
            return "cat" if probs[0] >= probs[1] else "dog"

        platform = Platform(load_config(env={"DLPTUI_HOME": str(Path(tmp) / "home"), "XDG_CONFIG_HOME": tmp}))
        version = ModelVersion("bench-model", 1, "bench", time.time(), checkpoint_location=str(checkpoint))
        client = SeldonClient()
        try:
            deployment = platform.serving.deploy("bench", version)
            while deployment.state is DeploymentState.STARTING:
                time.sleep(0.5)
                deployment = platform.serving.get_deployment("bench")
            if deployment.state is not DeploymentState.AVAILABLE:
                raise SystemExit(f"the deployment failed: {deployment.detail}")

            def served() -> str:
                prediction = client.predict(deployment.endpoint, image, "chelsea.jpg")
                if prediction.error:
                    raise SystemExit(f"a served prediction failed: {prediction.error}")
                return prediction.label

            state = json.loads((platform.serving.root / "bench" / "state.json").read_text())
            # the model server itself, on its Unix socket, without Envoy in front: what Envoy costs
            direct_client = httpx.Client(transport=httpx.HTTPTransport(uds=state["primary"]["socket"]), timeout=30)

            def direct() -> str:
                start = time.perf_counter()
                response = direct_client.post("http://localhost/api/v1.0/predictions", json=request_body(image))
                prediction = parse_prediction("chelsea.jpg", response, (time.perf_counter() - start) * 1000)
                if prediction.error:
                    raise SystemExit(f"a direct prediction failed: {prediction.error}")
                return prediction.label

            labels = {in_process(), served(), direct()}
            for _ in range(5):  # warm both paths
                in_process(), served()
            times: dict[str, list[float]] = {"in_process": [], "served": [], "direct": []}
            walls = {"in_process": 0.0, "served": 0.0, "direct": 0.0}
            for _ in range(args.rounds):
                for name, call in (("in_process", in_process), ("served", served), ("direct", direct)):
                    start_block = time.perf_counter()
                    for _ in range(args.requests):
                        start = time.perf_counter()
                        call()
                        times[name].append((time.perf_counter() - start) * 1000)
                    walls[name] += time.perf_counter() - start_block
            # what the model server itself measured (decode, transform, forward: its predict_raw) for the timed
            # served and direct requests: the rest of a served request is HTTP, Flask, Seldon and Envoy
            logged = platform.serving.predictions("bench", limit=2 * args.rounds * args.requests)
            inside = statistics.median(p.latency_ms for p in logged)
            # many clients at once: as many server threads as clients, each forward on one core
            import threading

            per_client = max(1, args.requests // 2)
            clients = [SeldonClient() for _ in range(args.clients)]

            def hammer(c) -> None:
                for _ in range(per_client):
                    if c.predict(deployment.endpoint, image, "chelsea.jpg").error:
                        raise SystemExit("a concurrent prediction failed")

            for c in clients:
                c.predict(deployment.endpoint, image, "warm.jpg")
            start_block = time.perf_counter()
            workers = [threading.Thread(target=hammer, args=(c,)) for c in clients]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            concurrent_wall = time.perf_counter() - start_block
            for c in clients:
                c.close()
        finally:
            client.close()
            for d in platform.serving.list_deployments():
                platform.serving.undeploy(d.name)
            platform.close()

    stats = {}
    for name, values in times.items():
        stats[name] = {
            "p50_ms": statistics.median(values),
            "p95_ms": percentile(values, 0.95),
            "images_per_s": len(values) / walls[name],
        }
        print(
            f"{name:>10}: p50 {stats[name]['p50_ms']:.1f} ms  p95 {stats[name]['p95_ms']:.1f} ms  "
            f"{stats[name]['images_per_s']:.1f} images/s  ({len(values)} requests, {args.threads} torch threads)"
        )
    print(f"inside the model server: p50 {inside:.1f} ms (decode, transform, forward as its predict_raw measures them)")
    print(f"labels: {sorted(labels)} (the CC0 cat photo)")
    cores = os.cpu_count() or 1
    concurrent = args.clients * per_client / concurrent_wall
    print(f"concurrent: {concurrent:.1f} images/s with {args.clients} clients on {cores} cores")
    result = {
        "p50_ratio": round(stats["served"]["p50_ms"] / stats["in_process"]["p50_ms"], 3),
        "p95_ratio": round(stats["served"]["p95_ms"] / stats["in_process"]["p95_ms"], 3),
        "throughput_ratio": round(stats["served"]["images_per_s"] / stats["in_process"]["images_per_s"], 3),
        "concurrent_throughput_ratio": round(concurrent / (cores * stats["in_process"]["images_per_s"]), 3),
        "envoy_p50_ratio": round(stats["served"]["p50_ms"] / stats["direct"]["p50_ms"], 3),
        "server_inside_p50_ratio": round(inside / stats["in_process"]["p50_ms"], 3),
    }
    print(f"targets: p50 ratio <= 1.10 ({'met' if result['p50_ratio'] <= 1.10 else 'MISSED'}), "
          f"throughput ratio >= 0.9 ({'met' if result['throughput_ratio'] >= 0.9 else 'MISSED'}), "
          f"concurrent throughput ratio >= 0.85 ({'met' if result['concurrent_throughput_ratio'] >= 0.85 else 'MISSED'})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
