"""The training loop: pure PyTorch, no Ray import.

Cross-validation runs its folds in lockstep (every fold trains epoch e before any trains e+1),
so after each epoch there is one cross-validated score to report to a scheduler. Distributed
training plugs in through `wrap_model` / `wrap_loader` (Ray Train's prepare_* functions)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bench.seeds import AUGMENT, FOLD, LOADER, REFIT, derive_seed
from bench.train.augment import Augmenter
from bench.train.settings import TrainSettings

Identity = Callable[[Any], Any]


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


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


_OPTIMIZERS: dict[str, Callable[[Any, TrainSettings], torch.optim.Optimizer]] = {
    "adam": lambda p, s: torch.optim.Adam(p, lr=s.lr, weight_decay=s.weight_decay),
    "adamw": lambda p, s: torch.optim.AdamW(p, lr=s.lr, weight_decay=s.weight_decay),
    "sgd": lambda p, s: torch.optim.SGD(
        p, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, nesterov=s.nesterov
    ),
}


def make_schedule(
    optimizer: torch.optim.Optimizer, settings: TrainSettings, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-batch learning-rate schedule, with optional linear warmup."""
    total = max(1, settings.epochs * steps_per_epoch)
    warmup = settings.warmup_epochs * steps_per_epoch
    if settings.schedule == "onecycle":
        pct = min(0.5, max(0.05, warmup / total)) if warmup else 0.3
        peaks = [group["lr"] for group in optimizer.param_groups]  # keeps a backbone's scale
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total, pct_start=pct
        )
    shapes: dict[str, Callable[[float], float]] = {
        "constant": lambda progress: 1.0,
        "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),
        "step": lambda progress: 0.1 ** int(progress * 3),  # x0.1 at 1/3 and 2/3 of training
    }
    shape = shapes[settings.schedule]

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        return shape(min(1.0, (step - warmup) / max(1.0, total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_loss(settings: TrainSettings, labels: np.ndarray, num_classes: int, device) -> nn.Module:
    """Cross-entropy; with class_weight balanced, each class weighs n / (classes x count)."""
    weight = None
    if settings.class_weight == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
        weight = torch.tensor(
            len(labels) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32, device=device
        )
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=settings.label_smoothing)


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """Over the trainable parameters; a pretrained backbone may learn at a scaled rate. A
    backbone that unfreezes later is in the optimizer from the start: without gradients its
    parameters are skipped (not even weight decay touches them) until then."""
    head = getattr(unwrap(model), "bench_head", None)
    scale = getattr(unwrap(model), "bench_backbone_lr_scale", 1.0)
    later = getattr(unwrap(model), "bench_unfreeze_after", 0) > 0
    trainable = [p for p in model.parameters() if p.requires_grad or later]
    if head is None or scale == 1.0:
        return _OPTIMIZERS[settings.optimizer](trainable, settings)
    head_ids = {id(p) for p in unwrap(model).get_submodule(head).parameters()}
    groups = [
        {"params": [p for p in trainable if id(p) not in head_ids], "lr": settings.lr * scale},
        {"params": [p for p in trainable if id(p) in head_ids], "lr": settings.lr},
    ]
    return _OPTIMIZERS[settings.optimizer]([g for g in groups if g["params"]], settings)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def unfreeze_if_due(model: nn.Module, epoch: int, wrap_model: Identity) -> nn.Module:
    """From epoch `bench_unfreeze_after + 1` on, a frozen backbone trains too. A DDP wrapper
    registers only the parameters that needed gradients when it was built, so it is rebuilt."""
    inner = unwrap(model)
    after = getattr(inner, "bench_unfreeze_after", 0)
    if not after or epoch <= after or all(p.requires_grad for p in inner.parameters()):
        return model
    for parameter in inner.parameters():
        parameter.requires_grad_(True)
    return wrap_model(inner) if inner is not model else model


def _hold_frozen_norms(model: nn.Module) -> None:
    """Batch norms whose parameters are frozen keep their running statistics too (feature
    extraction uses the backbone exactly as it was pretrained)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            own = list(module.parameters(recurse=False))
            if own and not any(p.requires_grad for p in own):
                module.eval()


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    adapt: InputAdapter,
    device: torch.device,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_clip: float = 0.0,
    augment: Augmenter | None = None,
    accel: Acceleration | None = None,
) -> tuple[float, int]:
    """Mean training loss over the epoch, and the number of samples seen. Mixed batches
    (mixup, cutmix) are scored against both label sets, weighted by their share."""
    accel = accel or Acceleration(device.type)
    model.train()
    _hold_frozen_norms(model)
    total, seen = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        inputs, partners, share = adapt(images, augment), labels, 1.0
        if augment is not None:
            inputs, partners, share = augment.mix(inputs, labels)
        optimizer.zero_grad(set_to_none=True)
        with accel.autocast():
            outputs = model(accel.inputs(inputs))
            loss = loss_fn(outputs, labels)
            if share < 1.0:
                loss = share * loss + (1.0 - share) * loss_fn(outputs, partners)
        if not torch.isfinite(loss):
            raise DivergedError(
                f"training diverged: loss is {loss.item()}; lower the learning rate or its range"
            )
        _step(model, optimizer, loss, grad_clip, accel.scaler)
        if schedule is not None:
            schedule.step()
        total += loss.item() * len(labels)
        seen += len(labels)
    return total / max(seen, 1), seen


def _step(model, optimizer, loss, grad_clip: float, scaler) -> None:
    """Backward and update; with a float16 scaler, gradients are unscaled before clipping."""
    if scaler is None:
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: np.ndarray,
    index: np.ndarray,
    adapt: InputAdapter,
    device: torch.device,
    batch_size: int = 512,
    accel: Acceleration | None = None,
) -> np.ndarray:
    """Class probabilities of un-augmented images (validation and test data)."""
    accel = accel or Acceleration(device.type)
    model.eval()
    data = IndexedImages(images, np.zeros(len(images), dtype=np.int64), index)
    chunks = []
    for start in range(0, len(data), batch_size):
        batch, _ = data.__getitems__(list(range(start, min(start + batch_size, len(data)))))
        with accel.autocast():
            logits = model(accel.inputs(adapt(batch.to(device))))
        chunks.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32)


def _val_loss(proba: np.ndarray, labels: np.ndarray) -> float:
    picked = proba[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


@dataclass
class EpochRecord:
    fold: int
    epoch: int
    train_loss: float
    val_loss: float
    val_score: float
    seconds: float


@dataclass
class FoldOutcome:
    fold: int
    best_epoch: int
    epochs_run: int
    train_seconds: float
    eval_seconds: float
    samples_per_second: float
    val_index: np.ndarray
    val_proba: np.ndarray
    history: list[EpochRecord] = field(default_factory=list)


class _FoldRun:
    """One fold's model, optimizer and early-stopping state."""

    def __init__(self, fold, seed, model, loader, val_index, settings, wrap_model, loss_fn, device):
        self.fold = fold
        self.accel = accelerate(model, settings, device)
        self.augment = augmenter(settings, seed, device)
        self.shuffle = getattr(loader, "generator", None)  # its state travels in checkpoints
        self.wrap_model = wrap_model
        self.model = wrap_model(model)
        self.optimizer = make_optimizer(self.model, settings)
        self.schedule = make_schedule(self.optimizer, settings, len(loader))
        self.loss_fn = loss_fn
        self.loader = loader
        self.val_index = val_index
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stale_epochs = 0
        self.stopped = False
        self.train_seconds = self.eval_seconds = 0.0
        self.samples = 0
        self.history: list[EpochRecord] = []

    # Plain tensors, numbers and lists only: a checkpoint loads with weights_only=True.
    _SCALARS = (
        "best_score",
        "best_epoch",
        "stale_epochs",
        "stopped",
        "train_seconds",
        "eval_seconds",
        "samples",
    )

    def state(self) -> dict[str, Any]:
        """A copy: training goes on after a snapshot."""
        scaler = self.accel.scaler
        return copy.deepcopy(
            {
                "model": unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else {},
                "best_state": self.best_state,
                "history": [dataclasses.astuple(h) for h in self.history],
                "rng": self._rng_state(),
                **{name: getattr(self, name) for name in self._SCALARS},
            }
        )

    def _rng_state(self) -> dict[str, Any]:
        """The fold's own random streams: its shuffling and its augmentation."""
        state: dict[str, Any] = {}
        if self.shuffle is not None:
            state["shuffle"] = self.shuffle.get_state()
        if self.augment is not None:
            state["augment"] = self.augment.get_state()
        return state

    def load(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.accel.scaler is not None and state.get("scaler"):
            self.accel.scaler.load_state_dict(state["scaler"])
        self.best_state = state["best_state"]
        self.history = [EpochRecord(*h) for h in state["history"]]
        for name in self._SCALARS:
            setattr(self, name, state[name])
        rng = state.get("rng", {})
        if self.shuffle is not None and "shuffle" in rng:
            self.shuffle.set_state(rng["shuffle"])
        if self.augment is not None and "augment" in rng:
            self.augment.set_state(rng["augment"])


def global_rng_state() -> dict[str, Any]:
    """The process-wide generators (dropout and other layers draw from torch's), in a form
    torch.load(weights_only=True) reads back: tensors, numbers, strings and lists only."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": _python_state_as_list(random.getstate()),
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _python_state_as_list(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def cross_validate(
    build_model: Callable[[], nn.Module],
    images: np.ndarray,
    labels: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: TrainSettings,
    adapt: InputAdapter | Sequence[InputAdapter],
    score: Callable[[np.ndarray, np.ndarray], float],
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, float, Callable[[], dict[str, Any]]], None] | None = None,
    wrap_model: Identity = lambda m: m,
    wrap_loader: Identity = lambda d: d,
    resume_from: dict[str, Any] | None = None,
) -> list[FoldOutcome]:
    """Train one model per fold, in lockstep, with early stopping on `score` (higher is better).

    `on_epoch(epoch, cv_score, snapshot)` gets the mean over folds of each fold's best score so
    far, and `snapshot()` returns the whole state to checkpoint, random generators included;
    `resume_from` (such a snapshot) continues after its epoch exactly as if training had not
    stopped. Each fold ends restored to its best epoch's weights; its validation probabilities
    are predicted with those weights. `adapt`: one InputAdapter, or one per fold (each
    normalized with its own training part's statistics)."""
    device = torch.device(device)
    adapters = [adapt] * len(folds) if isinstance(adapt, InputAdapter) else list(adapt)
    images = resident(images, device)  # once for all folds
    runs = [
        _start_run(
            k,
            (FOLD, k),
            build_model,
            images,
            labels,
            train_index,
            val_index,
            settings,
            device,
            wrap_model,
            wrap_loader,
        )
        for k, (train_index, val_index) in enumerate(folds)
    ]

    first = 1
    if resume_from is not None:
        for run, state in zip(runs, resume_from["folds"], strict=True):
            run.load(state)
        if "rng" in resume_from:
            set_global_rng_state(resume_from["rng"])
        first = int(resume_from["epoch"]) + 1
    for epoch in range(first, settings.epochs + 1):
        for run, fold_adapt in zip(runs, adapters, strict=True):
            if not run.stopped:
                _fold_epoch(run, epoch, images, labels, settings, fold_adapt, score, device)
        if on_epoch is not None:
            on_epoch(epoch, float(np.mean([r.best_score for r in runs])), _snapshotter(epoch, runs))
        if all(r.stopped for r in runs):
            break
    return [
        _finish(run, images, fold_adapt, device)
        for run, fold_adapt in zip(runs, adapters, strict=True)
    ]


def _snapshotter(epoch: int, runs: list[_FoldRun]) -> Callable[[], dict[str, Any]]:
    def snapshot() -> dict[str, Any]:
        return {"epoch": epoch, "folds": [r.state() for r in runs], "rng": global_rng_state()}

    return snapshot


def _start_run(
    fold: int,
    offset: tuple[int, ...],
    build_model: Callable[[], nn.Module],
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    train_index: np.ndarray,
    val_index: np.ndarray,
    settings: TrainSettings,
    device: torch.device,
    wrap_model: Identity,
    wrap_loader: Identity,
) -> _FoldRun:
    """A fold's model, loader and optimizer (or the refit's: fold -1). Model initialization,
    shuffling and augmentation each draw from their own stream, derived from the training
    seed and `offset` (FOLD + fold, or REFIT), so no two folds, seeds or purposes collide."""
    seed = derive_seed(settings.seed, *offset)
    torch.manual_seed(seed)
    loader = make_loader(
        IndexedImages(images, labels, train_index),
        settings.batch_size,
        True,
        derive_seed(settings.seed, *offset, LOADER),
    )
    model = build_model().to(device)
    loss_fn = make_loss(settings, labels[train_index], int(labels.max()) + 1, device)
    return _FoldRun(
        fold,
        seed,
        model,
        wrap_loader(loader),
        val_index,
        settings,
        wrap_model,
        loss_fn,
        device,
    )


def _train_epoch(run: _FoldRun, epoch: int, settings, adapt, device) -> tuple[float, int]:
    """One pass over the run's training batches: (mean loss, samples seen)."""
    sampler = getattr(run.loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # DistributedSampler reshuffles per epoch only when told
    run.model = unfreeze_if_due(run.model, epoch, run.wrap_model)
    return train_one_epoch(
        run.model,
        run.loader,
        run.optimizer,
        run.loss_fn,
        adapt,
        device,
        run.schedule,
        settings.grad_clip,
        run.augment,
        run.accel,
    )


def augmenter(settings: TrainSettings, seed: int, device: torch.device) -> Augmenter | None:
    """The fold's augmenter, or None when no augmentation is asked for. Each DDP rank draws
    its own augmentations."""
    if not settings.augment.active:
        return None
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    return Augmenter(settings.augment, derive_seed(seed, AUGMENT, rank), device)


def _fold_epoch(run, epoch, images, labels, settings, adapt, score, device) -> None:
    started = time.perf_counter()
    train_loss, seen = _train_epoch(run, epoch, settings, adapt, device)
    trained = time.perf_counter()
    proba = predict_proba(unwrap(run.model), images, run.val_index, adapt, device, accel=run.accel)
    val_labels = labels[run.val_index]
    val_score = score(val_labels, proba)
    run.train_seconds += trained - started
    run.eval_seconds += time.perf_counter() - trained
    run.samples += seen
    run.history.append(
        EpochRecord(
            run.fold,
            epoch,
            train_loss,
            _val_loss(proba, val_labels),
            val_score,
            time.perf_counter() - started,
        )
    )
    if val_score > run.best_score:
        run.best_score, run.best_epoch, run.stale_epochs = val_score, epoch, 0
        run.best_state = copy.deepcopy(unwrap(run.model).state_dict())
    else:
        run.stale_epochs += 1
        run.stopped = settings.patience > 0 and run.stale_epochs >= settings.patience
    if epoch == settings.epochs:
        run.stopped = True


def _finish(run: _FoldRun, images, adapt, device) -> FoldOutcome:
    model = unwrap(run.model)
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    started = time.perf_counter()
    proba = predict_proba(model, images, run.val_index, adapt, device, accel=run.accel)
    run.eval_seconds += time.perf_counter() - started
    return FoldOutcome(
        fold=run.fold,
        best_epoch=run.best_epoch,
        epochs_run=len(run.history),
        train_seconds=run.train_seconds,
        eval_seconds=run.eval_seconds,
        samples_per_second=run.samples / run.train_seconds if run.train_seconds else 0.0,
        val_index=run.val_index,
        val_proba=proba,
        history=run.history,
    )


@dataclass
class RefitOutcome:
    test_proba: np.ndarray
    epochs: int
    train_seconds: float
    samples_per_second: float
    history: list[EpochRecord]
    model: nn.Module


def fit_and_predict(
    build_model: Callable[[], nn.Module],
    images: np.ndarray,
    labels: np.ndarray,
    test_images: np.ndarray,
    settings: TrainSettings,
    adapt: InputAdapter,
    device: torch.device | str = "cpu",
    wrap_model: Identity = lambda m: m,
    wrap_loader: Identity = lambda d: d,
) -> RefitOutcome:
    """Train on all of `images` for exactly settings.epochs (no peeking at the test split for
    early stopping), then predict the test images."""
    device = torch.device(device)
    images, test_images = resident(images, device), resident(test_images, device)
    everything = np.arange(len(labels))
    run = _start_run(
        -1,
        (REFIT,),
        build_model,
        images,
        labels,
        everything,
        everything[:0],
        settings,
        device,
        wrap_model,
        wrap_loader,
    )
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        loss, seen = _train_epoch(run, epoch, settings, adapt, device)
        elapsed = time.perf_counter() - started
        run.train_seconds += elapsed
        run.samples += seen
        run.history.append(EpochRecord(-1, epoch, loss, math.nan, math.nan, elapsed))
    model = unwrap(run.model)
    test_index = np.arange(len(test_images))
    proba = predict_proba(model, test_images, test_index, adapt, device, accel=run.accel)
    return RefitOutcome(
        proba,
        settings.epochs,
        run.train_seconds,
        run.samples / run.train_seconds if run.train_seconds else 0.0,
        run.history,
        model,
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
