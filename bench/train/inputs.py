"""How stored images reach a model: uint8 batches gathered from the image cache's pages (or an
array in memory; on the GPU when they fit), and the InputAdapter that scales, resizes or pads,
augments and normalizes them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from bench.data.rows import ImageRows
from bench.models.contract import Preprocessing
from bench.train.augment import Augmenter


@dataclass(frozen=True)
class InputAdapter:
    """Turns stored uint8 NCHW batches into what a model takes: scaled to [0, 1], brought to
    the model's side, (training batches only) augmented, normalized, and grayscale repeated
    for RGB backbones."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Pretrained weights' own preprocessing: resize to this side, then centre-crop `size`.
    resize: int = 0
    # "resize" stretches every image to `size`; "pad" centres smaller ones on a black canvas.
    fit: str = "resize"

    def __call__(self, images: torch.Tensor, augment: Augmenter | None = None) -> torch.Tensor:
        x = self.unit(images)
        if augment is not None:
            x = augment.images(x)
        x = self.normalize(x)
        return augment.erase(x) if augment is not None else x

    def unit(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] at the model's side, still in the data's own channels."""
        x = images.float().div_(255.0)
        height, width = x.shape[-2:]
        if self.fit == "pad" and height <= self.size and width <= self.size:
            top, left = (self.size - height) // 2, (self.size - width) // 2
            return F.pad(x, (left, self.size - width - left, top, self.size - height - top))
        if self.resize:
            x = _resize(x, self.resize)
            top = (self.resize - self.size) // 2
            return x[..., top : top + self.size, top : top + self.size]
        return _resize(x, self.size)

    @classmethod
    def pretrained(cls, channels: int, preprocessing: Preprocessing, fit: str) -> InputAdapter:
        """The pretrained weights' own resize, centre crop and mean/std."""
        return cls(
            channels,
            preprocessing.crop,
            preprocessing.mean,
            preprocessing.std,
            resize=preprocessing.resize,
            fit=fit,
        )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """In place where it can be (x is the adapter's own float copy): a 224 px batch is
        ~40 MB a copy."""
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        if len(self.mean) == self.channels and x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)  # grayscale into RGB-normalized weights
            x = (x - mean) / std  # an expanded view cannot be written to
        else:
            x = x.sub_(mean).div_(std)
        return x.expand(-1, self.channels, -1, -1) if x.shape[1] != self.channels else x


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    if x.shape[-2:] == (side, side):
        return x
    shrinking = x.shape[-1] > side or x.shape[-2] > side
    return F.interpolate(
        x, size=(side, side), mode="bilinear", align_corners=False, antialias=shrinking
    )


# Datasets up to this size are copied to the GPU once per trial (uint8): batches are then
# sliced on the device, with no host-to-device copy per step.
GPU_RESIDENT_BYTES = 2 * 1024**3


def as_tensor(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array
    with warnings.catch_warnings():
        # Arrays from Ray's object store are read-only; we never write to them.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def resident(images: Any, device: torch.device) -> Any:
    """The images on `device` when it is a GPU and they fit the budget; else as they are.
    Cache rows are copied over a slice at a time, so the host never holds them all."""
    if device.type != "cuda" or images.nbytes > GPU_RESIDENT_BYTES:
        return images
    if not isinstance(images, ImageRows):
        return as_tensor(images).to(device)
    out = torch.empty(images.shape, dtype=torch.uint8, device=device)
    step = max(1, (256 * 1024**2) // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, len(images), step):
        out[start : start + step] = torch.from_numpy(images[start : start + step]).to(device)
    return out


def predict_batch_size(images: Any, largest: int = 512) -> int:
    """Images per inference batch: up to `largest`, fewer for large images, so a batch's float
    copies stay near 64 MB (512 images at 224 px would take ~300 MB per copy)."""
    per_image = 4 * int(np.prod(images.shape[1:]))
    return int(max(16, min(largest, (64 * 1024**2) // max(1, per_image))))


class IndexedImages(Dataset):
    """A view of images (rows of the image cache, a host array, or a tensor already on the
    GPU) and their labels through an index, fetched a whole batch at a time."""

    def __init__(self, images: Any, labels: np.ndarray, index: np.ndarray):
        index = np.asarray(index, dtype=np.int64)
        rows = index
        if isinstance(images, ImageRows):  # straight into the cache's pages: nothing copied
            images, rows = images.array, images.index[index]
        self.images = as_tensor(images)
        device = self.images.device
        labels = np.asarray(labels, dtype=np.int64)[index]
        self.labels = torch.from_numpy(labels).to(device)
        self.rows = torch.from_numpy(rows).to(device)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[self.rows[i]], self.labels[i]

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        at = torch.as_tensor(positions, device=self.rows.device)
        return self.images[self.rows[at]], self.labels[at]


def _whole_batch(batch: Any) -> Any:
    """collate_fn for IndexedImages, whose __getitems__ already returns stacked tensors."""
    return batch


def make_loader(
    data: IndexedImages,
    batch_size: int,
    shuffle: bool,
    seed: int,
    workers: int = 0,
    pin: bool = False,
) -> DataLoader:
    """Batches in the order the seeded generator draws (the same with or without workers).
    With `workers`, batches are gathered in that many processes, two batches ahead each;
    host batches bound for a GPU come in pinned memory, so their copy overlaps compute."""
    generator = torch.Generator().manual_seed(seed)
    on_host = data.images.device.type == "cpu"
    workers = workers if on_host else 0  # batches sliced on the GPU need no helpers
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=_whole_batch,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        persistent_workers=workers > 0,
        pin_memory=pin and on_host,
    )
