"""The training loop: pure PyTorch, no Ray import.

Cross-validation runs its folds in lockstep (every fold trains epoch e before any trains e+1),
so after each epoch there is one cross-validated score to report to a scheduler. Distributed
training plugs in through `wrap_model` / `wrap_loader` (Ray Train's prepare_* functions).
Models come from `create_model` as a BuiltModel: the module and its FineTuning description.

Its parts: inputs.py (InputAdapter, in-memory batches), acceleration.py (precision, memory
format), optim.py (optimizer, schedule, loss, unfreezing), folds.py (one fold's state, its
snapshot and resume); this module holds the epoch, prediction, CV and refit loops."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.models.contract import BuiltModel
from bench.seeds import FOLD, REFIT
from bench.train.acceleration import Acceleration
from bench.train.augment import Augmenter
from bench.train.folds import (
    EpochRecord,
    FoldOutcome,
    FoldRun,
    resume,
    snapshotter,
    start_run,
)
from bench.train.inputs import IndexedImages, InputAdapter, predict_batch_size, resident
from bench.train.optim import (
    Identity,
    unfreeze_if_due,
    unwrap,
)
from bench.train.settings import TrainSettings


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


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
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        loss, count = _backward(model, batch, loss_fn, adapt, device, augment, accel)
        del batch  # the batch and its float copies are not held through the update
        _update(model, optimizer, grad_clip, accel.scaler)
        if schedule is not None:
            schedule.step()
        total += loss * count
        seen += count
    return total / max(seen, 1), seen


def _backward(model, batch, loss_fn, adapt, device, augment, accel) -> tuple[float, int]:
    """One batch's forward and backward pass: (its loss, its size). The batch's tensors live
    only here, so they are gone before the optimizer's step allocates its own."""
    images, labels = batch
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    inputs, partners, share = adapt(images, augment), labels, 1.0
    if augment is not None:
        inputs, partners, share = augment.mix(inputs, labels)
    with accel.autocast():
        outputs = model(accel.inputs(inputs))
        loss = loss_fn(outputs, labels)
        if share < 1.0:
            loss = share * loss + (1.0 - share) * loss_fn(outputs, partners)
    if not torch.isfinite(loss):
        raise DivergedError(
            f"training diverged: loss is {loss.item()}; lower the learning rate or its range"
        )
    if accel.scaler is None:
        loss.backward()
    else:
        accel.scaler.scale(loss).backward()
    return loss.item(), len(labels)


def _update(model, optimizer, grad_clip: float, scaler) -> None:
    """The optimizer's step; with a float16 scaler, gradients are unscaled before clipping."""
    if scaler is None:
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
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
    batch_size: int = 0,
    accel: Acceleration | None = None,
) -> np.ndarray:
    """Class probabilities of un-augmented images (validation and test data). `batch_size` 0:
    as many as keep a batch's float copies small (predict_batch_size)."""
    accel = accel or Acceleration(device.type)
    model.eval()
    batch_size = batch_size or predict_batch_size(images)
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


def cross_validate(
    build_model: Callable[[], BuiltModel],
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
    parking: Path | None = None,
) -> list[FoldOutcome]:
    """Train one model per fold, in lockstep, with early stopping on `score` (higher is better).

    `on_epoch(epoch, cv_score, snapshot)` gets the mean over folds of each fold's best score so
    far, and `snapshot()` returns the whole state to checkpoint, random generators included;
    `resume_from` (such a snapshot) continues after its epoch exactly as if training had not
    stopped. Each fold ends restored to its best epoch's weights; its validation probabilities
    are predicted with those weights. `adapt`: one InputAdapter, or one per fold (each
    normalized with its own training part's statistics). `parking`: a folder where each fold's
    tensors wait while the others train (FoldRun.rest), so memory holds one fold's, not k; the
    results are the same to the bit."""
    device = torch.device(device)
    adapters = [adapt] * len(folds) if isinstance(adapt, InputAdapter) else list(adapt)
    images = resident(images, device)  # once for all folds
    runs: list[FoldRun] = []
    try:
        for k, (train_index, val_index) in enumerate(folds):
            run = start_run(
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
            run.parking = parking
            run.rest()  # before the next fold's model is built
            runs.append(run)
        first = 1 if resume_from is None else resume(runs, resume_from)
        for epoch in range(first, settings.epochs + 1):
            for run, fold_adapt in zip(runs, adapters, strict=True):
                if not run.stopped:
                    run.wake()
                    _fold_epoch(run, epoch, images, labels, settings, fold_adapt, score, device)
                    run.rest()
            if on_epoch is not None:
                mean_score = float(np.mean([r.best_score for r in runs]))
                on_epoch(epoch, mean_score, snapshotter(epoch, runs))
            if all(r.stopped for r in runs):
                break
        return [
            _finish(run, images, fold_adapt, device)
            for run, fold_adapt in zip(runs, adapters, strict=True)
        ]
    finally:
        for run in runs:
            run.discard()  # parking files a failure left


def _train_epoch(run: FoldRun, epoch: int, settings, adapt, device) -> tuple[float, int]:
    """One pass over the run's training batches: (mean loss, samples seen)."""
    sampler = getattr(run.loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # DistributedSampler reshuffles per epoch only when told
    run.model = unfreeze_if_due(run.model, epoch, run.tuning, run.wrap_model)
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


def _fold_epoch(run, epoch, images, labels, settings, adapt, score, device) -> None:
    started = time.perf_counter()
    train_loss, seen = _train_epoch(run, epoch, settings, adapt, device)
    run.optimizer.zero_grad(set_to_none=True)  # not kept while the other folds train
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
    last = epoch == settings.epochs
    if val_score > run.best_score:
        run.best_score, run.best_epoch, run.stale_epochs = val_score, epoch, 0
        # After the last epoch the weights themselves are the best: no copy needed.
        run.best_state = None if last else copy.deepcopy(unwrap(run.model).state_dict())
    else:
        run.stale_epochs += 1
        run.stopped = settings.patience > 0 and run.stale_epochs >= settings.patience
    run.stopped = run.stopped or last
    if run.stopped:
        run.settle()


def _finish(run: FoldRun, images, adapt, device) -> FoldOutcome:
    run.wake()
    run.settle()  # done when it stopped; a fold resumed from an older snapshot is settled here
    model = unwrap(run.model)
    started = time.perf_counter()
    proba = predict_proba(model, images, run.val_index, adapt, device, accel=run.accel)
    run.eval_seconds += time.perf_counter() - started
    run.discard()
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
    build_model: Callable[[], BuiltModel],
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
    run = start_run(
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
    run.settle()  # the optimizer's state goes before the test images are predicted
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
