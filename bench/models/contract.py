"""The contract between the model registry and the training loop: what `create_model`
returns. Torch-free, so the registry and the config can name it without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Preprocessing:
    """What pretrained weights expect: resize to `resize`, centre-crop `crop`, normalize."""

    resize: int
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class FineTuning:
    """How the training loop treats a built model."""

    head: str | None = None  # name of the head's submodule: it learns at the full rate
    backbone_lr_scale: float = 1.0  # everything outside the head learns at lr x this
    unfreeze_after: int = 0  # a frozen backbone trains from epoch unfreeze_after + 1; 0: never
    preprocessing: Preprocessing | None = None  # the pretrained weights'; None: the data's own


class BuiltModel(NamedTuple):
    module: Any  # a torch.nn.Module (the registry imports no torch)
    tuning: FineTuning = FineTuning()
