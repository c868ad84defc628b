"""torchvision backbones: pretrained weights (ImageNet via torchvision's weights API, or a
local state dict), fine-tuning strategies and an optional hidden head, sized to the dataset."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from bench.errors import DataError, first_line
from bench.models.contract import FineTuning, Preprocessing


def imagenet_weights(arch: str):
    """torchvision's default ImageNet weights enum member for `arch` (carries its transforms)."""
    return torchvision.models.get_model_weights(arch).DEFAULT


def pretrained_preprocessing(arch: str) -> Preprocessing:
    """The resize, crop and mean/std the pretrained weights expect. A local state dict is taken
    to be ImageNet-trained, as torchvision's are."""
    transforms = imagenet_weights(arch).transforms()
    return Preprocessing(
        resize=int(transforms.resize_size[0]),
        crop=int(transforms.crop_size[0]),
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
    )


def build_torchvision(
    arch: str,
    num_classes: int,
    *,
    weights: str,
    strategy: str,
    head_hidden: int,
    head_dropout: float,
    backbone_lr_scale: float,
    unfreeze_after: int,
) -> tuple[nn.Module, FineTuning]:
    """The backbone with a new head, and how to fine-tune it (the hyperparameters' defaults
    are declared once, in the registry)."""
    pretrained = strategy != "from_scratch" and weights not in (None, "none")
    model = torchvision.models.get_model(arch, weights=None)
    if pretrained:
        state = _matching(model, _state_dict(arch, weights), arch, weights)
        model.load_state_dict(state, strict=False)
    if strategy == "head_only":
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    head = _replace_head(model, num_classes, int(head_hidden), float(head_dropout))
    tuning = FineTuning(
        head=head,
        backbone_lr_scale=float(backbone_lr_scale),
        unfreeze_after=int(unfreeze_after) if strategy == "head_only" else 0,
        preprocessing=pretrained_preprocessing(arch) if pretrained else None,
    )
    return model, tuning


def _state_dict(arch: str, weights: str) -> dict[str, torch.Tensor]:
    if weights == "imagenet":
        enum = imagenet_weights(arch)
        try:
            return enum.get_state_dict(progress=False)
        except Exception as exc:  # URLError offline, HTTP errors, a truncated download
            name = os.path.basename(urlparse(enum.url).path)
            folder = Path(torch.hub.get_dir()) / "checkpoints"
            raise DataError(
                f"model '{arch}': ImageNet weights are not cached and could not be downloaded "
                f"({type(exc).__name__}); put {name} in {folder} (set TORCH_HOME to move it) "
                f"or use weights: none"
            ) from None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise DataError(f"model '{arch}': weights file {path} not found; fix weights: or use none")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, truncated, or pickled objects beyond tensors
        raise DataError(
            f"model '{arch}': weights file {path} cannot be read as tensors ({first_line(exc)}); "
            "save the state_dict with torch.save(model.state_dict(), path), or use weights: none"
        ) from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not state:
        raise DataError(
            f"model '{arch}': weights file {path} holds no state_dict; save one with "
            "torch.save(model.state_dict(), path)"
        )
    return state


def _matching(
    model: nn.Module, state: dict[str, torch.Tensor], arch: str, weights: str
) -> dict[str, torch.Tensor]:
    """The entries that fit the model (a checkpoint's old head of another size is dropped).
    Weights that fit fewer than half of the model's tensors are for another architecture:
    refused, where loading them would leave a model initialized at random without a word."""
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if 2 * len(fitting) < len(own):
        raise DataError(
            f"model '{arch}': weights {weights}: {len(fitting)} of the model's {len(own)} "
            "tensors match them by name and shape (weights of another architecture?); pass "
            f"weights of {arch}, or use weights: none"
        )
    return fitting


def _replace_head(model: nn.Module, num_classes: int, hidden: int, dropout: float) -> str:
    """Swap the network's last Linear layer for a new head sized to the dataset; its name."""
    name, last = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    if hidden > 0:
        head: nn.Module = nn.Sequential(
            nn.Linear(last.in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
    else:
        head = nn.Linear(last.in_features, num_classes)
    parent_name, _, attribute = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attribute, head)
    return name
