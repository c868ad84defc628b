"""What a model learns with: the optimizer and learning-rate schedule named by the settings
(both built from their declarations in bench/hparams.py), the loss, and the fine-tuning
description's head, backbone rate and unfreezing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.hparams import OPTIMIZERS, SCHEDULES, resolve
from bench.models.contract import FineTuning
from bench.train.settings import TrainSettings

Identity = Callable[[Any], Any]


def build_optimizer(params: Any, settings: TrainSettings) -> torch.optim.Optimizer:
    """The declared optimizer named by `settings.optimizer`, over `params` (tensors or groups)."""
    entry = OPTIMIZERS[settings.optimizer]
    options = {name: getattr(settings, name) for name in entry.options}
    return resolve(entry.factory)(
        params, lr=settings.lr, weight_decay=settings.weight_decay, **options
    )


def make_optimizer(
    model: nn.Module, settings: TrainSettings, tuning: FineTuning
) -> torch.optim.Optimizer:
    """Over the trainable parameters; a pretrained backbone may learn at a scaled rate. A
    backbone that unfreezes later is in the optimizer from the start: without gradients its
    parameters are skipped (not even weight decay touches them) until then."""
    later = tuning.unfreeze_after > 0
    trainable = [p for p in model.parameters() if p.requires_grad or later]
    if tuning.head is None or tuning.backbone_lr_scale == 1.0:
        return build_optimizer(trainable, settings)
    head_ids = {id(p) for p in unwrap(model).get_submodule(tuning.head).parameters()}
    scaled = settings.lr * tuning.backbone_lr_scale
    groups = [
        {"params": [p for p in trainable if id(p) not in head_ids], "lr": scaled},
        {"params": [p for p in trainable if id(p) in head_ids], "lr": settings.lr},
    ]
    return build_optimizer([g for g in groups if g["params"]], settings)


def make_schedule(
    optimizer: torch.optim.Optimizer, settings: TrainSettings, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The declared per-batch schedule named by `settings.schedule`, with optional linear
    warmup from lr/10."""
    total = max(1, settings.epochs * steps_per_epoch)
    warmup = settings.warmup_epochs * steps_per_epoch
    entry = SCHEDULES[settings.schedule]
    if entry.factory is not None:
        return resolve(entry.factory)(optimizer, total, warmup)
    shape = entry.shape

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        return shape(min(1.0, (step - warmup) / max(1.0, total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def one_cycle(
    optimizer: torch.optim.Optimizer, total: int, warmup: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """OneCycleLR peaking at each group's own rate (keeps a backbone's scale); warmup, when
    given, sets the rising share."""
    pct = min(0.5, max(0.05, warmup / total)) if warmup else 0.3
    peaks = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peaks, total_steps=total, pct_start=pct
    )


def make_loss(settings: TrainSettings, labels: np.ndarray, num_classes: int, device) -> nn.Module:
    """Cross-entropy; with class_weight balanced, each class weighs n / (classes x count)."""
    weight = None
    if settings.class_weight == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
        weight = torch.tensor(
            len(labels) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32, device=device
        )
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=settings.label_smoothing)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def unfreeze_if_due(
    model: nn.Module, epoch: int, tuning: FineTuning, wrap_model: Identity
) -> nn.Module:
    """From epoch `tuning.unfreeze_after + 1` on, a frozen backbone trains too. A DDP wrapper
    registers only the parameters that needed gradients when it was built, so it is rebuilt."""
    inner = unwrap(model)
    after = tuning.unfreeze_after
    if not after or epoch <= after or all(p.requires_grad for p in inner.parameters()):
        return model
    for parameter in inner.parameters():
        parameter.requires_grad_(True)
    return wrap_model(inner) if inner is not model else model
