"""Drift and outliers against the reference from the version's own training commit, measured end to end.

    .venv/bin/python bench/drift.py [--config local] [--pool 600] [--shift-pool 250] [--windows 200] [--requests 120]

The synthetic sample (`dlptui data sample`'s 300 cartoons, split 80/20) is committed to dogs-and-cats, the demo
experiment (`--config local`: efficientnet-lite0 from ImageNet, frozen backbone; `tiny` for a quick run) trains on
it, its best checkpoint is registered and deployed locally (the real model server behind Envoy), and the version's
reference is computed from that commit through the lineage (actions/drift_reference.py: 300 images, the 60 of its
eval split the drift tests' reference, all 300 the outliers'). Then, through the
deployment's endpoint, one request per image:

- `--pool` held-back sample images (drawn by the sample's generator with seeds the sample does not use: in
  distribution, never trained on), and
- `--shift-pool` images of each shift, made from other held-back images: greyscale, rotated 90 degrees, heavy
  blur (Gaussian, radius 6 on 96 px), inverted colours, random noise (uniform RGB), and photos of another kind
  than the sample's cartoons (random crops of scikit-image's real photos).

The summaries the model server logged for those requests are read back from the prediction log, and windows of
`--window` (200) are drawn from each pool with a seeded generator (without replacement inside a window) and tested
against the reference exactly as `dlptui drift` tests a window (analysis/drift.py: alpha 0.01). Windows of one
pool share images, so the rates are those of the pool's distribution as sampled, with more spread than the
binomial's. Reported: the false-alarm rate on `--windows` in-distribution windows (target <= 5 %), the detection
rate per shift at a window of 200 (target >= 90 % for each of the five synthetic shifts; the photos are reported
too), the outlier precision and recall on the in-distribution pool with noise images added to make 5 % of the mix,
and the served p50 with the per-request summary against it off (DLPTUI_PREDICTION_SUMMARY=0): a fresh pair of
deployments of the same version, `--requests` each per round in alternating blocks of 20 (target: at most 3 %
slower); the deployment that answered the pools is timed beside them. Two servers of the same version differ by
up to about 10 % here, so the summary's cost is also measured without that spread: the server's own prediction
path (DogCatModel.predict_raw) in this process, the summary on and off alternating call by call.
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

import numpy as np

SHIFTS = ("greyscale", "rotated_90", "heavy_blur", "inverted", "noise", "photos")
SYNTHETIC = SHIFTS[:5]


def jpeg(image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def held_back(count: int, start: int) -> list:
    """Images of the sample's generator with seeds past the sample's (it uses 0 to 149 per class)."""
    from PIL import Image

    from dlptui.actions.sample import draw

    return [Image.open(io.BytesIO(draw("cat" if i % 2 else "dog", start + i))).convert("RGB") for i in range(count)]


def photos(count: int, rng: np.random.Generator) -> list:
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.hubble_deep_field(),
               data.immunohistochemistry(), data.retina(), data.camera(), data.coins(), data.grass(), data.brick(),
               data.clock(), data.gravel(), data.colorwheel()]
    out = []
    for i in range(count):
        image = Image.fromarray(sources[i % len(sources)]).convert("RGB")
        side = int(min(image.size) * rng.uniform(0.35, 0.9))
        x, y = int(rng.integers(0, image.width - side + 1)), int(rng.integers(0, image.height - side + 1))
        crop = image.crop((x, y, x + side, y + side)).resize((96, 96))
        out.append(crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop)
    return out


def shifted(kind: str, count: int, rng: np.random.Generator) -> list[bytes]:
    from PIL import Image, ImageFilter, ImageOps

    if kind == "noise":
        return [jpeg(Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))) for _ in range(count)]
    if kind == "photos":
        return [jpeg(p) for p in photos(count, rng)]
    start = 100_000 + 10_000 * SHIFTS.index(kind)
    change = {"greyscale": ImageOps.grayscale, "rotated_90": lambda im: im.rotate(90),
              "heavy_blur": lambda im: im.filter(ImageFilter.GaussianBlur(6)), "inverted": ImageOps.invert}[kind]
    return [jpeg(change(im)) for im in held_back(count, start)]


def send_all(client, endpoint: str, images: list[bytes]) -> list[float]:
    import base64

    latencies = []
    for image in images:
        start = time.perf_counter()
        answer = client.post(endpoint, json={"binData": base64.b64encode(image).decode()})
        latencies.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"a prediction failed: {answer.status_code} {answer.text[:200]}")
    return latencies


def in_process_cost(checkpoint: str, image: bytes, calls: int) -> dict[str, float]:
    """The model server's own prediction path (DogCatModel.predict_raw: decode, transform, forward, summary, the log's
    row, the answer) in this process, the summary on and off alternating call by call: the summary's cost without the
    spread between two servers. Median milliseconds of each."""
    import base64

    import torch

    from dlptui import resources

    sys.path[:0] = [str(resources.serving_dir()), str(resources.trial_dir())]
    from dogcat_model import DogCatModel

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(cores)
    with tempfile.TemporaryDirectory(prefix="dlptui-drift-cost-") as tmp:
        model = DogCatModel(checkpoint_dir=checkpoint, prediction_log=str(Path(tmp) / "log.sqlite"), torch_threads=cores)
        model._load()
        request = {"binData": base64.b64encode(image).decode()}
        for _ in range(10):
            model.predict_raw(request)
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(2 * calls):
            model.prediction_summary = i % 2 == 0
            start = time.perf_counter()
            model.predict_raw(request)
            times[model.prediction_summary].append((time.perf_counter() - start) * 1000)
    return {"on": statistics.median(times[True]), "off": statistics.median(times[False])}


def wait_available(platform, name: str):
    from dlptui.platform.model import DeploymentState

    deadline = time.monotonic() + 300
    while (d := platform.serving.get_deployment(name)).state is DeploymentState.STARTING and time.monotonic() < deadline:
        time.sleep(0.5)
    if d.state is not DeploymentState.AVAILABLE:
        raise SystemExit(f"deployment {name} did not become available: {d.detail}")
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="local", help="the trial config to train (local: the demo; tiny: quick)")
    parser.add_argument("--pool", type=int, default=600, help="held-back in-distribution images sent")
    parser.add_argument("--shift-pool", type=int, default=250, help="images sent per shift")
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--windows", type=int, default=200, help="in-distribution windows tested")
    parser.add_argument("--shift-windows", type=int, default=50, help="windows tested per shift")
    parser.add_argument("--requests", type=int, default=120, help="timed requests per deployment per round (overhead)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()

    import httpx

    from dlptui import resources
    from dlptui.actions import drift_reference
    from dlptui.actions.datasets import import_sample
    from dlptui.analysis import drift as stats
    from dlptui.analysis.outliers import outlier_rule, outlier_scores
    from dlptui.config import load_config
    from dlptui.platform import Platform

    rng = np.random.default_rng(args.seed)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dlptui-drift-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        env = {"DLPTUI_HOME": str(home), "XDG_CONFIG_HOME": str(Path(tmp) / "config"), "DLPTUI_DRIFT_REFERENCE_ON_DEPLOY": "0"}
        os.environ.update(env)
        platform = Platform(load_config(env=env))
        try:
            start = time.perf_counter()
            commit = import_sample(platform.data, repo="dogs-and-cats").ref
            experiment = platform.training.create_experiment(resources.trial_dir() / f"{args.config}.yaml")
            while not (experiment := platform.training.get_experiment(experiment.id)).state.terminal:
                time.sleep(1.0)
            if experiment.state.value != "completed":
                raise SystemExit(f"the experiment ended {experiment.state.value}: {experiment.error}")
            timings["train_s"] = time.perf_counter() - start
            version = platform.registry.register("dogcat-model", experiment.id)
            print(f"trained {args.config} on {commit.repo}@{commit.commit[:12]}: accuracy {version.metrics.get('accuracy')}, "
                  f"{timings['train_s']:.0f} s", flush=True)

            platform.serving.deploy("drift-bench", version)
            endpoint = wait_available(platform, "drift-bench").endpoint
            start = time.perf_counter()
            [made] = drift_reference.compute(platform, "drift-bench")
            timings["reference_s"] = time.perf_counter() - start
            print(f"reference: {made.images} images of {made.data[:40]} in {timings['reference_s']:.1f} s", flush=True)
            reference = stats.Reference(*drift_reference.drift_part(made))  # what `dlptui drift` tests windows against
            everything = stats.Reference(made.embeddings, made.confidences)  # what it scores outliers against

            pools: dict[str, list[bytes]] = {"in": [jpeg(im) for im in held_back(args.pool, 1000)]}
            for kind in SHIFTS:
                pools[kind] = shifted(kind, args.shift_pool, rng)
            summaries: dict[str, list] = {}
            client = httpx.Client(timeout=60)
            seen = 0
            for kind, images in pools.items():
                start = time.perf_counter()
                send_all(client, endpoint, images)
                rows = platform.serving.prediction_summaries("drift-bench", version.version, limit=seen + len(images))
                summaries[kind] = rows[-len(images):] if len(rows) >= len(images) else rows
                seen += len(images)
                print(f"sent {len(images)} {kind} images in {time.perf_counter() - start:.0f} s", flush=True)
                if len(summaries[kind]) != len(images):
                    raise SystemExit(f"{kind}: {len(summaries[kind])} summaries logged for {len(images)} requests")

            raised: dict[str, int] = {"embeddings": 0, "confidences": 0}

            def windows(kind: str, count: int) -> float:
                rows = summaries[kind]
                e = np.array([r.embedding for r in rows])
                c = np.array([r.confidence for r in rows])
                alarms = 0
                size = min(args.window, len(rows))
                for i in range(count):
                    pick = rng.choice(len(rows), size=size, replace=False)
                    result = stats.test_window(reference, e[pick], c[pick], seed=i)
                    alarms += result.verdict == stats.DRIFTING
                    if kind == "in" and result.verdict == stats.DRIFTING:  # which test called it
                        raised["embeddings" if result.p_embeddings <= result.p_confidences else "confidences"] += 1
                return alarms / count

            start = time.perf_counter()
            false_alarms = windows("in", args.windows)
            detection = {kind: windows(kind, args.shift_windows) for kind in SHIFTS}
            timings["tests_s"] = time.perf_counter() - start
            per_test_ms = timings["tests_s"] * 1000 / (args.windows + len(SHIFTS) * args.shift_windows)

            whole = stats.test_window(reference, [r.embedding for r in summaries["in"]], [r.confidence for r in summaries["in"]])
            rule = outlier_rule(everything)
            inside = outlier_scores(everything, [r.embedding for r in summaries["in"]])
            noise_count = max(1, round(len(inside) * 5 / 95))
            noise = outlier_scores(everything, [r.embedding for r in summaries["noise"][:noise_count]])
            true_pos, false_pos = int(np.sum(noise > rule.threshold)), int(np.sum(inside > rule.threshold))
            precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
            recall = true_pos / noise_count
            photo_flagged = float(np.mean(outlier_scores(everything, [r.embedding for r in summaries["photos"]]) > rule.threshold))

            # the summary's cost: a fresh pair of deployments of the same version, with it on and off, the same image,
            # alternating blocks; the deployment that answered the pools is timed beside them
            endpoints = {"pools": endpoint}
            for name, flag in (("on", "1"), ("off", "0")):
                os.environ["DLPTUI_PREDICTION_SUMMARY"] = flag
                try:
                    platform.serving.deploy(f"drift-bench-{name}", version)
                finally:
                    os.environ.pop("DLPTUI_PREDICTION_SUMMARY", None)
            for name in ("on", "off"):
                endpoints[name] = wait_available(platform, f"drift-bench-{name}").endpoint
            probe = [pools["in"][0]]
            latency: dict[str, list[float]] = {name: [] for name in endpoints}
            for url in endpoints.values():
                send_all(client, url, probe * 10)
            for _ in range(args.rounds):
                for name in ("off", "on", "pools"):
                    for _ in range(args.requests // 20):
                        latency[name] += send_all(client, endpoints[name], probe * 20)
            client.close()
            names = {"on": "drift-bench-on", "off": "drift-bench-off", "pools": "drift-bench"}
            logged = {n: [p.latency_ms for p in platform.serving.predictions(d, limit=args.rounds * args.requests)]
                      for n, d in names.items()}
            no_summary = platform.serving.prediction_summaries("drift-bench-off", limit=10)
            cost = in_process_cost(version.checkpoint_location or platform.training.checkpoint(version.checkpoint_uuid).location,
                                   pools["in"][0], args.rounds * args.requests)
        finally:
            for d in platform.serving.list_deployments():
                platform.serving.undeploy(d.name)
            platform.close()

    sys.path.insert(0, str(resources.serving_dir()))
    import embedding_summary

    features, logits = np.random.default_rng(0).random((1, 1280), dtype=np.float32), np.array([[0.3, -0.2]])
    embedding_summary.summarize(logits, features)
    start = time.perf_counter()
    for _ in range(1000):
        embedding_summary.summarize(logits, features)
    summarize_us = (time.perf_counter() - start) * 1000

    p50 = {n: statistics.median(v) for n, v in latency.items()}
    inside_p50 = {n: statistics.median(v) for n, v in logged.items()}
    overhead = p50["on"] / p50["off"] - 1
    for kind in SHIFTS:
        target = " (target >= 90 %)" if kind in SYNTHETIC else " (reported, no target)"
        print(f"detection {kind:>11}: {detection[kind]:.0%} of {args.shift_windows} windows of {args.window}{target}")
    print(f"false alarms: {false_alarms:.1%} of {args.windows} in-distribution windows of {args.window} (alpha 0.01, target <= 5 %)")
    print(f"the false alarms' smaller p: embeddings {raised['embeddings']}, confidences {raised['confidences']}; the whole "
          f"in-distribution pool ({len(inside)}) against the reference: MMD p {whole.p_embeddings:.3g}, KS p {whole.p_confidences:.3g}, "
          f"KS {whole.ks:.3f}")
    print(f"one window's test: {per_test_ms:.0f} ms ({reference.size} reference images, {stats.PERMUTATIONS} permutations)")
    print(f"outliers (threshold {rule.threshold:.2f}, the {rule.quantile:.0%} conformal quantile of the reference): "
          f"precision {precision:.0%}, recall {recall:.0%} on {len(inside)} held-back images + {noise_count} noise images; "
          f"{false_pos} held-back images flagged; {photo_flagged:.0%} of the photos flagged")
    print(f"served p50: {p50['on']:.1f} ms with the summary, {p50['off']:.1f} ms without ({overhead:+.1%}, target <= +3 %); "
          f"inside the server {inside_p50['on']:.1f} vs {inside_p50['off']:.1f} ms; summarize() {summarize_us:.0f} us a request; "
          f"the server with it off logged {len(no_summary)} summaries; the deployment that answered the pools: "
          f"p50 {p50['pools']:.1f} ms, inside {inside_p50['pools']:.1f} ms")
    print(f"the server's prediction path in this process, alternating call by call: {cost['on']:.2f} ms with the summary, "
          f"{cost['off']:.2f} ms without ({cost['on'] / cost['off'] - 1:+.1%})")
    result = {
        "false_alarm_rate": round(false_alarms, 4),
        "detection": {k: round(v, 3) for k, v in detection.items()},
        "detection_synthetic_min": round(min(detection[k] for k in SYNTHETIC), 3),
        "outlier_precision": round(precision, 3),
        "outlier_recall": round(recall, 3),
        "summary_p50_overhead": round(overhead, 4),
        "served_p50_ms": {k: round(v, 2) for k, v in p50.items()},
        "in_process_overhead": round(cost["on"] / cost["off"] - 1, 4),
        "in_process_ms": {k: round(v, 2) for k, v in cost.items()},
        "window": args.window,
        "alpha": stats.ALPHA,
        "reference_images": made.images,
        "drift_reference_images": reference.size,
        "reference_s": round(timings["reference_s"], 1),
        "test_ms": round(per_test_ms, 1),
        "pool_p_embeddings": round(whole.p_embeddings, 4),
        "pool_p_confidences": round(whole.p_confidences, 4),
        "config": args.config,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
