"""Stratified held-out test split and k folds: derived once per dataset from a seed, so every
trial of every model sees exactly the same folds."""

from __future__ import annotations

import numpy as np

from bench.data.images import ImageData, LoadedImages, channel_stats
from bench.errors import ConfigError


def holdout_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, test = train_test_split(
        index, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return np.sort(train), np.sort(test)


def prepare_dataset(name: str, loaded: LoadedImages, test_fraction: float, seed: int) -> ImageData:
    """Use the official test split when there is one, else hold out a stratified fraction."""
    if loaded.test_x is not None and loaded.test_y is not None:
        return ImageData(
            name,
            loaded.classes,
            loaded.x,
            loaded.y,
            loaded.test_x,
            loaded.test_y,
            True,
            skipped=loaded.skipped,
        )
    train, test = holdout_split(loaded.y, test_fraction, seed)
    return ImageData(
        name,
        loaded.classes,
        loaded.x[train],
        loaded.y[train],
        loaded.x[test],
        loaded.y[test],
        official_test=False,
        train_index=train,
        test_index=test,
        skipped=loaded.skipped,
    )


def fold_indices(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs of stratified k-fold CV over `labels`."""
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    if k > smallest:
        raise ConfigError(
            f"cv.folds: {k} folds but the smallest class has {smallest} training samples; "
            f"use folds <= {smallest}"
        )
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def with_folds(data: ImageData, k: int, seed: int) -> ImageData:
    """Attach the dataset's k stratified folds and the CV pool's normalization statistics."""
    data.folds = fold_indices(data.train_y, k, seed)
    data.mean, data.std = channel_stats(data.train_x)
    return data
