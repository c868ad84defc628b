"""What one trial trains and records, independent of how it is scheduled (no Ray import).

The Tune trial actor, a Ray Train worker group and `bench perf`'s plain-PyTorch baseline all
call `cross_validate_trial` / `refit_pairing`, so every path produces identical rows."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.config import TRAINING_PARAMS, ResourcesConfig
from bench.data.images import ImageData
from bench.metrics import METRIC_NAMES, compute_metrics, get_metric, higher_is_better
from bench.registry.models import MODELS, create_model
from bench.results.schema import dumps
from bench.train.loop import (
    FoldOutcome,
    Identity,
    InputAdapter,
    RefitOutcome,
    TrainSettings,
    cross_validate,
    fit_and_predict,
)
from bench.train.settings import AUGMENT_DEFAULTS, AugmentSettings


@dataclass(frozen=True)
class PairingContext:
    """Everything a trial of one (model, dataset) pairing needs besides its hyperparameters."""

    run_id: str
    benchmark: str
    model: str
    dataset: str
    metric: str
    epochs: int
    batch_size: int
    patience: int
    seed: int
    trials: int = 1
    workers: int = 1
    checkpoint_every: int = 0  # epochs between trial checkpoints; 0: none
    precision: str = "auto"  # see ResourcesConfig
    channels_last: str = "auto"  # auto, on, off
    deterministic: bool = False  # see ResourcesConfig
    repeat: int = 0  # the replicate: its splits, and `seed` is its training seed

    @property
    def pairing(self) -> str:
        """`mlp@digits.r0`: the pairing's repeat, the unit the scheduler runs and names files by."""
        return f"{self.model}@{self.dataset}.r{self.repeat}"

    def ids(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "benchmark": self.benchmark,
            "dataset": self.dataset,
            "model": self.model,
            "repeat": self.repeat,
        }


def device_for(resources: ResourcesConfig) -> torch.device:
    """CUDA where the pairing asked for GPUs and this process was given one, else the CPU."""
    if resources.gpus_per_worker > 0 and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def split_params(model: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training-loop params, model hyperparameters)."""
    model_keys = set(MODELS.get(model).hparams)
    training = {k: v for k, v in params.items() if k in TRAINING_PARAMS}
    hparams = {k: v for k, v in params.items() if k in model_keys}
    return training, hparams


def train_settings(
    ctx: PairingContext, params: Mapping[str, Any], epochs: int | None = None
) -> TrainSettings:
    training, _ = split_params(ctx.model, params)
    merged = {k: _typed(TRAINING_PARAMS[k], v) for k, v in {**TRAINING_PARAMS, **training}.items()}
    merged.pop("input_fit")  # the InputAdapter's business
    return TrainSettings(
        epochs=epochs or ctx.epochs,
        batch_size=int(merged.pop("batch_size") or ctx.batch_size),
        patience=ctx.patience,
        seed=ctx.seed,
        augment=AugmentSettings(**{k: merged.pop(k) for k in AUGMENT_DEFAULTS}),
        precision=ctx.precision,
        channels_last=ctx.channels_last,
        **merged,
    )


def _typed(default: Any, value: Any) -> Any:
    """A searched value in its parameter's type (Optuna hands back floats and numpy types)."""
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, float):
        return float(value)
    return value


def model_factory(
    ctx: PairingContext, data: ImageData, params: Mapping[str, Any]
) -> Callable[[], Any]:
    _, hparams = split_params(ctx.model, params)
    channels, side = input_shape(ctx.model, data, params)
    return lambda: create_model(ctx.model, data.num_classes, channels, side, **hparams)


def _pretrained(model: str, params: Mapping[str, Any]):
    """(side, mean, std) of the model's pretrained weights, or None."""
    _, hparams = split_params(model, params)
    if hparams.get("strategy") == "from_scratch" or "weights" not in MODELS.get(model).hparams:
        return None
    from bench.models.torchvision_models import preprocessing

    return preprocessing(model, hparams.get("weights", "none"))


def input_shape(model: str, data: ImageData, params: Mapping[str, Any]) -> tuple[int, int]:
    """(channels, side) fed to the model: pretrained weights fix the side they were trained at."""
    channels, side = MODELS.get(model).input_shape(
        int(data.train_x.shape[1]), int(data.train_x.shape[2])
    )
    pretrained = _pretrained(model, params)
    return (channels, pretrained[1]) if pretrained else (channels, side)


def input_adapter(
    model: str,
    data: ImageData,
    params: Mapping[str, Any],
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> InputAdapter:
    """The pretrained weights' resize, crop and mean/std, or the dataset's own normalization:
    `stats` (mean, std) of the images the model trains on, by default the whole CV pool's."""
    channels, side = input_shape(model, data, params)
    fit = str(params.get("input_fit", TRAINING_PARAMS["input_fit"]))
    pretrained = _pretrained(model, params)
    if pretrained:
        resize, _, mean, std = pretrained
        return InputAdapter(channels, side, mean, std, resize=resize, fit=fit)
    mean, std = stats or (data.mean, data.std)
    return InputAdapter(channels, side, mean, std, fit=fit)


def fold_adapters(model: str, data: ImageData, params: Mapping[str, Any]) -> list[InputAdapter]:
    """One adapter per fold, normalized with that fold's training part only."""
    stats = data.fold_stats or [None] * len(data.folds)
    return [input_adapter(model, data, params, fold) for fold in stats]


def search_score(metric: str, num_classes: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """The loop's early-stopping score: the search metric, negated when lower is better."""
    fn = get_metric(metric).fn
    sign = 1.0 if higher_is_better(metric) else -1.0

    def score(y_true: np.ndarray, proba: np.ndarray) -> float:
        try:
            return sign * float(fn(y_true, proba, proba.argmax(axis=1), num_classes))
        except ValueError:
            return -math.inf

    return score


def use_deterministic_kernels(on: bool) -> None:
    """resources.deterministic: CUDA kernels that give the same result every time. Set either
    way, since a reused trial actor may run another pairing's trial next. cuBLAS needs its
    workspace fixed before its first call, hence the environment variable."""
    import os

    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(on)


def cross_validate_trial(
    ctx: PairingContext,
    data: ImageData,
    params: Mapping[str, Any],
    device: Any = "cpu",
    on_epoch: Callable[[int, float, Callable[[], dict]], None] | None = None,
    wrap_model: Identity = lambda m: m,
    wrap_loader: Identity = lambda d: d,
    resume_from: dict | None = None,
) -> list[FoldOutcome]:
    use_deterministic_kernels(ctx.deterministic)
    return cross_validate(
        model_factory(ctx, data, params),
        data.train_x,
        data.train_y,
        data.folds,
        train_settings(ctx, params),
        fold_adapters(ctx.model, data, params),
        search_score(ctx.metric, data.num_classes),
        device=device,
        on_epoch=on_epoch,
        wrap_model=wrap_model,
        wrap_loader=wrap_loader,
        resume_from=resume_from,
    )


def reported_score(metric: str, loop_score: float) -> float:
    """Undo the loop's sign flip so Tune/Optuna see the metric itself."""
    return loop_score if higher_is_better(metric) else -loop_score


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass
class TrialRecord:
    """The rows one finished trial contributes, and its summary."""

    folds: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    summary: dict[str, Any]


def record_trial(
    ctx: PairingContext,
    data: ImageData,
    trial: int,
    trial_id: str,
    params: Mapping[str, Any],
    outcomes: list[FoldOutcome],
    placement: Mapping[str, Any],
    wall_seconds: float,
) -> TrialRecord:
    ids = ctx.ids()
    fold_rows, epoch_rows = [], []
    params_json = dumps(dict(params))
    for outcome in outcomes:
        report = compute_metrics(
            data.train_y[outcome.val_index], outcome.val_proba, data.num_classes
        )
        fold_rows.append(
            {
                **ids,
                "trial": trial,
                "trial_id": trial_id,
                "fold": outcome.fold,
                "val_samples": len(outcome.val_index),
                "val_digest": sample_digest(outcome.val_index),
                "params": params_json,
                **report.values,
                "metric_notes": report.notes_text(),
                "best_epoch": outcome.best_epoch,
                "epochs_run": outcome.epochs_run,
                "train_seconds": outcome.train_seconds,
                "eval_seconds": outcome.eval_seconds,
                "samples_per_second": outcome.samples_per_second,
                "workers": ctx.workers,
                "node_id": placement.get("node_id", ""),
                "gpu_ids": placement.get("gpu_ids", ""),
                "worker_pid": placement.get("worker_pid"),
            }
        )
        epoch_rows += history_rows(ctx, trial, "cv", outcome.history)
    summary = {
        **ids,
        "trial": trial,
        "trial_id": trial_id,
        "params": params_json,
        "status": "ok",
        "error": "",
        "metric": ctx.metric,
        **cv_summary(fold_rows),
        "epochs_run": max(o.epochs_run for o in outcomes),
        "wall_seconds": wall_seconds,
    }
    summary["score"] = summary[f"cv_{ctx.metric}_mean"]
    return TrialRecord(fold_rows, epoch_rows, summary)


def sample_digest(index: np.ndarray) -> str:
    """12 hex digits of a SHA-256 of sorted sample indices (which rows a fold validates on)."""
    import hashlib

    rows = np.sort(np.asarray(index, dtype=np.int64))
    return hashlib.sha256(rows.tobytes()).hexdigest()[:12]


def history_rows(
    ctx: PairingContext, trial: int, phase: str, history: list
) -> list[dict[str, Any]]:
    return [
        {
            **ctx.ids(),
            "trial": trial,
            "phase": phase,
            "fold": h.fold,
            "epoch": h.epoch,
            "train_loss": h.train_loss,
            "val_loss": h.val_loss,
            "val_score": reported_score(ctx.metric, h.val_score),
            "seconds": h.seconds,
        }
        for h in history
    ]


def cv_summary(fold_rows: list[Mapping[str, Any]]) -> dict[str, float]:
    """cv_<metric>_mean / _std over folds (NaN folds ignored; NaN when every fold is NaN)."""
    out = {}
    for name in METRIC_NAMES:
        values = np.array([row[name] for row in fold_rows], dtype=float)
        finite = values[~np.isnan(values)]
        out[f"cv_{name}_mean"] = float(finite.mean()) if len(finite) else math.nan
        out[f"cv_{name}_std"] = (
            float(finite.std(ddof=1)) if len(finite) > 1 else (0.0 if len(finite) else math.nan)
        )
    return out


def refit_epochs(fold_rows: list[Mapping[str, Any]], default: int) -> int:
    """Epochs for the final fit: the median best epoch of the chosen trial's folds."""
    best = [int(r["best_epoch"]) for r in fold_rows if r.get("best_epoch")]
    return max(1, int(round(statistics.median(best)))) if best else default


def refit_pairing(
    ctx: PairingContext,
    data: ImageData,
    params: Mapping[str, Any],
    epochs: int,
    device: Any = "cpu",
    wrap_model: Identity = lambda m: m,
    wrap_loader: Identity = lambda d: d,
) -> RefitOutcome:
    """Train the chosen configuration on the whole CV pool; predict the test split once."""
    use_deterministic_kernels(ctx.deterministic)
    return fit_and_predict(
        model_factory(ctx, data, params),
        data.train_x,
        data.train_y,
        data.test_x,
        train_settings(ctx, params, epochs=epochs),
        input_adapter(ctx.model, data, params),
        device=device,
        wrap_model=wrap_model,
        wrap_loader=wrap_loader,
    )


def prediction_rows(
    ctx: PairingContext, data: ImageData, proba: np.ndarray
) -> list[dict[str, Any]]:
    ids = ctx.ids()
    predicted = proba.argmax(axis=1)
    return [
        {
            **ids,
            "sample": i,
            "y_true": int(data.test_y[i]),
            "y_pred": int(predicted[i]),
            "proba": proba[i].astype(np.float32).tolist(),
        }
        for i in range(len(proba))
    ]
