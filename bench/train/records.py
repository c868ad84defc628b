"""The rows a trial and a refit contribute to the results tables (no Ray import)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.data.images import ImageData
from bench.metrics import METRIC_NAMES, compute_metrics
from bench.plan import PairingPlan
from bench.results.schema import ROWS, dumps, make_row
from bench.train.folds import FoldOutcome


@dataclass
class TrialRecord:
    """The rows one finished trial contributes, and its summary."""

    folds: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    summary: dict[str, Any]
    out_of_fold: list[dict[str, Any]]


def record_trial(
    plan: PairingPlan,
    data: ImageData,
    trial: int,
    trial_id: str,
    params: Mapping[str, Any],
    outcomes: list[FoldOutcome],
    placement: Mapping[str, Any],
    wall_seconds: float,
) -> TrialRecord:
    params_json = dumps(dict(params))
    fold_rows = [
        fold_row(plan, data, trial, trial_id, params_json, outcome, placement)
        for outcome in outcomes
    ]
    epoch_rows = [
        row for outcome in outcomes for row in history_rows(plan, trial, "cv", outcome.history)
    ]
    cv = cv_summary(fold_rows)
    summary = make_row(
        "trials",
        **plan.ids(),
        trial=trial,
        trial_id=trial_id,
        params=params_json,
        status="ok",
        error="",
        metric=plan.metric,
        score=cv[f"cv_{plan.metric}_mean"],
        **cv,
        epochs_run=max(o.epochs_run for o in outcomes),
        # what only the trial's caller knows: whether it resumed, the resources it held
        resumed_from_epoch=None,
        wall_seconds=wall_seconds,
        cpu_seconds=None,
        gpu_seconds=None,
    )
    out_of_fold = out_of_fold_rows(plan, data, trial, outcomes)
    return TrialRecord(fold_rows, epoch_rows, summary, out_of_fold)


def fold_row(
    plan: PairingPlan,
    data: ImageData,
    trial: int,
    trial_id: str,
    params_json: str,
    outcome: FoldOutcome,
    placement: Mapping[str, Any],
) -> dict[str, Any]:
    """One fold's row: its validation metrics and where and how fast it trained."""
    report = compute_metrics(data.train_y[outcome.val_index], outcome.val_proba, data.num_classes)
    return make_row(
        "folds",
        **plan.ids(),
        trial=trial,
        trial_id=trial_id,
        fold=outcome.fold,
        val_samples=len(outcome.val_index),
        val_digest=sample_digest(outcome.val_index),
        params=params_json,
        **report.values,
        metric_notes=report.notes_text(),
        best_epoch=outcome.best_epoch,
        epochs_run=outcome.epochs_run,
        train_seconds=outcome.train_seconds,
        eval_seconds=outcome.eval_seconds,
        samples_per_second=outcome.samples_per_second,
        workers=plan.workers,
        node_id=placement.get("node_id", ""),
        gpu_ids=placement.get("gpu_ids", ""),
        worker_pid=placement.get("worker_pid"),
    )


def out_of_fold_rows(
    plan: PairingPlan, data: ImageData, trial: int, outcomes: list[FoldOutcome]
) -> list[dict[str, Any]]:
    """Each CV-pool sample's probabilities from the fold model that validated on it."""
    ids, row = plan.ids(), ROWS["oof"]
    return [
        row(
            **ids,
            trial=trial,
            fold=outcome.fold,
            sample=int(sample),
            y_true=int(data.train_y[sample]),
            proba=proba.astype(np.float32).tolist(),
        )
        for outcome in outcomes
        for sample, proba in zip(outcome.val_index, outcome.val_proba, strict=True)
    ]


def sample_digest(index: np.ndarray) -> str:
    """12 hex digits of a SHA-256 of sorted sample indices (which rows a fold validates on)."""
    rows = np.sort(np.asarray(index, dtype=np.int64))
    return hashlib.sha256(rows.tobytes()).hexdigest()[:12]


def history_rows(plan: PairingPlan, trial: int, phase: str, history: list) -> list[dict[str, Any]]:
    ids, epoch_row = plan.ids(), ROWS["epochs"]
    return [
        epoch_row(
            **ids,
            trial=trial,
            phase=phase,
            fold=h.fold,
            epoch=h.epoch,
            train_loss=h.train_loss,
            val_loss=h.val_loss,
            val_score=plan.objective.from_loop(h.val_score),
            seconds=h.seconds,
        )
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


def prediction_rows(plan: PairingPlan, data: ImageData, proba: np.ndarray) -> list[dict[str, Any]]:
    ids, prediction_row = plan.ids(), ROWS["predictions"]
    predicted = proba.argmax(axis=1)
    return [
        prediction_row(
            **ids,
            sample=i,
            y_true=int(data.test_y[i]),
            y_pred=int(predicted[i]),
            proba=proba[i].astype(np.float32).tolist(),
        )
        for i in range(len(proba))
    ]
