"""Training-time augmentation on whole batches of tensors (no Ray, no PIL).

Everything runs on the batch's own device, so on a GPU the augmentation happens there next to
data that never leaves it. Geometric changes (flip aside) are folded into one affine matrix
per image and applied with a single `grid_sample`. Only training batches pass through here:
validation and test images go straight through the InputAdapter."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from bench.train.settings import AugmentSettings

# Random erasing's rectangle, as in torchvision.transforms.RandomErasing.
_ERASE_AREA = (0.02, 0.33)
_ERASE_LOG_RATIO = (math.log(0.3), math.log(3.3))
_CROP_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))
_LUMA = (0.299, 0.587, 0.114)


class Augmenter:
    """Draws every random choice from its own seeded generators, so a fold's augmentation is
    reproducible and independent of the model's initialization."""

    def __init__(self, settings: AugmentSettings, seed: int, device: torch.device):
        self.settings = settings
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)  # per-batch scalars (mixup's lambda, the choice)

    def get_state(self) -> dict:
        """Both generators' states, for a checkpoint that torch.load(weights_only=True) reads
        (NumPy's 128-bit integers travel as text)."""
        bits = self.rng.bit_generator.state
        numpy_state = [
            bits["bit_generator"],
            str(bits["state"]["state"]),
            str(bits["state"]["inc"]),
        ]
        return {
            "torch": self.generator.get_state(),
            "numpy": numpy_state + [bits["has_uint32"], bits["uinteger"]],
        }

    def set_state(self, state: dict) -> None:
        self.generator.set_state(state["torch"])
        kind, value, inc, has_uint32, uinteger = state["numpy"]
        self.rng.bit_generator.state = {
            "bit_generator": kind,
            "state": {"state": int(value), "inc": int(inc)},
            "has_uint32": has_uint32,
            "uinteger": uinteger,
        }

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Geometric and colour changes of float images in [0, 1] (N, C, H, W)."""
        s = self.settings
        if s.hflip:
            flip = self._uniform(len(x), 0.0, 1.0) < s.hflip
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if s.geometric:
            grid = F.affine_grid(self._affine(len(x), x.device), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if s.brightness:
            x = (x * self._factor(len(x), s.brightness)).clamp_(0.0, 1.0)
        if s.contrast:
            luma = _luma(x).mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - luma) * self._factor(len(x), s.contrast) + luma).clamp_(0.0, 1.0)
        return x

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """Random erasing on normalized images: the rectangle becomes 0, the dataset mean."""
        if not self.settings.erasing:
            return x
        n, _, height, width = x.shape
        area = self._uniform(n, *_ERASE_AREA) * height * width
        ratio = torch.exp(self._uniform(n, *_ERASE_LOG_RATIO))
        h = torch.sqrt(area * ratio).clamp(1, height).floor()
        w = torch.sqrt(area / ratio).clamp(1, width).floor()
        top = (self._uniform(n, 0.0, 1.0) * (height - h + 1)).floor()
        left = (self._uniform(n, 0.0, 1.0) * (width - w + 1)).floor()
        rows = torch.arange(height, device=x.device).view(1, -1, 1)
        cols = torch.arange(width, device=x.device).view(1, 1, -1)
        chosen = self._uniform(n, 0.0, 1.0) < self.settings.erasing
        inside = (
            (rows >= top.view(-1, 1, 1))
            & (rows < (top + h).view(-1, 1, 1))
            & (cols >= left.view(-1, 1, 1))
            & (cols < (left + w).view(-1, 1, 1))
            & chosen.view(-1, 1, 1)
        )
        return x.masked_fill(inside.unsqueeze(1), 0.0)

    def mix(
        self, x: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Mixup or cutmix (one of them per batch when both are on): the mixed batch, the
        partner labels and the weight `lam` of the original labels (1.0: nothing mixed)."""
        s = self.settings
        kinds = [k for k, alpha in (("mixup", s.mixup), ("cutmix", s.cutmix)) if alpha > 0]
        if not kinds or len(x) < 2:
            return x, labels, 1.0
        kind = kinds[int(self.rng.integers(len(kinds)))]
        alpha = getattr(s, kind)
        lam = float(self.rng.beta(alpha, alpha))
        perm = torch.randperm(len(x), generator=self.generator, device=x.device)
        if kind == "mixup":
            return lam * x + (1.0 - lam) * x[perm], labels[perm], lam
        height, width = x.shape[-2:]
        cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
        cy, cx = int(self.rng.integers(height)), int(self.rng.integers(width))
        top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        x = x.clone()
        x[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
        pasted = (bottom - top) * (right - left) / (height * width)
        return x, labels[perm], 1.0 - pasted

    # -- random draws -------------------------------------------------------------------------

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        device = self.generator.device
        return torch.empty(n, device=device).uniform_(low, high, generator=self.generator)

    def _factor(self, n: int, strength: float) -> torch.Tensor:
        return self._uniform(n, max(0.0, 1.0 - strength), 1.0 + strength).view(-1, 1, 1, 1)

    def _affine(self, n: int, device: torch.device) -> torch.Tensor:
        """(N, 2, 3) matrices mapping output to input coordinates in [-1, 1]: rotate and zoom,
        then translate, then look through a random crop window."""
        s = self.settings
        angle = torch.deg2rad(self._uniform(n, -s.rotation, s.rotation))
        scale = 1.0 / self._uniform(n, 1.0 - s.zoom, 1.0 + s.zoom).clamp_min(1e-3)
        shift_x = self._uniform(n, -s.translate, s.translate) * 2
        shift_y = self._uniform(n, -s.translate, s.translate) * 2
        area = self._uniform(n, s.crop_scale, 1.0)
        # The aspect ratio varies only when cropping: at full area it would squash the image.
        ratio = torch.exp(self._uniform(n, *_CROP_LOG_RATIO)) if s.crop_scale < 1 else area
        crop_w = torch.sqrt(area * ratio).clamp(max=1.0)
        crop_h = torch.sqrt(area / ratio).clamp(max=1.0)
        center_x = (self._uniform(n, -1.0, 1.0)) * (1 - crop_w)
        center_y = (self._uniform(n, -1.0, 1.0)) * (1 - crop_h)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack(
            [
                torch.stack([crop_w * cos, -crop_w * sin, crop_w * shift_x + center_x], dim=1),
                torch.stack([crop_h * sin, crop_h * cos, crop_h * shift_y + center_y], dim=1),
            ],
            dim=1,
        )
        return theta.to(device)


def _luma(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    weights = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)
