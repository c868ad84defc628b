"""Each dataset's training labels read without decoding an image, for the checks run before a
run starts (bench.preflight): (labels, whether the dataset has its own test split), or None
when the files are not there yet (loading the dataset names the problem then)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.loaders import (
    CIFAR10_FILES,
    _read_cifar_batch,
    _root,
    class_folders,
    image_files,
)

Labels = tuple[np.ndarray, bool] | None


def digits_labels(options: Any) -> Labels:
    from sklearn.datasets import load_digits

    return load_digits().target.astype(np.int64), False


def mnist_labels(options: Any) -> Labels:
    raw = _root(options) / "MNIST" / "raw"
    for name in ("train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"):
        path = raw / name
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as fh:
                data = fh.read()
            # IDX: magic 2049, item count (big-endian int32), then one uint8 label each
            return np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64), True
    return None


def cifar10_labels(options: Any) -> Labels:
    folder = _root(options) / "cifar-10-batches-py"
    names = CIFAR10_FILES[:5]
    if not all((folder / name).is_file() for name in names):
        return None
    labels = [np.asarray(_read_cifar_batch(folder / n)["labels"], dtype=np.int64) for n in names]
    return np.concatenate(labels), True


def imagefolder_labels(options: Any) -> Labels:
    """One label per file with an image suffix, class folders in sorted order as the loader
    reads them; a remote tree (s3://, ...) is left to the loader."""
    if "://" in str(options.path):
        return None
    root = Path(options.path).expanduser()
    official = (root / "train").is_dir() and (root / "test").is_dir()
    pool = root / "train" if official else root
    if not pool.is_dir():
        return None
    counts = [len(image_files(pool / name)[0]) for name in class_folders(pool)]
    return np.repeat(np.arange(len(counts)), counts).astype(np.int64), official


# Dataset name -> its reader (the registry's `labels` of each dataset).
READERS = {
    "digits": digits_labels,
    "mnist": mnist_labels,
    "cifar10": cifar10_labels,
    "imagefolder": imagefolder_labels,
}
