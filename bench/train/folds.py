"""One fold's training state: its model, optimizer, schedule, early stopping and random
streams, and the snapshot of all of it (process-wide generators included) that a checkpoint
stores and a resumed run loads back."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parameter import is_lazy

from bench.models.contract import BuiltModel, FineTuning
from bench.seeds import AUGMENT, LOADER, derive_seed
from bench.train.acceleration import accelerate
from bench.train.augment import Augmenter
from bench.train.inputs import IndexedImages, make_loader
from bench.train.optim import Identity, make_loss, make_optimizer, make_schedule, unwrap
from bench.train.settings import TrainSettings


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


class FoldRun:
    """One fold's model, optimizer and early-stopping state.

    With a parking folder, the fold's tensors wait on disk while the other folds train
    (`rest` / `wake`): cross-validation then holds one fold's weights and optimizer state in
    memory, not k of them."""

    def __init__(
        self,
        fold,
        seed,
        built: BuiltModel,
        loader,
        val_index,
        settings,
        wrap_model,
        loss_fn,
        device,
    ):
        model = built.module
        self.fold = fold
        self.tuning: FineTuning = built.tuning
        self.accel = accelerate(model, settings, device)
        self.augment = augmenter(settings, seed, device)
        self.shuffle = getattr(loader, "generator", None)  # its state travels in checkpoints
        self.wrap_model = wrap_model
        self.model = wrap_model(model)
        self.optimizer = make_optimizer(self.model, settings, self.tuning)
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
        self.parking: Path | None = None  # where `rest` puts the tensors; None: they stay
        self.parked: Path | None = None  # the file they are in while the fold rests
        self.resting: list[torch.Tensor] = []  # the emptied tensor objects, in file order
        self.resting_layouts: list[tuple] = []  # their shapes, strides and dtypes before

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

    def settle(self) -> None:
        """The fold trains no more: its model takes its best weights, and what only training
        needs goes (gradients, and the optimizer's state: two more copies of the weights for
        Adam), so a finished fold holds one copy of its weights while the others train on."""
        if self.best_state is not None:
            unwrap(self.model).load_state_dict(self.best_state)
            self.best_state = None
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer.state.clear()

    def _tensors(self) -> list[torch.Tensor]:
        """Every tensor the fold keeps between its epochs: weights and buffers, the
        optimizer's state, the best epoch's weights (each once)."""
        model = unwrap(self.model)
        found = [*model.parameters(), *model.buffers()]
        for state in self.optimizer.state.values():
            found += [value for value in state.values() if isinstance(value, torch.Tensor)]
        found += list((self.best_state or {}).values())
        return list({id(tensor): tensor for tensor in found}.values())

    def rest(self) -> None:
        """With a parking folder: the tensors go to a file there, and each tensor object
        keeps no storage until `wake` (the model, the optimizer and its references to the
        parameters stay the same objects). The file holds the exact bits: a fold that rested
        trains on as if it had not."""
        if self.parking is None or self.parked is not None:
            return
        tensors = self._tensors()
        if any(is_lazy(tensor) for tensor in tensors):
            return  # a lazy module's weights take their shape at its first batch
        path = self.parking / f"fold-{self.fold}.pt"
        try:
            torch.save([tensor.detach() for tensor in tensors], path)
        except (OSError, RuntimeError):  # the disk is full or refuses: it stays in memory
            path.unlink(missing_ok=True)
            return
        self.resting = tensors
        self.resting_layouts = [_layout(tensor) for tensor in tensors]
        _empty(tensors)
        self.parked = path

    def wake(self) -> None:
        """The tensors back from the parking file, which goes: each into the very object it
        came from (checked by shape, strides and dtype)."""
        if self.parked is None:
            return
        saved = torch.load(self.parked, weights_only=True)
        if [_layout(value) for value in saved] != self.resting_layouts:
            raise RuntimeError(f"fold {self.fold}: {self.parked} does not hold its tensors")
        with torch.no_grad():
            for tensor, value in zip(self.resting, saved, strict=True):
                tensor.set_(value)
        self.parked.unlink()
        self.parked, self.resting, self.resting_layouts = None, [], []

    @contextlib.contextmanager
    def awake(self) -> Iterator[None]:
        """Awake for the block (a snapshot, a resume), resting again after it."""
        self.wake()
        try:
            yield
        finally:
            self.rest()

    def discard(self) -> None:
        """The fold is done (its validation predicted): with a parking folder its tensors go
        at once, not when the last fold is done; a parking file left goes too."""
        if self.parked is not None:
            self.parked.unlink(missing_ok=True)
            self.parked, self.resting, self.resting_layouts = None, [], []
        elif self.parking is not None:
            _empty(self._tensors())

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


def _layout(tensor: torch.Tensor) -> tuple:
    return tuple(tensor.shape), tensor.stride(), tensor.dtype


def _empty(tensors: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for tensor in tensors:
            tensor.set_(torch.empty(0, dtype=tensor.dtype, device=tensor.device))


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


def snapshotter(epoch: int, runs: list[FoldRun]) -> Callable[[], dict[str, Any]]:
    def snapshot() -> dict[str, Any]:
        folds = []
        for run in runs:
            with run.awake():
                folds.append(run.state())
        return {"epoch": epoch, "folds": folds, "rng": global_rng_state()}

    return snapshot


def resume(runs: list[FoldRun], snapshot: dict[str, Any]) -> int:
    """Load a snapshot into the runs (and the process-wide generators); the next epoch."""
    for run, state in zip(runs, snapshot["folds"], strict=True):
        with run.awake():
            run.load(state)
    if "rng" in snapshot:
        set_global_rng_state(snapshot["rng"])
    return int(snapshot["epoch"]) + 1


def start_run(
    fold: int,
    offset: tuple[int, ...],
    build_model: Callable[[], BuiltModel],
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    train_index: np.ndarray,
    val_index: np.ndarray,
    settings: TrainSettings,
    device: torch.device,
    wrap_model: Identity,
    wrap_loader: Identity,
) -> FoldRun:
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
        settings.loader_workers,
        pin=device.type == "cuda",
    )
    built = build_model()
    built.module.to(device)
    loss_fn = make_loss(settings, labels[train_index], int(labels.max()) + 1, device)
    return FoldRun(
        fold,
        seed,
        built,
        wrap_loader(loader),
        val_index,
        settings,
        wrap_model,
        loss_fn,
        device,
    )


def augmenter(settings: TrainSettings, seed: int, device: torch.device) -> Augmenter | None:
    """The fold's augmenter, or None when no augmentation is asked for. Each DDP rank draws
    its own augmentations."""
    if not settings.augment.active:
        return None
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    return Augmenter(settings.augment, derive_seed(seed, AUGMENT, rank), device)
