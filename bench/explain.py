"""An explanation (Grad-CAM over the image) against a prediction of the same image, in-process, on this CPU.

    .venv/bin/python bench/explain.py [--runs 10]

For the trial's tiny CNN (64 px) and for efficientnet-lite0 with its ImageNet weights (224 px, the demo
model), each saved as a Determined checkpoint, on scikit-image's CC0 cat photo (451x300 JPEG), through
dlptui's own path (`dlptui.platform.local.checkpoint_model.explain`: decode, the trial's eval transform,
Grad-CAM by captum, the overlay at the photo's size):

- first_s: a fresh Python process's first explanation, from before `import torch` to the overlay (what the
  console's first `E` costs: torch, torchvision, captum and the trial imported, the checkpoint loaded);
- load_explain_s: the first explanation of a version in a process that has torch already (the checkpoint
  loaded, then explained), median of `--runs`;
- explain_s: an explanation of a version already loaded, median of `--runs` (what every later `E` costs);
- predict_s: the baseline, measured in the same process: decode, transform and forward pass of the same
  image under `torch.inference_mode()`, median of `--runs`; `explain_ratio` = explain_s / predict_s.

Target: load_explain_s and explain_s under 2 s for both models (first_s is reported: it is mostly imports).
Torch uses its default threads (as in the console). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "tiny": {"backbone": "tiny", "pretrained": False, "image_size": 64},
    "efficientnet_lite0": {"backbone": "efficientnet_lite0", "pretrained": True, "image_size": 224},
}
TARGET_S = 2.0

FIRST = r"""
import sys, time
start = time.perf_counter()
from pathlib import Path
from dlptui.platform.local.checkpoint_model import explain
saliency = explain(Path(sys.argv[1]), Path(sys.argv[2]).read_bytes(), "chelsea.jpg", "bench@1")
print(time.perf_counter() - start)
"""


def cat_jpeg() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_checkpoint(model_def, hparams: dict, folder: Path) -> None:
    import torch

    folder.mkdir(parents=True)
    torch.save({"models_state_dict": [model_def.build_model(hparams).state_dict()]}, folder / "state_dict.pth")
    (folder / "load_data.json").write_text(json.dumps({"trial_type": "PyTorchTrial", "hparams": hparams}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from dlptui import resources

    sys.path.insert(0, str(resources.trial_dir()))
    import model_def
    import torch
    from PIL import Image

    from dlptui.platform.local import checkpoint_model

    image = cat_jpeg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dlptui-bench-explain-") as tmp:
        photo = Path(tmp) / "chelsea.jpg"
        photo.write_bytes(image)
        for name, hparams in MODELS.items():
            checkpoint = Path(tmp) / name
            write_checkpoint(model_def, hparams, checkpoint)
            done = subprocess.run([sys.executable, "-c", FIRST, str(checkpoint), str(photo)], capture_output=True,
                                  text=True, cwd=ROOT, timeout=300)
            if done.returncode != 0:
                raise SystemExit(f"the first explanation failed: {done.stderr[-2000:]}")
            first = float(done.stdout.strip().splitlines()[-1])

            net, hp = model_def.load_model(checkpoint)
            transform = model_def.eval_transform(hp)

            def predict() -> None:
                batch = transform(Image.open(io.BytesIO(image)).convert("RGB")).unsqueeze(0)
                with torch.inference_mode():
                    torch.softmax(net(batch), dim=1)

            loads, explains, predicts = [], [], []
            label = None
            for _ in range(args.runs):
                checkpoint_model._models.clear()  # the version not loaded yet
                start = time.perf_counter()
                checkpoint_model.explain(checkpoint, image, "chelsea.jpg", "bench@1")
                loads.append(time.perf_counter() - start)
                start = time.perf_counter()
                label = checkpoint_model.explain(checkpoint, image, "chelsea.jpg", "bench@1").label
                explains.append(time.perf_counter() - start)
                start = time.perf_counter()
                predict()
                predicts.append(time.perf_counter() - start)
            figures = {
                "first_s": round(first, 3),
                "load_explain_s": round(statistics.median(loads), 3),
                "explain_s": round(statistics.median(explains), 3),
                "predict_s": round(statistics.median(predicts), 4),
                "label": label,
            }
            figures["explain_ratio"] = round(figures["explain_s"] / figures["predict_s"], 2)
            figures["under_target"] = figures["load_explain_s"] < TARGET_S and figures["explain_s"] < TARGET_S
            results[name] = figures
            print(f"{name}: first explanation in a fresh process {first:.2f} s; load + explain {figures['load_explain_s']:.3f} s; "
                  f"explain {figures['explain_s']:.3f} s vs predict {figures['predict_s'] * 1000:.1f} ms "
                  f"(ratio {figures['explain_ratio']}), says {label}", flush=True)
    print(json.dumps({"torch_threads": torch.get_num_threads(), "runs": args.runs, "target_s": TARGET_S, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
