"""A dataset with known faults, to measure the data audit (bench.audit): scikit-learn's digits
written as a class-per-folder PNG tree at 32 px, with a share of the images filed under a wrong
class and a share copied, shifted by a pixel and noised, beside their originals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class PlantedDigits:
    root: Path
    flipped: set[str]  # files (relative to root) filed under a wrong class
    copies: dict[str, str]  # near-duplicate file -> its original


def write_planted_digits(
    root: Path, flip: float = 0.03, duplicate: float = 0.03, side: int = 32, seed: int = 0
) -> PlantedDigits:
    """root/<digit>/<i>.png for the 1,797 digits; `flip` of them in another digit's folder,
    and `duplicate` of them copied (1-pixel shift each way at most, Gaussian noise of 6 grey
    levels) as root/<digit>/<i>-copy.png. The two sets do not overlap."""
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = torch.from_numpy(digits.images[:, None] * (255 / 16)).float()
    images = F.interpolate(pixels, size=(side, side), mode="bilinear").round().clamp(0, 255)
    images = images[:, 0].numpy().astype(np.uint8)
    rng = np.random.default_rng(seed)
    count = len(images)
    chosen = rng.permutation(count)
    flipped = chosen[: round(flip * count)]
    copied = chosen[len(flipped) : len(flipped) + round(duplicate * count)]
    labels = digits.target.copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    planted = PlantedDigits(Path(root), set(), {})
    for digit in range(10):
        (Path(root) / str(digit)).mkdir(parents=True, exist_ok=True)
    wrong = set(flipped.tolist())
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = f"{label}/{i:04d}.png"
        Image.fromarray(image).save(Path(root) / name)
        if i in wrong:
            planted.flipped.add(name)
    for i in copied:
        dy, dx = rng.integers(-1, 2, 2)
        noisy = np.roll(images[i].astype(np.float64), (dy, dx), axis=(0, 1))
        noisy = np.clip(noisy + rng.normal(0, 6, noisy.shape), 0, 255).round().astype(np.uint8)
        copy = f"{labels[i]}/{i:04d}-copy.png"
        Image.fromarray(noisy).save(Path(root) / copy)
        planted.copies[copy] = f"{labels[i]}/{i:04d}.png"
    return planted
