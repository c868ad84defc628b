"""In-memory image sets: uint8 NCHW arrays, decoded once and shared by every trial."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadedImages:
    """What a loader returns: the training images and, when the dataset has one, its test split."""

    classes: list[str]
    x: np.ndarray  # uint8 (N, C, H, W)
    y: np.ndarray  # int64 (N,)
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None
    # Files left out with on_bad_image: skip, each with the reason.
    skipped: list[str] = field(default_factory=list)


@dataclass
class ImageData:
    """A dataset ready for benchmarking: a training pool (folds come from it) and a test split."""

    name: str
    classes: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    official_test: bool
    # Indices into the loader's pool when the test split was held out by bench (else None).
    train_index: np.ndarray | None = None
    test_index: np.ndarray | None = None
    # (train, validation) index pairs into the CV pool, shared by every trial and model.
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    # Per-channel pixel mean/std of the CV pool on the 0..1 scale, for input normalization.
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    skipped: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[2])


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 NCHW images, scaled to 0..1."""
    scaled = images.astype(np.float32) / 255.0
    mean = scaled.mean(axis=(0, 2, 3))
    std = np.maximum(scaled.std(axis=(0, 2, 3)), 1e-3)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def to_uint8_nchw(images: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) uint8 -> contiguous (N, C, H, W)."""
    if images.ndim == 3:
        images = images[:, None, :, :]
    else:
        images = images.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images, dtype=np.uint8)


def resize_uint8(images: np.ndarray, side: int) -> np.ndarray:
    """Bilinear resize of a uint8 NCHW batch to side x side (antialiased when shrinking)."""
    if images.shape[2] == side and images.shape[3] == side:
        return images
    import torch
    import torch.nn.functional as F

    out = []
    for chunk in np.array_split(images, max(1, len(images) // 4096)):
        t = torch.from_numpy(chunk).float()
        t = F.interpolate(t, size=(side, side), mode="bilinear", antialias=True)
        out.append(t.round().clamp(0, 255).to(torch.uint8).numpy())
    return np.concatenate(out)
