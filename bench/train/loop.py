"""The training loop: pure PyTorch, no Ray import.

Cross-validation runs its folds in lockstep (every fold trains epoch e before any trains e+1),
so after each epoch there is one cross-validated score to report to a scheduler. Distributed
training plugs in through `wrap_model` / `wrap_loader` (Ray Train's prepare_* functions)."""

from __future__ import annotations

import copy
import dataclasses
import math
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

Identity = Callable[[Any], Any]


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


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


@dataclass(frozen=True)
class InputAdapter:
    """Turns stored uint8 NCHW batches into what a model takes: scaled, normalized, channels
    repeated for RGB backbones, resized up to the model's minimum side."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255.0)
        if len(self.mean) == self.channels and x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)  # grayscale into RGB-normalized weights
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x


class IndexedImages(Dataset):
    """A view of in-memory arrays through an index, fetched a whole batch at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, index: np.ndarray):
        with warnings.catch_warnings():
            # Arrays from Ray's object store are read-only; we never write to them.
            warnings.simplefilter("ignore", UserWarning)
            self.images = torch.from_numpy(images)
            self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.index = torch.from_numpy(np.asarray(index, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.index[i]
        return self.images[j], self.labels[j]

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.index[positions]
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
    """Over the trainable parameters; a pretrained backbone may learn at a scaled rate."""
    head = getattr(unwrap(model), "bench_head", None)
    scale = getattr(unwrap(model), "bench_backbone_lr_scale", 1.0)
    trainable = [p for p in model.parameters() if p.requires_grad]
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


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    adapt: InputAdapter,
    device: torch.device,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_clip: float = 0.0,
) -> tuple[float, int]:
    """Mean training loss over the epoch, and the number of samples seen."""
    model.train()
    total, seen = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(adapt(images)), labels)
        if not torch.isfinite(loss):
            raise DivergedError(
                f"training diverged: loss is {loss.item()}; lower the learning rate or its range"
            )
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        total += loss.item() * len(labels)
        seen += len(labels)
    return total / max(seen, 1), seen


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: np.ndarray,
    index: np.ndarray,
    adapt: InputAdapter,
    device: torch.device,
    batch_size: int = 512,
) -> np.ndarray:
    model.eval()
    data = IndexedImages(images, np.zeros(len(images), dtype=np.int64), index)
    chunks = []
    for start in range(0, len(data), batch_size):
        batch, _ = data.__getitems__(list(range(start, min(start + batch_size, len(data)))))
        chunks.append(torch.softmax(model(adapt(batch.to(device))).float(), dim=1).cpu())
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

    def __init__(self, fold, model, loader, val_index, settings, wrap_model, loss_fn):
        self.fold = fold
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
        return copy.deepcopy(
            {
                "model": unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "best_state": self.best_state,
                "history": [dataclasses.astuple(h) for h in self.history],
                **{name: getattr(self, name) for name in self._SCALARS},
            }
        )

    def load(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.best_state = state["best_state"]
        self.history = [EpochRecord(*h) for h in state["history"]]
        for name in self._SCALARS:
            setattr(self, name, state[name])


def cross_validate(
    build_model: Callable[[], nn.Module],
    images: np.ndarray,
    labels: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: TrainSettings,
    adapt: InputAdapter,
    score: Callable[[np.ndarray, np.ndarray], float],
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, float, Callable[[], dict[str, Any]]], None] | None = None,
    wrap_model: Identity = lambda m: m,
    wrap_loader: Identity = lambda d: d,
    resume_from: dict[str, Any] | None = None,
) -> list[FoldOutcome]:
    """Train one model per fold, in lockstep, with early stopping on `score` (higher is better).

    `on_epoch(epoch, cv_score, snapshot)` gets the mean over folds of each fold's best score so
    far, and `snapshot()` returns the whole state to checkpoint; `resume_from` (such a
    snapshot) continues after its epoch. Each fold ends restored to its best epoch's weights;
    its validation probabilities are predicted with those weights."""
    device = torch.device(device)
    num_classes = int(labels.max()) + 1
    runs = []
    for k, (train_index, val_index) in enumerate(folds):
        torch.manual_seed(settings.seed * 1000 + k)
        loader = make_loader(
            IndexedImages(images, labels, train_index), settings.batch_size, True, settings.seed + k
        )
        model = build_model().to(device)
        loss_fn = make_loss(settings, labels[train_index], num_classes, device)
        runs.append(
            _FoldRun(k, model, wrap_loader(loader), val_index, settings, wrap_model, loss_fn)
        )

    first = 1
    if resume_from is not None:
        for run, state in zip(runs, resume_from["folds"], strict=True):
            run.load(state)
        first = int(resume_from["epoch"]) + 1
    for epoch in range(first, settings.epochs + 1):
        for run in runs:
            if not run.stopped:
                _fold_epoch(run, epoch, images, labels, settings, adapt, score, device)
        if on_epoch is not None:
            snapshot = lambda e=epoch: {"epoch": e, "folds": [r.state() for r in runs]}  # noqa: E731
            on_epoch(epoch, float(np.mean([r.best_score for r in runs])), snapshot)
        if all(r.stopped for r in runs):
            break
    return [_finish(run, images, adapt, device) for run in runs]


def _fold_epoch(run, epoch, images, labels, settings, adapt, score, device) -> None:
    started = time.perf_counter()
    sampler = getattr(run.loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # DistributedSampler reshuffles per epoch only when told
    train_loss, seen = train_one_epoch(
        run.model,
        run.loader,
        run.optimizer,
        run.loss_fn,
        adapt,
        device,
        run.schedule,
        settings.grad_clip,
    )
    trained = time.perf_counter()
    proba = predict_proba(unwrap(run.model), images, run.val_index, adapt, device)
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
    proba = predict_proba(model, images, run.val_index, adapt, device)
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
    torch.manual_seed(settings.seed * 1000 + 999)
    model = wrap_model(build_model().to(device))
    optimizer = make_optimizer(model, settings)
    loss_fn = make_loss(settings, labels, int(labels.max()) + 1, device)
    loader = wrap_loader(
        make_loader(
            IndexedImages(images, labels, np.arange(len(labels))),
            settings.batch_size,
            True,
            settings.seed + 999,
        )
    )
    schedule = make_schedule(optimizer, settings, len(loader))
    history, seconds, samples = [], 0.0, 0
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        loss, seen = train_one_epoch(
            model, loader, optimizer, loss_fn, adapt, device, schedule, settings.grad_clip
        )
        elapsed = time.perf_counter() - started
        seconds += elapsed
        samples += seen
        history.append(EpochRecord(-1, epoch, loss, math.nan, math.nan, elapsed))
    proba = predict_proba(unwrap(model), test_images, np.arange(len(test_images)), adapt, device)
    return RefitOutcome(
        proba,
        settings.epochs,
        seconds,
        samples / seconds if seconds else 0.0,
        history,
        unwrap(model),
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
