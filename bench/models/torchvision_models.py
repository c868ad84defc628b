"""torchvision backbones with the classifier head sized to the dataset."""

from __future__ import annotations

import torchvision
from torch import nn


def build_torchvision(arch: str, num_classes: int) -> nn.Module:
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
