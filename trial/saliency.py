"""Where the trial's model looks: a Grad-CAM map of one image, for one class.

    net, hparams = model_def.load_model(checkpoint)
    batch = model_def.eval_transform(hparams)(image).unsqueeze(0)
    heat, probabilities = grad_cam(net, batch)            # heat: crop-sized array in [0, 1], 1 = brightest

Grad-CAM (Selvaraju et al., 2017) weighs each channel of the model's last convolutional block by
the mean gradient of the class's logit with respect to it, sums them and keeps the positive part:
the places whose features raise that class's score. It is computed by captum's `LayerGradCam` on
the input of the backbone's global average pool, which is the output of its last convolutional
block on every backbone of `model_def` (the tiny CNN: 8x8 at 64 px; efficientnet-lite0: 7x7 at
224 px, after its head convolution; resnet50: layer4), then scaled up to the crop bilinearly.
One forward and one backward pass: about 0.3 s for efficientnet-lite0 on this machine's CPU.
Integrated gradients was measured too and left out: 16 steps took 5 s there, over the 2 s budget.

It lives beside `model_def.py` so it always fits the model that file builds; dlptui imports it
in its own process (`dlptui/platform/local/checkpoint_model.py`), never at the console's start.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

METHOD = "Grad-CAM"


def last_block(model: nn.Module) -> nn.Module:
    """The backbone's global average pool: its input is the output of the last convolutional block."""
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not pools:
        raise ValueError("the model has no global average pool after its convolutional blocks; Grad-CAM needs one")
    return pools[-1]


def grad_cam(model: nn.Module, batch: torch.Tensor, target: int | None = None) -> tuple[np.ndarray, list[float]]:
    """The Grad-CAM map of the one image in `batch` (1 x 3 x H x W, as the eval transform makes it) for class
    `target` (default: the class the model gives the most), H x W in [0, 1], and the model's probabilities.

    A map with no positive part (nothing in the image raises that class) is all zeros."""
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    with torch.no_grad():
        probabilities = torch.softmax(model(batch).float(), dim=1)[0]
    if target is None:
        target = int(probabilities.argmax())
    with torch.enable_grad():
        cam = LayerGradCam(model, last_block(model)).attribute(
            batch, target=target, attribute_to_layer_input=True, relu_attributions=True
        )
    heat = LayerAttribution.interpolate(cam.detach(), tuple(batch.shape[-2:]), interpolate_mode="bilinear")[0, 0]
    heat = heat.clamp(min=0)
    top = float(heat.max())
    heat = heat / top if top > 0 else torch.zeros_like(heat)
    return heat.numpy().astype(np.float32), probabilities.tolist()
