"""Loading images into memory once, and the stratified splits every trial shares."""

from __future__ import annotations

from typing import Any

from bench.data.images import ImageData, LoadedImages
from bench.data.splits import fold_indices, holdout_split, prepare_dataset, with_folds

__all__ = [
    "ImageData",
    "LoadedImages",
    "fold_indices",
    "holdout_split",
    "load_dataset",
    "prepare_dataset",
    "with_folds",
]


def load_dataset(dataset: Any, folds: int, test_fraction: float, seed: int) -> ImageData:
    """A config.DatasetConfig -> the loaded images, their test split and their CV folds."""
    from bench.registry import DATASETS

    loaded = DATASETS.get(dataset.name).load(dataset)
    data = prepare_dataset(dataset.key, loaded, test_fraction, seed)
    return with_folds(data, folds, seed)
