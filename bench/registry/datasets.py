"""The dataset registry, and the one way to load a registered dataset (`load_replicates`).

The registry depends on bench.data, never the reverse; loaders are imported only when a
dataset loads, so listing or validating datasets imports no numpy-heavy code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.registry._registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    # load(options, decoding) -> bench.data.images.LoadedImages, read from the image cache;
    # options is a config.DatasetConfig, decoding a bench.data.loaders.Decoding (or None)
    load: Callable[[Any], Any]
    # Option keys (besides `name`) this dataset understands, and those it cannot do without.
    options: frozenset[str]
    required: frozenset[str] = frozenset()
    description: str = ""
    # labels(options) -> (training labels, has its own test split) or None, read without
    # decoding images: the fold-count check before a run starts (bench.preflight)
    labels: Callable[[Any], Any] | None = None
    # needs_torch(options): whether loading it in the driver takes torch (torchvision reads
    # it, or torch resizes it into the cache); a run then imports torch before Ray
    # (bench.preflight.import_torch_first).
    needs_torch: Callable[[Any], bool] = lambda options: False


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _load_digits(options, decoding=None):
    from bench.data.loaders import load_digits

    return load_digits(options, decoding)


def _load_mnist(options, decoding=None):
    from bench.data.loaders import load_mnist

    return load_mnist(options, decoding)


def _load_cifar10(options, decoding=None):
    from bench.data.loaders import load_cifar10

    return load_cifar10(options, decoding)


def _load_imagefolder(options, decoding=None):
    from bench.data.loaders import load_imagefolder

    return load_imagefolder(options, decoding)


def _read_labels(options):
    from bench.data.labels import READERS

    return READERS[options.name](options)


DATASETS.add(
    "digits",
    DatasetSpec(
        "digits",
        _load_digits,
        labels=_read_labels,
        needs_torch=lambda options: options.image_size not in (None, 8),  # resized by torch
        options=frozenset({"image_size"}),
        description="scikit-learn's bundled handwritten digits: 1,797 8x8 grayscale, 10 classes",
    ),
)
DATASETS.add(
    "mnist",
    DatasetSpec(
        "mnist",
        _load_mnist,
        labels=_read_labels,
        needs_torch=lambda options: True,
        options=frozenset({"root", "download", "image_size"}),
        description="MNIST via torchvision: 70,000 28x28 grayscale digits, official test split",
    ),
)
DATASETS.add(
    "cifar10",
    DatasetSpec(
        "cifar10",
        _load_cifar10,
        labels=_read_labels,
        needs_torch=lambda options: True,
        options=frozenset({"root", "download", "image_size"}),
        description="CIFAR-10 (python batches): 60,000 32x32 RGB, 10 classes, official test split",
    ),
)
DATASETS.add(
    "imagefolder",
    DatasetSpec(
        "imagefolder",
        _load_imagefolder,
        labels=_read_labels,
        options=frozenset({"path", "image_size", "channels", "on_bad_image"}),
        required=frozenset({"path"}),
        description="your class-per-folder tree; train/ + test/ subfolders or a held-out split",
    ),
)


def load_replicates(
    dataset: Any, folds: int, test_fraction: float, seed: int, repeats: int, decoding: Any = None
):
    """A config.DatasetConfig -> its images, decoded once into the image cache, with each
    repeat's test split and CV folds (bench.data.splits.replicates): a list of ImageData, one
    per repeat, whose images are views of the cache. `decoding`: how to decode what the cache
    lacks (bench.data.loaders.Decoding; threads by default)."""
    from bench.data.splits import replicates

    loaded = DATASETS.get(dataset.name).load(dataset, decoding)
    return replicates(dataset.key, loaded, repeats, folds, test_fraction, seed)


def load_dataset(dataset: Any, folds: int, test_fraction: float, seed: int):
    """Repeat 0 of load_replicates: the splits every run's first repeat uses."""
    return load_replicates(dataset, folds, test_fraction, seed, 1)[0]
