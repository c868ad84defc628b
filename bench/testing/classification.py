"""Random classification problems with the awkward cases (classes absent from the labels,
never predicted, exact zeros, ties), and scikit-learn's own answer for each metric."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics


def random_problem(
    rng: np.random.Generator,
    num_classes: int,
    samples: int,
    in_labels: list[int],
    never_predicted: list[int],
    coarse: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, float32 proba): labels drawn from `in_labels` only, `never_predicted` classes
    with probability 0, 30% exact zeros, and with `coarse` few distinct values (ties)."""
    y = rng.choice(in_labels, size=samples)
    raw = rng.gamma(0.5, size=(samples, num_classes))
    raw[rng.random(raw.shape) < 0.3] = 0.0
    predictable = np.setdiff1d(np.arange(num_classes), never_predicted)
    raw[np.arange(samples), rng.choice(predictable, size=samples)] += 0.5
    raw[:, never_predicted] = 0.0
    if coarse:
        raw = np.round(raw * 2) / 2
    return y, (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)


def sklearn_metrics(y, proba, num_classes: int) -> dict[str, float]:
    """Every metric of bench.metrics by the direct scikit-learn call with its defaults (the
    rule bench.metrics states), on the probabilities as given and their argmax."""
    y_pred = proba.argmax(axis=1)
    labels = list(range(num_classes))
    values = {
        "accuracy": metrics.accuracy_score(y, y_pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y, y_pred),
    }
    for name, score in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        for average in ("macro", "weighted"):
            values[f"{name}_{average}"] = score(y, y_pred, average=average, zero_division=0)
    if len(np.unique(y)) < num_classes:
        values["roc_auc"] = math.nan
    elif num_classes == 2:
        values["roc_auc"] = metrics.roc_auc_score(y, proba[:, 1])
    else:
        values["roc_auc"] = metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
    values["log_loss"] = metrics.log_loss(y, proba, labels=labels)
    values["top5_accuracy"] = (
        math.nan if num_classes <= 5 else metrics.top_k_accuracy_score(y, proba, k=5, labels=labels)
    )
    values["brier"] = metrics.brier_score_loss(y, proba, labels=labels)
    values["ece"] = textbook_ece(y, proba)
    return values


def textbook_ece(y, proba, weight=None, bins: int = 15) -> float:
    """Guo et al.'s expected calibration error, bin by bin as the paper writes it: the share
    of samples in ((m-1)/M, m/M] times |accuracy - mean confidence| there (weighted by
    `weight` when given)."""
    confidence = proba.max(axis=1).astype(np.float64)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    weight = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    ece = 0.0
    for m in range(1, bins + 1):
        inside = (confidence > (m - 1) / bins) & (confidence <= m / bins)
        mass = weight[inside].sum()
        if mass > 0:
            accuracy = (weight[inside] * correct[inside]).sum() / mass
            mean_confidence = (weight[inside] * confidence[inside]).sum() / mass
            ece += mass / weight.sum() * abs(accuracy - mean_confidence)
    return float(ece)
