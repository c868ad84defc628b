"""How stored images reach a model: uint8 batches indexed in memory (on the GPU when they
fit), and the InputAdapter that scales, resizes or pads, augments and normalizes them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

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
        if len(self.mean) == self.channels and x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)  # grayscale into RGB-normalized weights
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
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


def resident(images: np.ndarray, device: torch.device) -> np.ndarray | torch.Tensor:
    """The images on `device` when it is a GPU and they fit the budget; else as they are."""
    if device.type == "cuda" and images.nbytes <= GPU_RESIDENT_BYTES:
        return as_tensor(images).to(device)
    return images


class IndexedImages(Dataset):
    """A view of in-memory images (a host array, or a tensor already on the GPU) through an
    index, fetched a whole batch at a time."""

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray, index: np.ndarray):
        self.images = as_tensor(images)
        device = self.images.device
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
        self.index = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(device)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.index[i]
        return self.images[j], self.labels[j]

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.index[torch.as_tensor(positions, device=self.index.device)]
        return self.images[rows], self.labels[rows]


def _whole_batch(batch: Any) -> Any:
    """collate_fn for IndexedImages, whose __getitems__ already returns stacked tensors."""
    return batch


def make_loader(data: IndexedImages, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=_whole_batch
    )
