"""What the training loop is told: plain frozen dataclasses, importable without torch (the
config module derives its training parameters from them)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AugmentSettings:
    hflip: float = 0.0  # probability of a horizontal flip
    rotation: float = 0.0  # degrees, drawn from [-rotation, rotation]
    translate: float = 0.0  # shift, fraction of the side, drawn from [-translate, translate]
    zoom: float = 0.0  # scale drawn from [1 - zoom, 1 + zoom]; above 1 zooms in
    crop_scale: float = 1.0  # random resized crop: smallest area fraction kept; 1 disables
    brightness: float = 0.0  # factor drawn from [1 - brightness, 1 + brightness]
    contrast: float = 0.0  # factor drawn from [1 - contrast, 1 + contrast]
    erasing: float = 0.0  # probability of erasing one random rectangle (cutout)
    mixup: float = 0.0  # Beta(alpha, alpha) of mixup; 0 disables
    cutmix: float = 0.0  # Beta(alpha, alpha) of cutmix; 0 disables

    @property
    def active(self) -> bool:
        return self != AugmentSettings()

    @property
    def geometric(self) -> bool:
        return bool(self.rotation or self.translate or self.zoom or self.crop_scale < 1.0)


AUGMENT_DEFAULTS = {f.name: f.default for f in fields(AugmentSettings)}


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    label_smoothing: float = 0.0
    nesterov: bool = False
    schedule: str = "constant"  # constant, cosine, step, onecycle (stepped per batch)
    warmup_epochs: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 disables
    class_weight: str = "none"  # or "balanced"
    patience: int = 0  # epochs without improvement before a fold stops; 0 disables
    seed: int = 0
    augment: AugmentSettings = AugmentSettings()  # training batches only
    precision: str = "auto"  # auto (bf16/fp16 autocast on CUDA, fp32 elsewhere), fp32, bf16, fp16
    channels_last: str = "auto"  # auto (convolutional models on CUDA), on, off
