"""Input pipeline: training images per second through bench's data path versus
torchvision's ImageFolder + DataLoader, on a CIFAR-sized tree of 32x32 RGB PNGs written here.

bench decodes the tree once (threads) into its image cache, which every trial on the node maps
(one copy in the page cache); batches are gathered from it and normalized as whole tensors.
The plain pipeline decodes and transforms every image in every epoch. Section 7
(bench.perf.data) measures the same at 224 px on trees of thousands of photos."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from bench.perf.figures import Figure

SECTION = "3. input pipeline (32x32 RGB PNG tree)"
CLASSES = tuple(f"class{i}" for i in range(10))
BATCH = 64


def write_tree(root: Path, images: int) -> Path:
    from bench.testing.writers import write_image_tree

    return write_image_tree(root, CLASSES, per_class=images // len(CLASSES), size=32, seed=0)


def bench_rates(root: Path, epochs: int) -> tuple[float, float]:
    """(decode-once seconds, seconds for `epochs` passes): bench's loader, object store and
    batch path (IndexedImages -> DataLoader -> InputAdapter)."""
    from bench.config import DatasetConfig
    from bench.data.images import channel_stats
    from bench.data.loaders import load_imagefolder
    from bench.driver import shared_copy
    from bench.train.inputs import IndexedImages, InputAdapter, make_loader

    started = time.perf_counter()
    loaded = load_imagefolder(
        DatasetConfig(name="imagefolder", path=str(root), image_size=32, channels=3)
    )
    images = shared_copy(loaded.x)  # what a trial gets: the shared copy, no decoding
    mean, std = channel_stats(images)
    decoded = time.perf_counter() - started
    adapt = InputAdapter(3, 32, mean, std)
    data = IndexedImages(images, loaded.y, np.arange(len(loaded.y)))
    loader = make_loader(data, BATCH, shuffle=True, seed=0)
    started = time.perf_counter()
    for _ in range(epochs):
        for batch, _labels in loader:
            adapt(batch)
    return decoded, time.perf_counter() - started


def plain_seconds(root: Path, epochs: int, workers: int) -> float:
    """torchvision.datasets.ImageFolder + DataLoader, as its tutorials write it."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))]
    )
    dataset = datasets.ImageFolder(str(root), transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    started = time.perf_counter()
    for _ in range(epochs):
        for _batch in loader:
            pass
    return time.perf_counter() - started


def measure(images: int, epochs: int, workdir: str, echo) -> list[Figure]:
    root = Path(workdir) / "png-tree"
    echo(f"  writing {images} 32x32 PNGs ...")
    write_tree(root, images)
    count = sum(len(files) for _, _, files in os.walk(root))
    workers = min(4, os.cpu_count() or 1)
    echo(f"  {epochs} epochs through bench's data path and through ImageFolder + DataLoader ...")
    decode, bench_epochs = bench_rates(root, epochs)
    plain = plain_seconds(root, epochs, workers)
    seen = count * epochs
    first_trial = seen / (decode + bench_epochs)
    return [
        Figure(SECTION, "bench, decode once", decode, "s", f"{count} images, threads + store"),
        Figure(SECTION, "bench, first trial", first_trial, "img/s", f"decode + {epochs} epochs"),
        Figure(
            SECTION,
            "bench, later trials",
            seen / bench_epochs,
            "img/s",
            "decoded arrays shared, no reload",
        ),
        Figure(
            SECTION,
            "plain ImageFolder + DataLoader",
            seen / plain,
            "img/s",
            f"{epochs} epochs, num_workers={workers}",
        ),
        Figure(
            SECTION,
            "bench / plain",
            first_trial / (seen / plain),
            "x",
            "first trial, decode included; target >= 1.0",
        ),
    ]
