"""Stratified held-out test split and k folds per repeat: derived from the cv seed and the
repeat number, so every trial of every model sees exactly the same splits of a repeat."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from bench.data.images import ImageData, LoadedImages, pixel_sums, stats_of, take
from bench.errors import ConfigError, DataError, first_line
from bench.results.schema import ROWS
from bench.seeds import split_seed


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
            ignored=loaded.ignored,
        )
    try:
        train, test = holdout_split(loaded.y, test_fraction, seed)
    except ValueError as exc:  # scikit-learn's: a class of one image, a test split too small
        raise DataError(
            f"dataset '{name}': no stratified test split of {len(loaded.y)} images into "
            f"{len(loaded.classes)} classes at test_fraction {test_fraction} ({first_line(exc)}); "
            "add images to its smallest classes, or change cv.test_fraction"
        ) from None
    return ImageData(
        name,
        loaded.classes,
        take(loaded.x, train),
        loaded.y[train],
        take(loaded.x, test),
        loaded.y[test],
        official_test=False,
        train_index=train,
        test_index=test,
        skipped=loaded.skipped,
        ignored=loaded.ignored,
    )


def fold_indices(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs of stratified k-fold CV over `labels`."""
    from sklearn.model_selection import StratifiedKFold

    check_fold_count(labels, k)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def check_fold_count(labels: np.ndarray, k: int) -> None:
    """Stratified k-fold needs at least k samples of every class in the CV pool."""
    counts = np.bincount(labels) if len(labels) else np.zeros(1, dtype=np.int64)
    smallest = int(counts[counts > 0].min()) if counts.any() else 0
    if k > smallest:
        raise ConfigError(
            f"cv.folds: {k} folds but the smallest class has {smallest} training samples; "
            f"use folds <= {smallest}"
        )


def with_folds(data: ImageData, k: int, seed: int, sums: np.ndarray | None = None) -> ImageData:
    """Attach the dataset's k stratified folds and the normalization statistics of the CV pool
    and of each fold's training part. `sums`: pixel_sums of the CV pool, if already known."""
    data.folds = fold_indices(data.train_y, k, seed)
    sums = pixel_sums(data.train_x) if sums is None else sums
    pixels = data.train_x.shape[2] * data.train_x.shape[3]
    data.mean, data.std = stats_of(sums, np.arange(len(data.train_y)), pixels)
    data.fold_stats = [stats_of(sums, train, pixels) for train, _ in data.folds]
    return data


def replicates(
    name: str, loaded: LoadedImages, repeats: int, k: int, test_fraction: float, cv_seed: int
) -> list[ImageData]:
    """Repeat r's stratified test split (the official one, where the dataset has it) and its k
    folds, for r = 0 .. repeats-1: each repeat draws its own from split_seed(cv_seed, r)."""
    # one pass over the images (the cache's, made while decoding) serves every repeat and fold
    sums = pixel_sums(loaded.x) if loaded.sums is None else loaded.sums
    out = []
    for repeat in range(repeats):
        seed = split_seed(cv_seed, repeat)
        data = prepare_dataset(name, loaded, test_fraction, seed)
        pool = sums if data.train_index is None else sums[data.train_index]
        data.repeat = repeat
        out.append(with_folds(data, k, seed, pool))
    return out


def split_rows(run_id: str, data: Any) -> list[dict[str, Any]]:
    """Which fold validates on each CV-pool sample of a repeat, and its test rows: saved with
    the run."""
    fold_of = [-1] * len(data.train_y)
    for k, (_, val) in enumerate(data.folds):
        for i in val:
            fold_of[int(i)] = k
    source_train = data.train_index if data.train_index is not None else range(len(data.train_y))
    source_test = data.test_index if data.test_index is not None else [-1] * len(data.test_y)
    ids = {"run_id": run_id, "dataset": data.name, "repeat": data.repeat}
    split_row = ROWS["splits"]
    rows = [
        split_row(
            **ids, role="train", sample=i, source_index=int(src), label=int(y), fold=fold_of[i]
        )
        for i, (src, y) in enumerate(zip(source_train, data.train_y, strict=True))
    ]
    rows += [
        split_row(**ids, role="test", sample=i, source_index=int(src), label=int(y), fold=-1)
        for i, (src, y) in enumerate(zip(source_test, data.test_y, strict=True))
    ]
    return rows


def fingerprint(rows: list[dict[str, Any]], repeats: list[Any], test_fraction: float) -> str:
    """What makes two runs' scores on a dataset comparable: the same samples in every repeat's
    folds and test split (with their labels), the same image size and channels, the same test
    fraction and number of repeats. 16 hex digits of a SHA-256."""
    first = repeats[0]
    digest = hashlib.sha256()
    digest.update(f"{first.image_size}x{first.channels}|{test_fraction}|{len(repeats)}".encode())
    for row in rows:
        fields = (row["repeat"], row["role"], row["sample"], row["source_index"], row["label"])
        digest.update(f"|{fields}:{row['fold']}".encode())
    return digest.hexdigest()[:16]
