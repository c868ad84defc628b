"""Loading images into memory once, and the stratified splits every trial shares."""

from __future__ import annotations

from bench.data.images import ImageData, LoadedImages
from bench.data.splits import fold_indices, holdout_split, prepare_dataset, replicates, with_folds

__all__ = [
    "ImageData",
    "LoadedImages",
    "fold_indices",
    "holdout_split",
    "prepare_dataset",
    "replicates",
    "with_folds",
]
