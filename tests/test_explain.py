"""Explanations: where the model a deployment serves looked, as a Grad-CAM map over the image.

- The map is checked where the answer is known: the trial's tiny CNN, trained here for a few seconds
  on SYNTHETIC images (smooth colour noise) whose class is decided only by a 16-pixel striped patch
  at a random place (horizontal stripes: cat, vertical: dog), saved as a Determined checkpoint and
  explained through dlptui's own loader: the map's brightest point lies on the patch.
- `dlptui predict IMAGE --explain out.png` against a really served tiny model: a PNG of the image's
  size, coloured where the map is high, dimmed outside the crop the model saw.
- Bad input (no deployment, a bad image, a damaged or missing checkpoint, a bad output path): one
  sentence each, the right exit code, no file written.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from dlptui.errors import InvalidInput
from tests.helpers import run

HP = {"backbone": "tiny", "pretrained": False, "image_size": 64}  # resize 73, crop 64
SIDE, CROP, PATCH = 73, 64, 16
OFFSET = (SIDE - CROP) // 2  # the center crop's corner: 4


def patch_image(rng, label: int):
    """A SIDE x SIDE picture of smooth colour noise with a striped patch inside the crop, and the patch's box."""
    import numpy as np
    from PIL import Image

    noise = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(noise).resize((SIDE, SIDE), Image.Resampling.BILINEAR)).copy()
    x, y = (int(v) for v in rng.integers(OFFSET, OFFSET + CROP - PATCH + 1, size=2))
    stripes = (np.arange(PATCH) // 2 % 2 * 255).astype(np.uint8)
    pattern = np.repeat(stripes[:, None], PATCH, 1) if label == 0 else np.repeat(stripes[None, :], PATCH, 0)
    pixels[y : y + PATCH, x : x + PATCH] = pattern[..., None]
    return Image.fromarray(pixels), (x, y, x + PATCH, y + PATCH)


def train_patch_model(folder: Path) -> None:
    """The trial's tiny CNN, trained on patch images until it tells them apart, saved as Determined saves it."""
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trial"))
    try:
        import model_def
    finally:
        sys.path.pop(0)
    mean, std = (np.array(v, dtype=np.float32) for v in (model_def.IMAGENET_MEAN, model_def.IMAGENET_STD))

    def tensor(picture):  # what eval_transform makes of a 73 x 73 picture (the resize keeps it, the crop cuts 4 px)
        a = (np.asarray(picture, dtype=np.float32)[OFFSET : OFFSET + CROP, OFFSET : OFFSET + CROP] / 255 - mean) / std
        return torch.from_numpy(a.transpose(2, 0, 1).copy())

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = model_def.build_model(HP)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        labels = rng.integers(0, 2, 32)
        batch = torch.stack([tensor(patch_image(rng, int(label))[0]) for label in labels])
        loss = torch.nn.functional.cross_entropy(net(batch), torch.as_tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder.mkdir(parents=True)
    torch.save({"models_state_dict": [net.eval().state_dict()]}, folder / "state_dict.pth")
    (folder / "load_data.json").write_text(json.dumps({"trial_type": "PyTorchTrial", "hparams": HP}))


def png(picture) -> bytes:
    buf = io.BytesIO()
    picture.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_the_map_is_brightest_on_the_patch_that_decides_the_class(tmp_path):
    import numpy as np

    from dlptui.platform.local.checkpoint_model import explain

    checkpoint = tmp_path / "patch-checkpoint"
    train_patch_model(checkpoint)
    rng = np.random.default_rng(1)  # images the model never saw
    for i in range(20):
        label = i % 2
        picture, (x0, y0, x1, y1) = patch_image(rng, label)
        saliency = explain(checkpoint, png(picture), f"patch.{i}.png", "patch-model@1")
        assert saliency.label == ("cat", "dog")[label], f"image {i}: the model says {saliency.probabilities}"
        assert saliency.box == (OFFSET, OFFSET, OFFSET + CROP, OFFSET + CROP)
        x, y = saliency.peak()
        half_cell = 4  # the tiny CNN's last block is 8 x 8 over 64 pixels: its cells are 8 pixels wide
        assert x0 - half_cell <= x < x1 + half_cell and y0 - half_cell <= y < y1 + half_cell, \
            f"image {i}: the map peaks at {(x, y)}, the patch is {(x0, y0, x1, y1)}"
        heat = saliency.heat  # in crop pixels
        inside = np.zeros(heat.shape, bool)
        inside[y0 - OFFSET : y1 - OFFSET, x0 - OFFSET : x1 - OFFSET] = True
        assert heat[inside].mean() > 3 * heat[~inside].mean(), f"image {i}: the patch is not where the map is bright"
        # the explanation of the other class is computed too, and says which class it explains
        other = explain(checkpoint, png(picture), f"patch.{i}.png", "patch-model@1", label=("dog", "cat")[label])
        assert other.label == ("dog", "cat")[label]


def test_the_crop_box_is_what_the_eval_transform_keeps(tmp_path):
    """A picture whose pixels say where they are, through the trial's own Resize and CenterCrop: the corners of
    what comes out are the corners of `crop_box`."""
    import numpy as np
    from PIL import Image

    from dlptui import resources
    from dlptui.platform.local.checkpoint_model import crop_box, trial_code

    model_def, _ = trial_code(resources.trial_dir())
    transform = model_def.eval_transform({"image_size": 224})
    for width, height in ((451, 300), (300, 451), (224, 224), (1000, 260)):
        xs, ys = np.meshgrid(np.arange(width), np.arange(height))
        coded = np.stack([xs * 255 // (width - 1), ys * 255 // (height - 1), np.zeros_like(xs)], -1).astype(np.uint8)
        resized_cropped = transform.transforms[1](transform.transforms[0](Image.fromarray(coded)))
        out = np.asarray(resized_cropped, dtype=float)
        left, top, right, bottom = crop_box(transform, (width, height))
        assert out.shape[:2] == (224, 224)
        assert abs(out[0, 0, 0] * (width - 1) / 255 - left) <= 3 + width / 255
        assert abs(out[0, 0, 1] * (height - 1) / 255 - top) <= 3 + height / 255
        assert abs(out[-1, -1, 0] * (width - 1) / 255 - (right - 1)) <= 3 + width / 255
        assert abs(out[-1, -1, 1] * (height - 1) / 255 - (bottom - 1)) <= 3 + height / 255


def test_the_trial_names_do_not_stay_in_the_module_table(tmp_path, monkeypatch):
    from dlptui.platform.local.checkpoint_model import TRIAL_MODULES, trial_code

    copy = tmp_path / "trial-copy"
    shutil.copytree(Path(__file__).resolve().parents[1] / "trial", copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = {name: sys.modules.get(name) for name in TRIAL_MODULES}
    model_def, saliency = trial_code(copy)
    assert Path(model_def.__file__).resolve() == (copy / "model_def.py").resolve()
    assert Path(saliency.__file__).resolve() == (copy / "saliency.py").resolve()
    assert {name: sys.modules.get(name) for name in TRIAL_MODULES} == before


def test_an_image_the_model_cannot_read_is_one_sentence(tmp_path):
    from PIL import Image

    from dlptui.platform.local.checkpoint_model import decode

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "JPEG")
    whole = buf.getvalue()
    assert decode(whole, "ok.jpg").size == (64, 48)
    for data, name, said in ((b"", "empty.jpg", "empty.jpg is empty"),
                             (b"this is text, not a PNG", "fake.png", "fake.png is not a JPEG or PNG image"),
                             (whole[: len(whole) // 2], "truncated.jpg", "truncated.jpg is damaged")):
        with pytest.raises(InvalidInput) as caught:
            decode(data, name)
        assert str(caught.value).startswith(said) and "\n" not in str(caught.value)
    buf = io.BytesIO()
    Image.new("L", (8, 8), 0).save(buf, "GIF")
    with pytest.raises(InvalidInput, match="gif.gif is not a JPEG or PNG image"):
        decode(buf.getvalue(), "gif.gif")


def test_explain_without_a_deployment_or_with_a_bad_path_is_one_sentence(platform, tmp_path, capsys):
    from dlptui.actions.sample import draw

    folder = tmp_path / "work"
    folder.mkdir()
    image = folder / "cat.1.jpg"
    image.write_bytes(draw("cat", 1))
    out = folder / "out.png"
    cases = [
        (("predict", str(image), "--deployment", "nowhere", "--explain", str(out)), 3, "no deployment named 'nowhere'"),
        (("predict", str(image), str(image), "--explain", str(out)), 2, "--explain draws the overlay of one image"),
        (("predict", str(image), "--explain", str(folder / "out.jpg")), 2, "give a file name ending in .png"),
        (("predict", str(image), "--explain", str(folder / "no" / "out.png")), 3, "There is no folder"),
        (("predict", str(image), "--explain", str(folder)), 2, "give a file name ending in .png"),
    ]
    for argv, code, said in cases:
        got, stdout, stderr = run(capsys, *argv)
        assert (got, stdout) == (code, ""), (argv, got, stdout, stderr)
        assert said in stderr and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert list(folder.iterdir()) == [image]  # nothing written


@pytest.mark.slow
def test_predict_explain_writes_the_overlay_then_a_damaged_or_missing_checkpoint_is_one_sentence(
        trained_platform, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from dlptui.actions.sample import draw

    [experiment] = trained_platform.training.list_experiments()
    version = trained_platform.registry.register("dogcat-model", experiment.id)
    wide = Image.new("RGB", (150, 96), (128, 128, 128))  # a wide picture: the crop leaves its sides out
    wide.paste(Image.open(io.BytesIO(draw("cat", 1))), (27, 0))
    image = tmp_path / "wide-cat.png"
    wide.save(image)
    (tmp_path / "fake.png").write_bytes(b"this is text, not a PNG")
    out = tmp_path / "out.png"

    code, _, err = run(capsys, "deploy", "dogcat-model@1", "--wait")
    assert code == 0, err
    try:
        code, stdout, err = run(capsys, "predict", str(image), "--explain", str(out), "--json")
        assert code == 0, err
        [answer] = json.loads(stdout)
        explained = answer["explanation"]
        assert explained["label"] == answer["label"] and explained["version"] == answer["version"] == 1
        assert explained["method"] == "Grad-CAM" and explained["overlay"] == str(out)
        assert abs(explained["probability"] - answer["probabilities"][answer["label"]]) < 1e-3  # the served answer

        umask = os.umask(0o022)
        os.umask(umask)
        assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file of the user's, not a private temp file
        drawn = Image.open(out)
        assert drawn.format == "PNG" and drawn.size == (150, 96)
        before, after = np.asarray(wide, dtype=int), np.asarray(drawn.convert("RGB"), dtype=int)
        x, y = explained["peak"]
        left, top, right, bottom = explained["crop"]
        assert (left, top, right, bottom) == (33, 5, 117, 89)  # Resize(73): 114 x 73; CenterCrop(64) from (25, 4), scaled back
        assert left <= x < right and top <= y < bottom
        assert np.abs(after[y, x] - before[y, x]).sum() > 60  # coloured where the map is highest
        assert (after[:, :left] < before[:, :left]).all()  # dimmed where the model did not look

        code, stdout, err = run(capsys, "predict", str(image), "--explain", str(out))
        assert code == 0 and f"Wrote {out}: Grad-CAM for {answer['label']}" in stdout and "dogcat-model@1" in stdout

        out.unlink()
        code, stdout, err = run(capsys, "predict", str(tmp_path / "fake.png"), "--explain", str(out))
        # one bad image is its one sentence and exit 2 (the predict rules), before any overlay is made
        assert code == 2 and len(err.strip().splitlines()) == 1 and "fake.png" in err and not out.exists()

        checkpoint = Path(version.checkpoint_location)
        state = checkpoint / "state_dict.pth"
        state.write_bytes(state.read_bytes()[:1000])  # damaged after the server loaded it
        code, stdout, err = run(capsys, "predict", str(image), "--explain", str(out))
        assert code == 6 and stdout == "" and not out.exists()
        assert err.startswith("dlptui: The checkpoint of dogcat-model@1") and "cannot be read" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

        shutil.rmtree(checkpoint)
        code, stdout, err = run(capsys, "predict", str(image), "--explain", str(out))
        assert code == 3 and stdout == "" and not out.exists()
        assert "The checkpoint of dogcat-model@1 is not on this machine" in err and len(err.strip().splitlines()) == 1
    finally:
        trained_platform.serving.undeploy("dogcat-deploy")


def test_the_caption_names_the_class_the_version_and_an_empty_map():
    import numpy as np
    from PIL import Image

    from dlptui.actions.explain import Explanation, caption
    from dlptui.platform.local.checkpoint_model import Saliency
    from dlptui.platform.model import ModelVersion

    version = ModelVersion("dogcat-model", 3, "uuid", 0.0)
    heat = np.zeros((8, 8), np.float32)
    heat[2, 5] = 1.0
    found = Saliency("dog", {"cat": 0.25, "dog": 0.75}, heat, (0, 0, 80, 80), Image.new("RGB", (80, 80)))
    said = caption(Explanation("x.jpg", "dogcat-deploy", version, found))
    assert said == "Grad-CAM for dog (75.0%), dogcat-model@3: the redder, the more that part raised it"
    assert found.peak() == (55, 25)  # the middle of cell (row 2, column 5) of an 8 x 8 map over 80 pixels
    nothing = Saliency("cat", {"cat": 0.25, "dog": 0.75}, np.zeros((8, 8), np.float32), (0, 0, 80, 80), Image.new("RGB", (80, 80)))
    assert caption(Explanation("x.jpg", "dogcat-deploy", version, nothing)).endswith(": no part of the image raised it")
