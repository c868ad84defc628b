"""Loading images into memory once, and the stratified splits every trial shares."""

from bench.data.images import ImageData, LoadedImages
from bench.data.splits import fold_indices, holdout_split, prepare_dataset

__all__ = ["ImageData", "LoadedImages", "fold_indices", "holdout_split", "prepare_dataset"]
