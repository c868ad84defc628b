import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from bench.bootstrap import Interval, metric_intervals, paired_difference, weighted_metrics
from bench.metrics import METRIC_NAMES, compute_metrics
from bench.testing.classification import random_problem, textbook_ece


@st.composite
def weighted_problems(draw):
    """(y_true, float32 proba, num_classes, integer weights (rows, n)) with absent and
    never-predicted classes, exact zeros, ties and rows off 1 by float32 rounding."""
    num_classes = draw(st.integers(2, 11))
    samples = draw(st.integers(2, 40))
    classes = st.integers(0, num_classes - 1)
    in_labels = draw(st.lists(classes, min_size=1, max_size=num_classes, unique=True))
    never_predicted = draw(st.lists(classes, max_size=num_classes - 1, unique=True))
    coarse = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y, proba = random_problem(rng, num_classes, samples, in_labels, never_predicted, coarse)
    weights = rng.integers(0, 4, size=(3, samples)).astype(float)
    weights[np.arange(3), rng.integers(0, samples, size=3)] += 1  # no row weighs nothing
    return y, proba, num_classes, weights


def sklearn_weighted(y, proba, num_classes, weight):
    """Each metric by scikit-learn with sample_weight, on the samples that weigh something."""
    kept = weight > 0
    y, proba, weight = y[kept], proba[kept], weight[kept]
    y_pred = proba.argmax(axis=1)
    labels = list(range(num_classes))
    values = {
        "accuracy": skm.accuracy_score(y, y_pred, sample_weight=weight),
        "balanced_accuracy": skm.balanced_accuracy_score(y, y_pred, sample_weight=weight),
    }
    for name, score in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        for average in ("macro", "weighted"):
            values[f"{name}_{average}"] = score(
                y, y_pred, average=average, zero_division=0, sample_weight=weight
            )
    if len(np.unique(y)) < num_classes:
        values["roc_auc"] = math.nan
    elif num_classes == 2:
        values["roc_auc"] = skm.roc_auc_score(y, proba[:, 1], sample_weight=weight)
    else:
        values["roc_auc"] = skm.roc_auc_score(
            y, proba, multi_class="ovr", labels=labels, sample_weight=weight
        )
    values["log_loss"] = skm.log_loss(y, proba, labels=labels, sample_weight=weight)
    values["top5_accuracy"] = (
        math.nan
        if num_classes <= 5
        else skm.top_k_accuracy_score(y, proba, k=5, labels=labels, sample_weight=weight)
    )
    values["brier"] = skm.brier_score_loss(y, proba, labels=labels, sample_weight=weight)
    values["ece"] = textbook_ece(y, proba, weight)
    return values


@settings(max_examples=30, deadline=None)
@given(weighted_problems())
def test_weighted_metrics_equal_scikit_learn_with_sample_weight(problem):
    y, proba, num_classes, weights = problem
    got = weighted_metrics(y, proba, weights, num_classes)
    assert list(got) == list(METRIC_NAMES)
    for row, weight in enumerate(weights):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = sklearn_weighted(y, proba, num_classes, weight)
        for name in METRIC_NAMES:
            # scikit-learn sums a Brier score of float32 probabilities in float32
            tolerance = {"rel": 1e-6, "abs": 1e-9} if name == "brier" else {"abs": 1e-9}
            assert got[name][row] == pytest.approx(expected[name], nan_ok=True, **tolerance), name


@settings(max_examples=20, deadline=None)
@given(weighted_problems())
def test_a_row_of_ones_gives_compute_metrics(problem):
    y, proba, num_classes, _ = problem
    ones = weighted_metrics(y, proba, np.ones((1, len(y))), num_classes)
    report = compute_metrics(y, proba, num_classes)
    for name in METRIC_NAMES:
        # scikit-learn averages unweighted float32 losses in float32, weighted ones in float64
        tolerance = {"rel": 1e-6} if name == "log_loss" else {"abs": 1e-9}
        assert ones[name][0] == pytest.approx(report.values[name], nan_ok=True, **tolerance)


def test_roc_auc_is_nan_for_a_row_that_gives_a_class_no_weight():
    y = np.array([0, 1, 2, 2])
    proba = np.full((4, 3), 1 / 3, dtype=np.float32)
    weights = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]])
    auc = weighted_metrics(y, proba, weights, 3)["roc_auc"]
    assert auc[0] == 0.5 and math.isnan(auc[1])


def replicates(repeats, samples, num_classes, skill, seed):
    """Test splits of a classifier that puts `skill` on the true class's logit."""
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(repeats):
        y = np.arange(samples) % num_classes
        logits = rng.normal(size=(samples, num_classes))
        logits[np.arange(samples), y] += skill
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        splits.append((y, proba.astype(np.float32)))
    return splits


def test_intervals_are_seeded():
    splits = replicates(3, 90, 7, 1.0, seed=0)
    first = metric_intervals(splits, 7, seed=1, resamples=200)
    assert metric_intervals(splits, 7, seed=1, resamples=200) == first
    other = metric_intervals(splits, 7, seed=2, resamples=200)
    assert other["f1_macro"] != first["f1_macro"]
    assert other["f1_macro"].estimate == first["f1_macro"].estimate


def test_estimate_is_the_mean_over_repeats_and_lies_in_the_interval():
    splits = replicates(3, 120, 7, 1.0, seed=0)
    intervals = metric_intervals(splits, 7, seed=0, resamples=300)
    reports = [compute_metrics(y, proba, 7).values for y, proba in splits]
    assert list(intervals) == list(METRIC_NAMES)
    for name, interval in intervals.items():
        assert interval.estimate == pytest.approx(np.mean([r[name] for r in reports]))
        assert interval.low < interval.estimate < interval.high, name


def test_nan_repeats_are_left_out_of_the_estimate():
    splits = replicates(2, 60, 3, 1.0, seed=0)
    y, proba = splits[1]
    splits[1] = (np.where(y == 2, 1, y), proba)  # class 2 absent: ROC-AUC undefined there
    interval = metric_intervals(splits, 3, seed=0, resamples=100)["roc_auc"]
    assert interval.estimate == compute_metrics(*splits[0], 3).values["roc_auc"]
    assert not math.isnan(interval.low)


def test_the_accuracy_interval_has_the_binomial_width():
    accuracy, samples = 0.8, 2000
    y = np.arange(samples) % 3
    predicted = np.where(np.arange(samples) < accuracy * samples, y, (y + 1) % 3)
    proba = np.full((samples, 3), 0.2, dtype=np.float32)
    proba[np.arange(samples), predicted] = 0.6
    interval = metric_intervals([(y, proba)], 3, seed=0)["accuracy"]
    normal_width = 2 * 1.96 * math.sqrt(accuracy * (1 - accuracy) / samples)
    assert interval.estimate == accuracy
    assert interval.high - interval.low == pytest.approx(normal_width, rel=0.25)


def test_repeats_are_resampled_too():
    y = np.array([0, 1] * 10)
    right = np.eye(2, dtype=np.float32)[y]
    wrong = np.eye(2, dtype=np.float32)[1 - y]
    # every resample of one repeat's samples scores 1 or 0: only drawing repeats spreads it
    interval = metric_intervals([(y, right), (y, wrong)], 2, seed=0, resamples=400)["accuracy"]
    assert (interval.estimate, interval.low, interval.high) == (0.5, 0.0, 1.0)
    alone = metric_intervals([(y, right)], 2, seed=0, resamples=50)["accuracy"]
    assert (alone.low, alone.high) == (1.0, 1.0)


def test_a_model_against_itself_differs_by_exactly_zero():
    splits = replicates(2, 80, 7, 1.0, seed=0)
    for metric in ("f1_macro", "roc_auc", "log_loss"):
        assert paired_difference(splits, splits, metric, 7, seed=0, resamples=50) == Interval(
            0.0, 0.0, 0.0
        )


def test_paired_difference_is_antisymmetric_and_its_estimate_the_mean_difference():
    better = replicates(2, 100, 5, 2.0, seed=0)
    worse = replicates(2, 100, 5, 0.5, seed=1)
    forward = paired_difference(better, worse, "accuracy", 5, seed=3, resamples=300)
    backward = paired_difference(worse, better, "accuracy", 5, seed=3, resamples=300)
    per_repeat = [
        compute_metrics(*a, 5).values["accuracy"] - compute_metrics(*b, 5).values["accuracy"]
        for a, b in zip(better, worse, strict=True)
    ]
    assert forward.estimate == pytest.approx(np.mean(per_repeat))
    assert (forward.low, forward.high) == pytest.approx((-backward.high, -backward.low))
    assert 0 < forward.low < forward.estimate < forward.high


def test_paired_difference_refuses_different_test_splits():
    splits = replicates(2, 50, 3, 1.0, seed=0)
    shifted = [((y + 1) % 3, proba) for y, proba in splits]
    with pytest.raises(ValueError, match="different labels"):
        paired_difference(splits, shifted, "accuracy", 3, seed=0)
    with pytest.raises(ValueError, match="same repeats"):
        paired_difference(splits, splits[:1], "accuracy", 3, seed=0)
    with pytest.raises(ValueError, match="unknown metric"):
        paired_difference(splits, splits, "accuracy_macro", 3, seed=0)
