"""Loading images into memory once, and the stratified splits every trial shares."""

from __future__ import annotations

from typing import Any

from bench.data.images import ImageData, LoadedImages
from bench.data.splits import fold_indices, holdout_split, prepare_dataset, replicates, with_folds

__all__ = [
    "ImageData",
    "LoadedImages",
    "fold_indices",
    "holdout_split",
    "load_dataset",
    "load_replicates",
    "prepare_dataset",
    "replicates",
    "with_folds",
]


def load_replicates(
    dataset: Any, folds: int, test_fraction: float, seed: int, repeats: int
) -> list[ImageData]:
    """A config.DatasetConfig -> its images, decoded once, with each repeat's test split and
    CV folds (see splits.replicates)."""
    from bench.registry import DATASETS

    loaded = DATASETS.get(dataset.name).load(dataset)
    return replicates(dataset.key, loaded, repeats, folds, test_fraction, seed)


def load_dataset(dataset: Any, folds: int, test_fraction: float, seed: int) -> ImageData:
    """Repeat 0 of load_replicates: the splits every run's first repeat uses."""
    return load_replicates(dataset, folds, test_fraction, seed, 1)[0]
