"""Write datasets in their published on-disk formats: MNIST's IDX files, CIFAR-10's python
batches, class-per-folder PNG trees, and torchvision's cached weight files.

`bench perf` writes its input-pipeline tree with these; the tests exercise the real loaders
(and the real weights API) on what they write, since nothing can be downloaded there."""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """An IDX3 file of uint8 images (N, 28, 28), as MNIST's train-images-idx3-ubyte."""
    n, height, width = images.shape
    with open(path, "wb") as fh:
        fh.write(struct.pack(">IIII", 0x0803, n, height, width))
        fh.write(images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    with open(path, "wb") as fh:
        fh.write(struct.pack(">II", 0x0801, len(labels)))
        fh.write(labels.astype(np.uint8).tobytes())


def write_mnist(root: Path, train: int = 30, test: int = 10, seed: int = 0) -> Path:
    """Random 28x28 digits under root/MNIST/raw, labels cycling 0..9; returns root."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("t10k", test)):
        write_idx_images(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx_labels(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return Path(root)


def write_cifar10(
    root: Path, per_batch: int = 6, test: int = 4, seed: int = 1, classes: int = 10
) -> Path:
    """Five training batches and a test batch of random 32x32 RGB rows, labels cycling over
    the first `classes` classes, plus batches.meta (all ten names), under
    root/cifar-10-batches-py; returns that folder."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def batch(n: int, offset: int) -> dict[bytes, object]:
        return {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [(offset + i) % classes for i in range(n)],
        }

    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(per_batch, i * per_batch), fh)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch(test, 0), fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": list(CIFAR10_CLASSES), b"num_vis": 3072}, fh)
    return folder


def write_image_tree(
    root: Path,
    classes: Sequence[str] = ("cat", "dog"),
    per_class: int = 4,
    size: int = 10,
    seed: int = 2,
) -> Path:
    """root/<class>/<i>.png, random RGB pixels (each class a little brighter than the last,
    so there is something to learn); returns root."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256 - 8 * len(classes), (size, size, 3)) + 8 * c
            Image.fromarray(pixels.astype(np.uint8)).save(Path(root) / name / f"{i}.png")
    return Path(root)


def write_imagenet_weights(arch: str, seed: int = 0) -> Path:
    """A freshly initialized `arch` state dict saved where torchvision's weights API caches
    the ImageNet download ($TORCH_HOME/hub/checkpoints/<file of the weights' URL>)."""
    import torch
    import torchvision

    from bench.models.torchvision_models import imagenet_weights

    enum = imagenet_weights(arch)
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(enum.url).path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        model = torchvision.models.get_model(arch, weights=None)
        torch.save(model.state_dict(), path.with_suffix(".partial"))
        path.with_suffix(".partial").rename(path)
    return path
