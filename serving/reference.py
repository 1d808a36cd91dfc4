"""A model version's reference: the summaries of a sample of its training images, as the model server makes them.

    python reference.py (--checkpoint-dir DIR | --checkpoint-uri URI [--storage-endpoint URL]) --images DIR --out FILE.npz

dlptui runs this in a child process (PYTHONPATH: serving/ and trial/, as the model server's) after it has
fetched the sample from the version's training data commit into DIR. The checkpoint is read as the model
server reads it (`dogcat_model.checkpoint_folder`: a folder in place, or a gs:// or s3:// place read with
Determined's storage managers); every image is decoded as a request's binData is (`image_request`), goes
through the trial's eval transform and one forward pass, and is summarized by `embedding_summary`: the
very functions the server runs on live requests. A file the server would refuse is skipped and counted.

FILE.npz holds `embeddings` (n, DIMENSIONS) float32, `confidences` (n,) float64, `names` (n,) and `basis`;
the last line on stdout is a JSON object with the counts. A failure is one sentence on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

BATCH = 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", default="")
    parser.add_argument("--checkpoint-uri", default="")
    parser.add_argument("--storage-endpoint", default="")
    parser.add_argument("--images", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = compute(args)
    except Exception as e:  # noqa: BLE001  (one sentence for dlptui to show)
        if getattr(e, "user_facing", False):
            reason = str(e).rstrip(".")
        else:
            reason = f"{type(e).__name__}: {e}".rstrip(".")
        print(f"the reference could not be computed: {reason}.", file=sys.stderr)
        return 1
    print(json.dumps(counts))
    return 0


def compute(args) -> dict:
    import numpy as np
    import torch

    import embedding_summary
    import model_def
    from dogcat_model import model_folder
    from image_request import BadRequest, decode_image

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    folder = model_folder(args.checkpoint_dir, args.checkpoint_uri, args.storage_endpoint)
    net, hparams = model_def.load_model(folder)
    transform = model_def.eval_transform(hparams)
    names, tensors, summaries, skipped = [], [], [], 0

    def flush() -> None:
        if tensors:
            with torch.inference_mode():
                logits, features = embedding_summary.forward(net, torch.stack(tensors))
            summaries.extend(embedding_summary.summarize(logits, features))
            tensors.clear()

    for path in sorted(Path(args.images).iterdir()):
        try:
            image = decode_image(path.read_bytes())
        except (BadRequest, OSError):
            skipped += 1
            continue
        names.append(path.name)
        tensors.append(transform(image))
        if len(tensors) == BATCH:
            flush()
    flush()
    if not summaries:
        raise ValueError(f"none of the {skipped} files is an image the model server reads")
    if not summaries[0].basis:
        raise ValueError("the model has no embedding layer before its head (no features and head modules)")
    embeddings = np.stack([np.frombuffer(s.embedding, dtype="<f4") for s in summaries])
    confidences = np.array([s.confidence for s in summaries], dtype=np.float64)
    partial = Path(args.out).with_suffix(".partial.npz")
    np.savez(partial, embeddings=embeddings, confidences=confidences, names=np.array(names), basis=np.array(summaries[0].basis))
    os.replace(partial, args.out)
    return {"images": len(summaries), "skipped": skipped, "basis": summaries[0].basis}


if __name__ == "__main__":
    sys.exit(main())
