"""Classification metrics over scikit-learn, computed from predicted probabilities.

METRICS is the one table of scalar metrics: the results schema, the leaderboard and the
search direction all read names and directions from it.

Every metric but the two calibration ones is scikit-learn's own, on the probabilities exactly
as predictions.parquet stores them (float32) and on the predicted class, their argmax (ties go
to the lowest class index). The Brier score is the mean squared distance of the probabilities
from the one-hot label, halved for two classes: scikit-learn's brier_score_loss (1.7+), which
sums in float32 where bench sums in float64 (equal to 1e-6 relative). The expected calibration
error (ECE) is Guo et al.'s: 15 equal-width bins of the top-label confidence, bin m holding
((m-1)/15, m/15], each weighing its share of samples times |accuracy - mean confidence|.
Per-class precision, recall and F1 are averaged over the classes that occur in the labels or
the predictions (scikit-learn's default labels): a class absent from both is left out of the
macro averages and its per-class figures are NaN (null in JSON); any other zero division
counts as 0. Weighted averages weight by support, so absent classes never counted there.
Balanced accuracy is the mean recall over the classes in the labels. ROC-AUC is one-vs-rest
macro (plain AUC for two classes) and NaN when a class is absent from the labels; log loss
clips the float32 probabilities at float32's epsilon as scikit-learn does, without
renormalizing; top-5 accuracy is NaN for 5 or fewer classes. Each NaN carries its reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    description: str
    # fn(y_true, proba, y_pred, num_classes) -> float; raise UndefinedMetric when it cannot be had
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray, int], float]

    @property
    def mode(self) -> str:
        """Ray Tune / Optuna direction word."""
        return "max" if self.higher_is_better else "min"


class UndefinedMetric(ValueError):
    """The metric has no value on this data (the message is the recorded reason)."""


def _labels(num_classes: int) -> list[int]:
    return list(range(num_classes))


def as_stored(proba: np.ndarray) -> np.ndarray:
    """The probabilities as predictions.parquet holds them: every metric is computed from
    these, so a metric recomputed from the stored file gives the recorded number."""
    return np.asarray(proba, dtype=np.float32)


def _averaged(score, average: str):
    def fn(y_true, proba, y_pred, num_classes):
        # labels=None: a class absent from labels and predictions stays out of the average
        return score(y_true, y_pred, average=average, zero_division=0)

    return fn


def rows_sum_to_one(proba: np.ndarray) -> bool:
    """scikit-learn's test before a multiclass ROC-AUC (it refuses other scores)."""
    return bool(np.allclose(1, proba.sum(axis=1)))


def _roc_auc(y_true, proba, y_pred, num_classes):
    from sklearn.metrics import roc_auc_score

    absent = sorted(set(_labels(num_classes)) - set(np.unique(y_true).tolist()))
    if absent:
        raise UndefinedMetric(f"roc_auc undefined: class(es) {absent} absent from the labels")
    if num_classes == 2:
        return roc_auc_score(y_true, proba[:, 1])
    if not rows_sum_to_one(proba):
        raise UndefinedMetric("roc_auc undefined: probability rows do not sum to 1")
    return roc_auc_score(
        y_true, proba, multi_class="ovr", average="macro", labels=_labels(num_classes)
    )


def _log_loss(y_true, proba, y_pred, num_classes):
    from sklearn.metrics import log_loss

    with warnings.catch_warnings():
        # float32 softmax rows drift from 1; scikit-learn warns and scores them as they are
        warnings.filterwarnings("ignore", message="The y_prob values do not sum to one")
        return log_loss(y_true, proba, labels=_labels(num_classes))


def _top5(y_true, proba, y_pred, num_classes):
    from sklearn.metrics import top_k_accuracy_score

    if num_classes <= 5:
        raise UndefinedMetric("top5_accuracy undefined: 5 or fewer classes")
    return top_k_accuracy_score(y_true, proba, k=5, labels=_labels(num_classes))


# Expected calibration error: equal-width bins of the top-label confidence, bin m holding
# confidences in ((m - 1) / ECE_BINS, m / ECE_BINS] (Guo et al., 2017).
ECE_BINS = 15


def confidence_bins(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top-label confidence as float64, its ECE bin 0 .. ECE_BINS - 1) of each row."""
    confidence = as_stored(proba).max(axis=1).astype(np.float64)
    bins = np.clip(np.ceil(confidence * ECE_BINS).astype(np.int64) - 1, 0, ECE_BINS - 1)
    return confidence, bins


def _ece(y_true, proba, y_pred, num_classes):
    """Sum over bins of (bin's share of samples) x |accuracy - mean confidence| in the bin."""
    confidence, bins = confidence_bins(proba)
    gap = (y_pred == y_true).astype(np.float64) - confidence
    return float(np.abs(np.bincount(bins, weights=gap, minlength=ECE_BINS)).sum() / len(gap))


def sample_brier(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each sample's squared distance from its one-hot label (float64), halved for two
    classes as scikit-learn's brier_score_loss does (range [0, 1]; [0, 2] otherwise)."""
    distance = as_stored(proba).astype(np.float64)
    distance[np.arange(len(y_true)), y_true] -= 1.0
    squared = (distance**2).sum(axis=1)
    return squared / 2 if proba.shape[1] == 2 else squared


def _brier(y_true, proba, y_pred, num_classes):
    return float(sample_brier(y_true, proba).mean())


def _build_table() -> dict[str, Metric]:
    from sklearn import metrics as skm

    table = [
        Metric("accuracy", True, "fraction correct", lambda t, p, y, c: skm.accuracy_score(t, y)),
        Metric(
            "balanced_accuracy",
            True,
            "mean per-class recall",
            lambda t, p, y, c: skm.balanced_accuracy_score(t, y),
        ),
        Metric(
            "precision_macro",
            True,
            "unweighted mean precision",
            _averaged(skm.precision_score, "macro"),
        ),
        Metric(
            "recall_macro", True, "unweighted mean recall", _averaged(skm.recall_score, "macro")
        ),
        Metric("f1_macro", True, "unweighted mean F1", _averaged(skm.f1_score, "macro")),
        Metric(
            "precision_weighted",
            True,
            "support-weighted precision",
            _averaged(skm.precision_score, "weighted"),
        ),
        Metric(
            "recall_weighted",
            True,
            "support-weighted recall",
            _averaged(skm.recall_score, "weighted"),
        ),
        Metric("f1_weighted", True, "support-weighted F1", _averaged(skm.f1_score, "weighted")),
        Metric("roc_auc", True, "one-vs-rest macro ROC-AUC (plain AUC for 2 classes)", _roc_auc),
        Metric("log_loss", False, "cross-entropy of the predicted probabilities", _log_loss),
        Metric("top5_accuracy", True, "true class among the 5 most probable (> 5 classes)", _top5),
        Metric(
            "brier",
            False,
            "Brier score: mean squared distance of the probabilities from the one-hot label"
            " (halved for 2 classes)",
            _brier,
        ),
        Metric(
            "ece",
            False,
            f"expected calibration error over {ECE_BINS} equal-width confidence bins",
            _ece,
        ),
    ]
    return {m.name: m for m in table}


# Names and directions without importing scikit-learn (the schema needs them at import time).
METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "log_loss",
    "top5_accuracy",
    "brier",
    "ece",
)
DEFAULT_METRIC = "f1_macro"


def get_metric(name: str) -> Metric:
    return metric_table()[name]


_TABLE: dict[str, Metric] | None = None


def metric_table() -> dict[str, Metric]:
    global _TABLE
    if _TABLE is None:
        _TABLE = _build_table()
        if tuple(_TABLE) != METRIC_NAMES:
            raise RuntimeError("METRIC_NAMES must list the metric table's names in order")
    return _TABLE


def higher_is_better(name: str) -> bool:
    return get_metric(name).higher_is_better


@dataclass(frozen=True)
class Objective:
    """The metric a search optimizes, with its direction read from the metric table: every
    part of a run (early stopping, Optuna, ASHA, the best trial, the ranking, the report)
    asks this object which of two scores is better instead of deciding it again.

    The training loop maximizes: `loop_score` turns the metric into a higher-is-better score
    and `from_loop` turns it back."""

    metric: str

    @property
    def higher_is_better(self) -> bool:
        return get_metric(self.metric).higher_is_better

    @property
    def mode(self) -> str:
        """Ray Tune / Optuna direction word."""
        return get_metric(self.metric).mode

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is: `sign * value` is higher-is-better."""
        return 1.0 if self.higher_is_better else -1.0

    def loop_score(self, value: float) -> float:
        return self.sign * value

    def from_loop(self, score: float) -> float:
        return self.sign * score

    def best(self, values: list[float]) -> float | None:
        """The best of the finite values, None when there are none."""
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return None
        return max(finite) if self.higher_is_better else min(finite)

    def is_better(self, a: float, b: float) -> bool:
        """Whether score a beats score b (strictly)."""
        return self.sign * a > self.sign * b


@dataclass
class MetricReport:
    values: dict[str, float]
    # metric name -> why it is NaN
    notes: dict[str, str] = field(default_factory=dict)
    per_class: dict[str, list[float]] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)

    def notes_text(self) -> str:
        return "; ".join(self.notes.values())


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, num_classes: int) -> MetricReport:
    """Every metric in the table, per-class precision/recall/F1/support and the confusion matrix,
    by the rule in the module docstring."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    proba = as_stored(proba)
    y_pred = proba.argmax(axis=1)
    values: dict[str, float] = {}
    notes: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on absent classes; notes record it
        for metric in metric_table().values():
            try:
                values[metric.name] = float(metric.fn(y_true, proba, y_pred, num_classes))
            except UndefinedMetric as why:
                values[metric.name] = math.nan
                notes[metric.name] = str(why)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=_labels(num_classes), zero_division=0
        )
    absent = ~np.isin(_labels(num_classes), np.concatenate([y_true, y_pred]))
    per_class = {
        "precision": np.where(absent, math.nan, precision).tolist(),
        "recall": np.where(absent, math.nan, recall).tolist(),
        "f1": np.where(absent, math.nan, f1).tolist(),
        "support": [float(s) for s in support],
    }
    confusion = confusion_matrix(y_true, y_pred, labels=_labels(num_classes)).tolist()
    return MetricReport(values, notes, per_class, confusion)
