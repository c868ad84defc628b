"""The dataset registry. Loaders live in bench.data and are imported only when a dataset loads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.registry._registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    # load(options) -> bench.data.images.LoadedImages; options is a config.DatasetConfig
    load: Callable[[Any], Any]
    # Option keys (besides `name`) this dataset understands, and those it cannot do without.
    options: frozenset[str]
    required: frozenset[str] = frozenset()
    description: str = ""


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _lazy(loader_name: str) -> Callable[[Any], Any]:
    def load(options):
        from bench.data import loaders

        return getattr(loaders, loader_name)(options)

    return load


DATASETS.add(
    "digits",
    DatasetSpec(
        "digits",
        _lazy("load_digits"),
        options=frozenset({"image_size"}),
        description="scikit-learn's bundled handwritten digits: 1,797 8x8 grayscale, 10 classes",
    ),
)
DATASETS.add(
    "mnist",
    DatasetSpec(
        "mnist",
        _lazy("load_mnist"),
        options=frozenset({"root", "download", "image_size"}),
        description="MNIST via torchvision: 70,000 28x28 grayscale digits, official test split",
    ),
)
DATASETS.add(
    "cifar10",
    DatasetSpec(
        "cifar10",
        _lazy("load_cifar10"),
        options=frozenset({"root", "download", "image_size"}),
        description="CIFAR-10 (python batches): 60,000 32x32 RGB, 10 classes, official test split",
    ),
)
DATASETS.add(
    "imagefolder",
    DatasetSpec(
        "imagefolder",
        _lazy("load_imagefolder"),
        options=frozenset({"path", "image_size", "channels", "on_bad_image"}),
        required=frozenset({"path"}),
        description="your class-per-folder tree; train/ + test/ subfolders or a held-out split",
    ),
)
