"""The model registry. Each entry says what input it needs; the data pipeline adapts to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.registry._registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    # build(num_classes, in_channels, image_size, **hparams) -> torch.nn.Module
    build: Callable[..., Any]
    family: str
    # Channels the network takes; None means whatever the dataset has.
    channels: int | None
    # Smallest square side the network accepts; smaller images are resized up to it.
    min_size: int
    # Model hyperparameters a search space may set, with their defaults.
    hparams: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def input_shape(self, data_channels: int, data_size: int) -> tuple[int, int]:
        """(channels, side) the model is fed, given the dataset's own."""
        return (self.channels or data_channels, max(self.min_size, data_size))


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.add(spec.name, spec)


def create_model(name: str, num_classes: int, in_channels: int, image_size: int, **hparams: Any):
    """Build a registered model for inputs of `in_channels` x `image_size` x `image_size`."""
    spec = MODELS.get(name)
    unknown = set(hparams) - set(spec.hparams)
    if unknown:
        raise ValueError(f"model '{name}' takes no hyperparameter(s) {sorted(unknown)}")
    return spec.build(num_classes, in_channels, image_size, **{**spec.hparams, **hparams})


def _build_mlp(num_classes, in_channels, image_size, **hparams):
    from bench.models.small import MLP

    return MLP(in_channels * image_size * image_size, num_classes, **hparams)


def _build_simple_cnn(num_classes, in_channels, image_size, **hparams):
    from bench.models.small import SimpleCNN

    return SimpleCNN(in_channels, image_size, num_classes, **hparams)


def _torchvision_builder(arch: str) -> Callable[..., Any]:
    def build(num_classes, in_channels, image_size, **hparams):
        from bench.models.torchvision_models import build_torchvision

        return build_torchvision(arch, num_classes, **hparams)

    return build


# What every torchvision backbone takes: weights (none / imagenet / a state-dict path), the
# fine-tuning strategy, an optional hidden head, a learning-rate scale for the backbone, and
# the epoch after which a head_only backbone starts training too (0: never).
TORCHVISION_HPARAMS = {
    "weights": "none",
    "strategy": "full",
    "head_hidden": 0,
    "head_dropout": 0.0,
    "backbone_lr_scale": 1.0,
    "unfreeze_after": 0,
}


register_model(
    ModelSpec(
        "mlp",
        _build_mlp,
        family="mlp",
        channels=None,
        min_size=1,
        hparams={"hidden_dim": 128, "depth": 2, "dropout": 0.1, "shrink": 1.0},
        description="multilayer perceptron on flattened pixels (ReLU, dropout)",
    )
)
register_model(
    ModelSpec(
        "simple_cnn",
        _build_simple_cnn,
        family="cnn",
        channels=None,
        min_size=8,
        hparams={"width": 32, "hidden_dim": 128, "dropout": 0.25},
        description="conv-pool-conv-pool-fc network trained from scratch",
    )
)

# torchvision backbones take RGB; below 32 px their five stride-2 stages collapse the image.
for _arch, _family in [
    ("resnet18", "resnet"),
    ("resnet34", "resnet"),
    ("resnet50", "resnet"),
    ("resnet101", "resnet"),
    ("vgg16", "vgg"),
    ("vgg16_bn", "vgg"),
    ("efficientnet_b0", "efficientnet"),
    ("mobilenet_v2", "mobilenet"),
]:
    register_model(
        ModelSpec(
            _arch,
            _torchvision_builder(_arch),
            family=_family,
            channels=3,
            min_size=32,
            hparams=TORCHVISION_HPARAMS,
            description=f"torchvision {_arch}, classifier head sized to the dataset",
        )
    )
