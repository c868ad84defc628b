"""What a model learns with: the optimizer and learning-rate schedule named by the settings
(both built from their declarations in bench/hparams.py), the loss, and the fine-tuning
description's head, backbone rate and unfreezing."""

from __future__ import annotations

import inspect
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


# Elements per slice: 16 MB of float32, so the update's temporaries stay that small. Larger
# than a large-image trial's own-pages threshold (bench/train/memory.py), each goes back to
# the system when freed: 4 MB ones came from the heap and left the 6,000-image probe's trial
# 28 MB larger. Faster too: a step over the 224 px MLP's 77 MB layer took 64 ms in 5 slices,
# 110 ms whole (one thread), each slice staying in the CPU's cache between the passes.
ADAM_SLICE = 1 << 22


class _SlicedUpdate:
    """torch's Adam, stepping each large CPU parameter a slice at a time.

    Its update allocates temporaries the size of the tensor it steps (the square root of the
    second moment and its scaled copy; the decayed gradient with weight decay): for the MLP's
    first layer at 224 px, 2-3 x 77 MB more at every step, on a trial process of ~1 GB. Stepped
    as 16 MB slices (views: the state stays whole), the arithmetic is the same element by
    element, so the result is the same to the bit (tests/train/test_optim.py); the step count
    advances once. GPU, foreach, fused and capturable updates are left whole (foreach's
    temporaries span the whole list anyway)."""

    def _init_group(self, group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps):
        has_complex = super()._init_group(
            group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps
        )
        whole = group["foreach"] or group["fused"] or group["capturable"]
        if whole or group["differentiable"] or has_complex:
            return has_complex
        if all(param.numel() <= ADAM_SLICE for param in params):
            return has_complex  # nothing to slice: no cost to small models' many short steps
        lists = [params, grads, exp_avgs, exp_avg_sqs]
        lists += [max_exp_avg_sqs] if group["amsgrad"] else []
        sliced: list[list[torch.Tensor]] = [[] for _ in lists]
        sliced_steps = []
        for i, param in enumerate(params):
            tensors = [column[i] for column in lists]  # the parameter, its grad, its state
            if not _sliceable(param, tensors):
                parts = [[t] for t in tensors]
            else:
                parts = [t.view(-1).split(ADAM_SLICE) for t in tensors]
            for out, pieces in zip(sliced, parts, strict=True):
                out.extend(pieces)
            # Each slice advances its own step; only the first is the state's own counter.
            sliced_steps += [steps[i]] + [steps[i].clone() for _ in parts[0][1:]]
        for original, pieces in zip(lists, sliced, strict=True):
            original[:] = pieces
        steps[:] = sliced_steps
        return has_complex


def _sliceable(param: torch.Tensor, tensors: list[torch.Tensor]) -> bool:
    return (
        param.device.type == "cpu"
        and param.numel() > ADAM_SLICE
        and all(t.is_contiguous() for t in tensors)
    )


class _Eager:
    """A torch optimizer that never loads torch._dynamo, the compiler's front end.

    torch wraps an optimizer's `step` to break a compiled graph around it, and `zero_grad`,
    `add_param_group`, `state_dict` and `load_state_dict` to keep the compiler out of them.
    Each wrapper imports torch._dynamo (and sympy with it) on its first call: 80 MB of
    private memory in every trial process that only runs eagerly (162 MB resident), on a
    224 px trial of about 0.9 GB. bench compiles nothing, so these call the functions under
    the wrappers (functools.wraps keeps each as `__wrapped__`): the same code, the same
    result to the bit. A torch whose method is not wrapped gets its own method called."""

    def step(self, closure=None):
        # What the wrapper does besides the graph breaks: no autograd unless differentiable.
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return _unwrapped(super().step)(self, closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _unwrapped(super().zero_grad)(self, set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _unwrapped(super().add_param_group)(self, param_group)

    def state_dict(self) -> dict[str, Any]:
        return _unwrapped(super().state_dict)(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _unwrapped(super().load_state_dict)(self, state_dict)


def _unwrapped(method: Callable) -> Callable:
    """The plain function under all of a bound method's decorators, called with the optimizer
    as its first argument. All: once a plain torch optimizer of the class is built, torch
    wraps its `step` again, for step hooks; those run in this class's own `step`."""
    return inspect.unwrap(method.__func__)


class SlicedAdam(_SlicedUpdate, _Eager, torch.optim.Adam):
    __doc__ = _SlicedUpdate.__doc__


if issubclass(torch.optim.AdamW, torch.optim.Adam):  # torch 2.7+: Adam's _init_group

    class SlicedAdamW(_SlicedUpdate, _Eager, torch.optim.AdamW):
        __doc__ = _SlicedUpdate.__doc__

else:  # torch 2.4-2.6: AdamW's own _init_group, of another signature, is left as it is

    class SlicedAdamW(_Eager, torch.optim.AdamW):
        """torch's AdamW, whole (before torch 2.7 it is not an Adam to slice)."""


class EagerSGD(_Eager, torch.optim.SGD):
    """torch's SGD (with momentum and Nesterov), without loading the compiler."""


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
