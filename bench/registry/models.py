"""The model registry. Each entry says what input it needs and declares its hyperparameters;
the data pipeline adapts to it. `create_model` is the one factory: it returns the module with
its fine-tuning description (`FineTuning`), which the training loop takes explicitly."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.hparams import AUGMENT, TRAINING, Hyperparameter, declare, defaults, markdown_table
from bench.models.contract import BuiltModel, FineTuning, Preprocessing
from bench.registry._registry import Registry

__all__ = [
    "MODELS",
    "BuiltModel",
    "FineTuning",
    "ModelSpec",
    "Preprocessing",
    "create_model",
    "model_preprocessing",
    "register_model",
    "searchable_docs",
]

H = Hyperparameter


def _no_preprocessing(**hparams: Any) -> Preprocessing | None:
    return None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    # build(num_classes, in_channels, image_size, **hparams) -> BuiltModel
    build: Callable[..., BuiltModel]
    family: str
    # Channels the network takes; None means whatever the dataset has.
    channels: int | None
    # Smallest square side the network accepts; smaller images are resized up to it.
    min_size: int
    # Model hyperparameters a search space may set: their one declaration.
    hparams: Mapping[str, Hyperparameter] = field(default_factory=dict)
    description: str = ""
    # preprocessing(**hparams): the inputs the built model expects, known before it is built.
    preprocessing: Callable[..., Preprocessing | None] = _no_preprocessing

    def input_shape(self, data_channels: int, data_size: int) -> tuple[int, int]:
        """(channels, side) the model is fed, given the dataset's own."""
        return (self.channels or data_channels, max(self.min_size, data_size))

    def resolved(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The given hyperparameters over the declared defaults; unknown names refused."""
        unknown = set(hparams) - set(self.hparams)
        if unknown:
            raise ValueError(f"model '{self.name}' takes no hyperparameter(s) {sorted(unknown)}")
        return {**defaults(self.hparams), **hparams}


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.add(spec.name, spec)


def create_model(
    name: str, num_classes: int, in_channels: int, image_size: int, **hparams: Any
) -> BuiltModel:
    """Build a registered model for inputs of `in_channels` x `image_size` x `image_size`."""
    spec = MODELS.get(name)
    return spec.build(num_classes, in_channels, image_size, **spec.resolved(hparams))


def model_preprocessing(name: str, **hparams: Any) -> Preprocessing | None:
    """The preprocessing `create_model(name, ..., **hparams)` will report, without building."""
    spec = MODELS.get(name)
    return spec.preprocessing(**spec.resolved(hparams))


def searchable_docs() -> str:
    """Markdown tables of every searchable hyperparameter: the training loop's, augmentation's
    and each group of models declaring the same ones (README.md carries this text)."""
    parts = [
        "Training (every model):\n\n" + markdown_table(TRAINING),
        "Augmentation of training batches (every model):\n\n" + markdown_table(AUGMENT),
    ]
    groups: list[tuple[Mapping[str, Hyperparameter], list[str]]] = []
    for name in MODELS.names():
        hparams = MODELS.get(name).hparams
        match = next((names for declared, names in groups if declared == hparams), None)
        if match is None:
            groups.append((hparams, [name]))
        else:
            match.append(name)
    for hparams, names in groups:
        if hparams:
            models = ", ".join(f"`{n}`" for n in names)
            parts.append(f"{models}:\n\n" + markdown_table(hparams))
    return "\n".join(parts)


def _build_mlp(num_classes, in_channels, image_size, **hparams) -> BuiltModel:
    from bench.models.small import MLP

    return BuiltModel(MLP(in_channels * image_size * image_size, num_classes, **hparams))


def _build_simple_cnn(num_classes, in_channels, image_size, **hparams) -> BuiltModel:
    from bench.models.small import SimpleCNN

    return BuiltModel(SimpleCNN(in_channels, image_size, num_classes, **hparams))


def _torchvision_builder(arch: str) -> Callable[..., BuiltModel]:
    def build(num_classes, in_channels, image_size, **hparams) -> BuiltModel:
        from bench.models.torchvision_models import build_torchvision

        return BuiltModel(*build_torchvision(arch, num_classes, **hparams))

    return build


def _torchvision_preprocessing(arch: str) -> Callable[..., Preprocessing | None]:
    def preprocessing(weights: str, strategy: str, **_: Any) -> Preprocessing | None:
        if strategy == "from_scratch" or weights in (None, "none"):
            return None
        from bench.models.torchvision_models import pretrained_preprocessing

        return pretrained_preprocessing(arch)

    return preprocessing


MLP_HPARAMS = declare(
    H("hidden_dim", int, 128, "width of the first hidden layer", 1, 65536),
    H("depth", int, 2, "hidden layers", 1, 64),
    H("dropout", float, 0.1, "dropout after each hidden layer", 0.0, 0.99),
    H("shrink", float, 1.0, "each hidden layer is shrink x the one before", 0.01, 1.0),
)
SIMPLE_CNN_HPARAMS = declare(
    H("width", int, 32, "channels of the first convolution (the second has twice)", 1, 4096),
    H("hidden_dim", int, 128, "width of the hidden fully connected layer", 1, 65536),
    H("dropout", float, 0.25, "dropout before the hidden layer", 0.0, 0.99),
)
TORCHVISION_HPARAMS = declare(
    H("weights", str, "none", "none, imagenet (torchvision's default), or a state-dict path"),
    H(
        "strategy",
        str,
        "full",
        "fine-tuning strategy",
        choices={
            "full": "everything trains",
            "head_only": "frozen backbone",
            "from_scratch": "random init, weights ignored",
        },
    ),
    H(
        "head_hidden",
        int,
        0,
        "hidden layer (batch norm, ReLU, dropout) before the output; 0: none",
        0,
        65536,
    ),
    H("head_dropout", float, 0.0, "dropout of the hidden head layer", 0.0, 0.99),
    H("backbone_lr_scale", float, 1.0, "the backbone learns at lr x this", 0.0, 10.0),
    H("unfreeze_after", int, 0, "with head_only: the backbone trains from epoch N+1", 0, math.inf),
)


register_model(
    ModelSpec(
        "mlp",
        _build_mlp,
        family="mlp",
        channels=None,
        min_size=1,
        hparams=MLP_HPARAMS,
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
        hparams=SIMPLE_CNN_HPARAMS,
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
            preprocessing=_torchvision_preprocessing(_arch),
        )
    )
