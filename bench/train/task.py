"""What one trial trains and records, independent of how it is scheduled (no Ray import).

The Tune trial actor, a Ray Train worker group and `bench perf`'s plain-PyTorch baseline all
call `cross_validate_trial` / `refit_pairing`, so every path produces identical rows."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from bench.config import ResourcesConfig
from bench.data.images import ImageData
from bench.metrics import Objective, get_metric
from bench.plan import PairingPlan
from bench.train.build import fold_adapters, input_adapter, model_factory, train_settings
from bench.train.folds import FoldOutcome
from bench.train.loop import RefitOutcome, cross_validate, fit_and_predict
from bench.train.memory import returning_freed_memory
from bench.train.optim import Identity
from bench.train.parking import folds_rest, parking_folder


def device_for(resources: ResourcesConfig) -> torch.device:
    """CUDA where the pairing asked for GPUs and this process was given one, else the CPU."""
    if resources.gpus_per_worker > 0 and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def search_score(
    objective: Objective, num_classes: int
) -> Callable[[np.ndarray, np.ndarray], float]:
    """The loop's early-stopping score: the objective's metric as higher-is-better."""
    fn = get_metric(objective.metric).fn

    def score(y_true: np.ndarray, proba: np.ndarray) -> float:
        try:
            return objective.loop_score(float(fn(y_true, proba, proba.argmax(axis=1), num_classes)))
        except ValueError:
            return -math.inf

    return score


def use_deterministic_kernels(on: bool) -> None:
    """resources.deterministic: CUDA kernels that give the same result every time. Set either
    way, since a reused trial actor may run another pairing's trial next. cuBLAS needs its
    workspace fixed before its first call, hence the environment variable. Set only when it
    changes: setting it imports the compiler's configuration (torch._inductor, torch._dynamo:
    80 MB in each trial process) to set its flag too."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    if torch.are_deterministic_algorithms_enabled() != on:
        torch.use_deterministic_algorithms(on)


def cross_validate_trial(
    plan: PairingPlan,
    data: ImageData,
    params: Mapping[str, Any],
    device: Any = "cpu",
    on_epoch: Callable[[int, float, Callable[[], dict]], None] | None = None,
    wrap_model: Identity = lambda m: m,
    wrap_loader: Identity = lambda d: d,
    resume_from: dict | None = None,
) -> list[FoldOutcome]:
    use_deterministic_kernels(plan.deterministic)
    settings = train_settings(plan, params)
    stored_batch = batch_bytes(data.train_x, settings.batch_size)
    with (
        returning_freed_memory(stored_batch),
        parking_folder(folds_rest(stored_batch, device)) as parking,
    ):
        return cross_validate(
            model_factory(plan, data, params),
            data.train_x,
            data.train_y,
            data.folds,
            settings,
            fold_adapters(plan.model, data, params),
            search_score(plan.objective, data.num_classes),
            device=device,
            on_epoch=on_epoch,
            wrap_model=wrap_model,
            wrap_loader=wrap_loader,
            resume_from=resume_from,
            parking=parking,
        )


def batch_bytes(images: Any, batch_size: int) -> int:
    """Bytes of one stored (uint8) training batch of `images`."""
    return int(batch_size) * int(np.prod(images.shape[1:]))


def refit_pairing(
    plan: PairingPlan,
    data: ImageData,
    params: Mapping[str, Any],
    epochs: int,
    device: Any = "cpu",
    wrap_model: Identity = lambda m: m,
    wrap_loader: Identity = lambda d: d,
) -> RefitOutcome:
    """Train the chosen configuration on the whole CV pool; predict the test split once."""
    use_deterministic_kernels(plan.deterministic)
    settings = train_settings(plan, params, epochs=epochs)
    with returning_freed_memory(batch_bytes(data.train_x, settings.batch_size)):
        return fit_and_predict(
            model_factory(plan, data, params),
            data.train_x,
            data.train_y,
            data.test_x,
            settings,
            input_adapter(plan.model, data, params),
            device=device,
            wrap_model=wrap_model,
            wrap_loader=wrap_loader,
        )
