"""Bootstrap intervals of the metrics, vectorized over resamples.

A bootstrap resample of a test split of n samples is a row of counts (how often each sample
was drawn), so B resamples are a (B, n) weight matrix, and every metric is computed for all
rows at once from weighted sums: a weighted confusion matrix, weighted per-sample losses and
top-5 hits, and a weighted Mann-Whitney statistic per class for ROC-AUC. No scikit-learn call
is made per resample; the rules are compute_metrics' (see bench.metrics), and the tests hold
every metric to scikit-learn's value with sample_weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.metrics import (
    ECE_BINS,
    METRIC_NAMES,
    as_stored,
    compute_metrics,
    confidence_bins,
    rows_sum_to_one,
    sample_brier,
)

# Entries of one resampled weight matrix: bounds memory (a few arrays of this many float64)
# whatever the test split's size.
CHUNK_CELLS = 2_000_000
# scikit-learn clips probabilities at the epsilon of their dtype; they are stored as float32.
EPS32 = np.finfo(np.float32).eps
TOP_K = 5


@dataclass(frozen=True)
class Interval:
    estimate: float  # the statistic on the data as it is (no resampling)
    low: float  # percentile bounds of the resampled statistic (NaN-resamples ignored)
    high: float


# (y_true int64 (n,), proba float32 (n, C)) of one repeat's test split
Replicate = tuple[np.ndarray, np.ndarray]

# score(repeat index, (rows, n) weights) -> metric name -> (rows,) values
_Score = Callable[[int, np.ndarray], dict[str, np.ndarray]]


def weighted_metrics(
    y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray, num_classes: int
) -> dict[str, np.ndarray]:
    """Every metric of METRIC_NAMES for each row of `weights` (shape (B, n), non-negative
    sample weights, e.g. bootstrap counts): arrays of shape (B,). Same rules as
    compute_metrics; a row of ones gives compute_metrics' values, and any row w gives what
    scikit-learn gives with sample_weight=w (to 1e-9) on the samples whose weight is positive
    (a class whose samples all weigh 0 is absent, as from a resample that drew none of them).
    NaN where the metric is undefined for that row (e.g. roc_auc when a class has zero weight).
    log_loss is averaged in float64, as scikit-learn does with sample_weight; unweighted,
    scikit-learn (and so compute_metrics) averages the float32 losses in float32, which
    differs in the 7th significant digit."""
    return _weighted_metrics(y_true, proba, weights, num_classes, METRIC_NAMES)


def _weighted_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    weights: np.ndarray,
    num_classes: int,
    names: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """weighted_metrics for the metrics in `names` only (ROC-AUC costs most of the time)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = as_stored(proba)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != len(y_true) or proba.shape != (len(y_true), num_classes):
        raise ValueError(
            f"weights {weights.shape}, proba {proba.shape} and y_true ({len(y_true)},) "
            f"do not describe the same {num_classes}-class samples"
        )
    y_pred = proba.argmax(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a row of zero weight gives NaN
        total = weights.sum(axis=1)
        confusion = _weighted_confusion(y_true, y_pred, weights, num_classes)
        values = {
            "accuracy": np.trace(confusion, axis1=1, axis2=2) / total,
            **_confusion_scores(confusion),
            "log_loss": weights @ _sample_log_loss(y_true, proba) / total,
            "top5_accuracy": _top5(y_true, proba, weights, total),
            "brier": weights @ sample_brier(y_true, proba) / total,
            "ece": _ece(y_true, proba, y_pred, weights, total),
        }
        if "roc_auc" in names:
            values["roc_auc"] = _roc_auc(y_true, proba, weights)
    return {name: values[name] for name in names}


def _weighted_confusion(
    y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, num_classes: int
) -> np.ndarray:
    """(B, C, C): [b, true, predicted] = the weight row b gives that cell."""
    rows, cells = weights.shape[0], num_classes * num_classes
    cell = y_true * num_classes + y_pred
    flat = (np.arange(rows)[:, None] * cells + cell[None, :]).ravel()
    counts = np.bincount(flat, weights=weights.ravel(), minlength=rows * cells)
    return counts.reshape(rows, num_classes, num_classes)


def _confusion_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Balanced accuracy and macro / weighted precision, recall and F1 per row."""
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    support = confusion.sum(axis=2)
    predicted = confusion.sum(axis=1)
    per_class = {
        "precision": _ratio(hits, predicted),
        "recall": _ratio(hits, support),
        "f1": _ratio(2 * hits, support + predicted),
    }
    present = (support + predicted) > 0
    in_labels = support > 0
    scores = {"balanced_accuracy": _mean_where(per_class["recall"], in_labels)}
    for name, values in per_class.items():
        scores[f"{name}_macro"] = _mean_where(values, present)
    for name, values in per_class.items():
        scores[f"{name}_weighted"] = (values * support).sum(axis=1) / support.sum(axis=1)
    return scores


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros_like(numerator, dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _mean_where(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, values, 0.0).sum(axis=1) / keep.sum(axis=1)


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One-vs-rest macro AUC per row (class 1's AUC for two classes)."""
    num_classes = proba.shape[1]
    if num_classes == 2:
        return _binary_auc(y_true == 1, proba[:, 1], weights)
    if not rows_sum_to_one(proba):
        return np.full(weights.shape[0], np.nan)
    per_class = [_binary_auc(y_true == c, proba[:, c], weights) for c in range(num_classes)]
    return np.mean(per_class, axis=0)  # NaN when any class has no weight


def _binary_auc(positive: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney statistic per row: the weight of (positive, negative) pairs the
    positive outscores, tied pairs counting half, over the weight of all pairs. NaN when a
    row gives the positives or the negatives no weight.

    A positive's mid-rank among all samples (the weight below its score plus half the weight
    tied with it) counts the pairs it wins against negatives and against positives; the
    positive-positive pairs always add up to half the squared positive weight, so one
    cumulative sum per class over the sorted samples gives every row's AUC."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts_group = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(starts_group) - 1  # tie group of each sorted sample
    tie_start = np.flatnonzero(starts_group)
    tie_end = np.r_[tie_start[1:], len(scores)]
    # weight_before[:, k]: the weight of the k lowest-scored samples
    weight_before = np.zeros((weights.shape[0], len(scores) + 1))
    np.cumsum(np.take(weights, order, axis=1), axis=1, out=weight_before[:, 1:])
    positives = np.flatnonzero(positive[order])
    positive_group = group[positives]
    mid_rank = 0.5 * (
        weight_before[:, tie_start[positive_group]] + weight_before[:, tie_end[positive_group]]
    )
    positive_weights = np.take(weights, order[positives], axis=1)
    positive_total = positive_weights.sum(axis=1)
    # summed, not total minus positives: a class holding all the weight must give exactly 0
    negative_total = weights @ (~positive).astype(np.float64)
    wins = (positive_weights * mid_rank).sum(axis=1) - 0.5 * positive_total**2
    pairs = positive_total * negative_total
    return np.where(pairs > 0, wins / pairs, np.nan)


def _sample_log_loss(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each sample's loss exactly as scikit-learn's log_loss computes it for a float32 array:
    clipped to [eps, 1 - eps] and logged in float32, no renormalization."""
    true_proba = proba[np.arange(len(y_true)), y_true]
    return -np.log(np.clip(true_proba, EPS32, 1 - EPS32)).astype(np.float64)


def _ece(
    y_true: np.ndarray,
    proba: np.ndarray,
    y_pred: np.ndarray,
    weights: np.ndarray,
    total: np.ndarray,
) -> np.ndarray:
    """Weighted ECE: per bin, |sum of w x (correct - confidence)|, summed, over sum of w."""
    confidence, bins = confidence_bins(proba)
    gap = (y_pred == y_true).astype(np.float64) - confidence
    per_bin = np.zeros((len(gap), ECE_BINS))
    per_bin[np.arange(len(gap)), bins] = gap
    return np.abs(weights @ per_bin).sum(axis=1) / total


def _top5(
    y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray, total: np.ndarray
) -> np.ndarray:
    if proba.shape[1] <= TOP_K:
        return np.full(weights.shape[0], np.nan)
    return weights @ _top_k_hits(y_true, proba, TOP_K) / total


def _top_k_hits(y_true: np.ndarray, proba: np.ndarray, k: int) -> np.ndarray:
    """Whether the true class is among the k most probable, ties ranked as scikit-learn's
    top_k_accuracy_score ranks them (a stable ascending sort, reversed: among equal
    probabilities the higher class index comes first)."""
    true_proba = proba[np.arange(len(y_true)), y_true][:, None]
    later_class = np.arange(proba.shape[1])[None, :] > y_true[:, None]
    ahead = (proba > true_proba) | ((proba == true_proba) & later_class)
    return (ahead.sum(axis=1) < k).astype(np.float64)


def metric_intervals(
    replicates: list[Replicate],
    num_classes: int,
    seed: int,
    resamples: int = 1000,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Per metric: estimate = mean over repeats of the metric on each repeat's whole test split
    (NaN-repeats ignored); interval = percentile bootstrap where each resample draws the
    repeats with replacement (only when there are 2 or more) and, within each drawn repeat,
    its test samples with replacement, then averages the per-repeat metrics. Seeded: the same
    inputs and seed give the same bounds."""
    reports = [compute_metrics(y, proba, num_classes).values for y, proba in replicates]

    def score(repeat: int, weights: np.ndarray) -> dict[str, np.ndarray]:
        return weighted_metrics(*replicates[repeat], weights, num_classes)

    resampled = _resample([len(y) for y, _ in replicates], seed, resamples, score)
    return {
        name: _interval(_nanmean(np.array([r[name] for r in reports])), resampled[name], level)
        for name in METRIC_NAMES
    }


def paired_difference(
    a: list[Replicate],
    b: list[Replicate],
    metric: str,
    num_classes: int,
    seed: int,
    resamples: int = 1000,
    level: float = 0.95,
) -> Interval:
    """metric(a) - metric(b) of two models scored on the same test splits (a[r] and b[r] share
    y_true; raise ValueError if not): the same resampled repeats and samples for both, so the
    interval is of the paired difference. estimate = mean over repeats of the per-repeat
    differences."""
    _check_paired(a, b, metric)
    differences = [
        compute_metrics(*mine, num_classes).values[metric]
        - compute_metrics(*theirs, num_classes).values[metric]
        for mine, theirs in zip(a, b, strict=True)
    ]

    def score(repeat: int, weights: np.ndarray) -> dict[str, np.ndarray]:
        mine = _weighted_metrics(*a[repeat], weights, num_classes, (metric,))[metric]
        theirs = _weighted_metrics(*b[repeat], weights, num_classes, (metric,))[metric]
        return {metric: mine - theirs}

    resampled = _resample([len(y) for y, _ in a], seed, resamples, score)
    return _interval(_nanmean(np.array(differences)), resampled[metric], level)


def _check_paired(a: list[Replicate], b: list[Replicate], metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRIC_NAMES)})")
    if len(a) != len(b):
        raise ValueError(f"a paired difference needs the same repeats: {len(a)} vs {len(b)}")
    for repeat, ((labels_a, _), (labels_b, _)) in enumerate(zip(a, b, strict=True)):
        if not np.array_equal(labels_a, labels_b):
            raise ValueError(f"repeat {repeat}: the two models were scored on different labels")


def _resample(sizes: list[int], seed: int, resamples: int, score: _Score) -> dict[str, np.ndarray]:
    """Each resampled statistic (shape (resamples,)): a resample fills slots with drawn
    repeats, scores each slot on its own resample of that repeat's samples, and averages the
    slots (NaN slots ignored)."""
    rng = np.random.default_rng(seed)
    slots = _drawn_repeats(rng, len(sizes), resamples)
    flat_slots = slots.ravel()
    per_slot: dict[str, np.ndarray] = {}
    for repeat, size in enumerate(sizes):
        positions = np.flatnonzero(flat_slots == repeat)
        rows = max(1, CHUNK_CELLS // size)
        for start in range(0, len(positions), rows):
            chunk = positions[start : start + rows]
            for name, values in score(repeat, _bootstrap_counts(rng, size, len(chunk))).items():
                per_slot.setdefault(name, np.full(flat_slots.size, np.nan))[chunk] = values
    return {
        name: _nanmean(values.reshape(slots.shape), axis=1) for name, values in per_slot.items()
    }


def _drawn_repeats(rng: np.random.Generator, repeats: int, resamples: int) -> np.ndarray:
    """(resamples, slots): which repeat fills each slot of each resample."""
    if repeats < 2:  # one repeat: nothing to draw between
        return np.zeros((resamples, 1), dtype=np.int64)
    return rng.integers(0, repeats, size=(resamples, repeats))


def _bootstrap_counts(rng: np.random.Generator, size: int, rows: int) -> np.ndarray:
    """(rows, size) weights: how often each of `size` samples is drawn in `size` draws."""
    drawn = rng.integers(0, size, size=(rows, size))
    flat = (drawn + size * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * size).reshape(rows, size).astype(np.float64)


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Mean of the non-NaN values; NaN (without numpy's warning) where there are none."""
    kept = ~np.isnan(values)
    count = kept.sum(axis=axis)
    total = np.where(kept, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore"):
        return total / count


def _interval(estimate: float, resampled: np.ndarray, level: float) -> Interval:
    finite = resampled[~np.isnan(resampled)]
    if finite.size == 0:
        return Interval(float(estimate), np.nan, np.nan)
    tail = 50 * (1 - level)
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))
