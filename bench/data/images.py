"""Image sets as trials see them: uint8 NCHW images (views of the image cache, bench.data.cache,
or arrays in memory), labels, and each repeat's test split and folds as index arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.data.rows import ImageRows

# uint8 (N, C, H, W): an array in memory, or rows of the image cache read on demand
Images = np.ndarray | ImageRows


def take(images: Images, index: np.ndarray) -> Images:
    """The images `index` selects: a view for cache rows (no pixels copied), else a copy."""
    return images.take(index) if isinstance(images, ImageRows) else images[index]


@dataclass
class LoadedImages:
    """What a loader returns: the training images and, when the dataset has one, its test split."""

    classes: list[str]
    x: Images  # uint8 (N, C, H, W)
    y: np.ndarray  # int64 (N,)
    test_x: Images | None = None
    test_y: np.ndarray | None = None
    # pixel_sums of x, where the cache already has them (no second pass over the images)
    sums: np.ndarray | None = None
    # Files left out with on_bad_image: skip, each with the reason.
    skipped: list[str] = field(default_factory=list)
    # Files that are not images (no image suffix, hidden), left out as torchvision does.
    ignored: list[str] = field(default_factory=list)


@dataclass
class ImageData:
    """A dataset ready for benchmarking: a training pool (folds come from it) and a test split."""

    name: str
    classes: list[str]
    train_x: Images
    train_y: np.ndarray
    test_x: Images
    test_y: np.ndarray
    official_test: bool
    # Indices into the loader's pool when the test split was held out by bench (else None).
    train_index: np.ndarray | None = None
    test_index: np.ndarray | None = None
    # (train, validation) index pairs into the CV pool, shared by every trial and model.
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    # Per-channel pixel mean/std on the 0..1 scale, for input normalization: of the whole CV
    # pool (what the refit trains on), and of each fold's training part (what that fold's
    # model trains on: its validation images never shape its inputs).
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    fold_stats: list[tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    repeat: int = 0  # the replicate these splits belong to
    # Hash of the dataset's splits (every repeat) and preprocessing: see splits.fingerprint.
    fingerprint: str = ""

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
    return stats_of(pixel_sums(images), np.arange(len(images)), images.shape[2] * images.shape[3])


def pixel_sums(images: Images) -> np.ndarray:
    """(N, 2, C) per image and channel: the sum of its pixels and of their squares (0..255
    scale), exact in float64. Any subset's statistics then cost a sum over its rows: each
    fold's own normalization needs no second pass over the images. A few images at a time,
    so the float64 copies stay near 32 MB (2,048 images at 224 px would be 2.5 GB)."""
    per_image = 8 * int(np.prod(images.shape[1:]))
    chunk = int(np.clip((32 << 20) // per_image, 1, 2048))
    out = np.empty((len(images), 2, images.shape[1]), dtype=np.float64)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].astype(np.float64)
        out[start : start + chunk, 0] = block.sum(axis=(2, 3))
        out[start : start + chunk, 1] = np.square(block).sum(axis=(2, 3))
    return out


def stats_of(
    sums: np.ndarray, index: np.ndarray, pixels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (0..1 scale) of the images `index` selects from pixel_sums."""
    count = len(index) * pixels
    total = sums[index].sum(axis=0)
    mean = total[0] / count
    var = np.maximum(total[1] / count - mean**2, 0.0)
    std = np.maximum(np.sqrt(var) / 255.0, 1e-3)
    return tuple(float(m) for m in mean / 255.0), tuple(float(s) for s in std)


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
