"""Mixed precision and memory format: what `auto` means for one model on one device."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from bench.train.settings import TrainSettings


@dataclass
class Acceleration:
    """Mixed precision and memory format for one model on one device."""

    device_type: str = "cpu"
    dtype: torch.dtype | None = None  # autocast dtype; None: float32
    channels_last: bool = False
    scaler: torch.amp.GradScaler | None = None  # float16 only: bf16 needs no loss scaling

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x


_PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def accelerate(model: nn.Module, settings: TrainSettings, device: torch.device) -> Acceleration:
    """Resolve `auto`: on CUDA, bf16 autocast (fp16 with loss scaling where the GPU has no
    bf16) and channels_last for convolutional models; on a CPU, plain float32. The model is
    converted to channels_last in place when that is chosen."""
    cuda = device.type == "cuda"
    if settings.precision == "auto":
        dtype = None
        if cuda:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = _PRECISIONS[settings.precision]
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())
    channels_last = convolutional and (
        settings.channels_last == "on" or (settings.channels_last == "auto" and cuda)
    )
    if channels_last:
        model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    return Acceleration(device.type, dtype, channels_last, scaler)
