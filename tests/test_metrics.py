import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from bench.metrics import (
    METRIC_NAMES,
    compute_metrics,
    get_metric,
    higher_is_better,
    metric_table,
)
from bench.results.schema import dumps
from bench.testing.classification import random_problem, sklearn_metrics

# 3 classes, 6 samples; predictions: argmax of each row.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
PROBA = np.array(
    [
        [0.8, 0.1, 0.1],  # 0 -> 0
        [0.3, 0.6, 0.1],  # 0 -> 1
        [0.2, 0.7, 0.1],  # 1 -> 1
        [0.1, 0.8, 0.1],  # 1 -> 1
        [0.1, 0.2, 0.7],  # 2 -> 2
        [0.5, 0.1, 0.4],  # 2 -> 0
    ]
)


def test_values_match_hand_computation():
    report = compute_metrics(Y_TRUE, PROBA, 3)
    v = report.values
    assert v["accuracy"] == pytest.approx(4 / 6)
    # precision per class: 0: 1/2, 1: 2/3, 2: 1/1 ; recall: 1/2, 1, 1/2
    precision = [1 / 2, 2 / 3, 1.0]
    recall = [1 / 2, 1.0, 1 / 2]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall, strict=True)]
    assert v["precision_macro"] == pytest.approx(np.mean(precision))
    assert v["recall_macro"] == pytest.approx(np.mean(recall))
    assert v["f1_macro"] == pytest.approx(np.mean(f1))
    assert v["balanced_accuracy"] == pytest.approx(np.mean(recall))
    # balanced classes: weighted averages equal macro ones
    assert v["f1_weighted"] == pytest.approx(np.mean(f1))
    assert v["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.3, 0.7, 0.8, 0.7, 0.4])))
    assert report.per_class["support"] == [2.0, 2.0, 2.0]
    assert report.per_class["precision"] == pytest.approx(precision)
    assert report.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_roc_auc_one_vs_rest_by_hand():
    # class 0 vs rest: positives score 0.8, 0.3; negatives 0.2, 0.1, 0.1, 0.5
    # pairs won: 0.8 beats all 4; 0.3 beats 0.2, 0.1, 0.1 -> 7/8
    auc0 = 7 / 8
    # class 1: positives 0.7, 0.8; negatives 0.1, 0.6, 0.2, 0.1 -> 8/8
    auc1 = 1.0
    # class 2: positives 0.7, 0.4; negatives 0.1, 0.1, 0.1, 0.1 -> 8/8
    auc2 = 1.0
    assert compute_metrics(Y_TRUE, PROBA, 3).values["roc_auc"] == pytest.approx(
        (auc0 + auc1 + auc2) / 3
    )


def test_binary_auc_is_plain_auc():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.65, 0.35], [0.2, 0.8]])
    # positives 0.35, 0.8 vs negatives 0.1, 0.6: 0.35>0.1, 0.8>both -> 3/4
    assert compute_metrics(y, proba, 2).values["roc_auc"] == pytest.approx(0.75)


def test_absent_class_gives_nan_with_reason_not_a_crash():
    y = np.array([0, 0, 1, 1])  # class 2 never appears
    proba = np.array([[0.7, 0.2, 0.1]] * 2 + [[0.1, 0.8, 0.1]] * 2)
    report = compute_metrics(y, proba, 3)
    assert math.isnan(report.values["roc_auc"])
    assert "absent" in report.notes["roc_auc"]
    assert report.values["accuracy"] == 1.0


def test_top5_only_with_more_than_five_classes():
    report = compute_metrics(Y_TRUE, PROBA, 3)
    assert (
        math.isnan(report.values["top5_accuracy"]) and "5 or fewer" in report.notes["top5_accuracy"]
    )
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(10), size=50)
    y = rng.integers(0, 10, size=50)
    ranks = (-proba).argsort(axis=1)[:, :5]
    expected = np.mean([y[i] in ranks[i] for i in range(50)])
    assert compute_metrics(y, proba, 10).values["top5_accuracy"] == pytest.approx(expected)


def test_the_table_drives_names_and_directions():
    assert tuple(metric_table()) == METRIC_NAMES
    for name in METRIC_NAMES:
        metric = get_metric(name)
        assert (
            metric.higher_is_better
            == higher_is_better(name)
            == (name not in ("log_loss", "brier", "ece"))
        )
        assert metric.mode == ("max" if metric.higher_is_better else "min")


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_perfect_predictions_score_best(name):
    y = np.repeat(np.arange(7), 3)
    perfect = np.eye(7)[y] * 0.93 + 0.01  # rows sum to 1, as probabilities must
    worst = np.roll(np.eye(7), 1, axis=1)[y] * 0.93 + 0.01
    good, bad = (
        compute_metrics(y, perfect, 7).values[name],
        compute_metrics(y, worst, 7).values[name],
    )
    assert (good > bad) if higher_is_better(name) else (good < bad)


def test_a_class_absent_from_labels_and_predictions_is_left_out():
    y = np.array([0, 0, 1, 1])  # class 2 neither occurs nor is predicted
    proba = np.array([[0.6, 0.4, 0.0], [0.4, 0.6, 0.0], [0.1, 0.9, 0.0], [0.2, 0.8, 0.0]])
    report = compute_metrics(y, proba, 3)
    # class 0: precision 1, recall 1/2, F1 2/3; class 1: precision 2/3, recall 1, F1 4/5
    assert report.values["precision_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert report.values["recall_macro"] == pytest.approx((1 / 2 + 1) / 2)
    assert report.values["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert report.values["balanced_accuracy"] == pytest.approx(3 / 4)
    assert report.per_class["f1"][:2] == pytest.approx([2 / 3, 4 / 5])
    assert math.isnan(report.per_class["f1"][2]) and math.isnan(report.per_class["precision"][2])
    assert report.per_class["support"] == [2.0, 2.0, 0.0]
    assert json.loads(dumps(report.per_class))["recall"][2] is None


def test_a_class_in_the_labels_but_never_predicted_counts_as_zero():
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.3, 0.7, 0.0], [0.6, 0.4, 0.0]])
    report = compute_metrics(y, proba, 3)
    # precision: 1/2, 1/2, 0 (nothing predicted as 2) ; recall: 1, 1, 0
    assert report.values["precision_macro"] == pytest.approx(1 / 3)
    assert report.values["recall_macro"] == pytest.approx(2 / 3)
    assert report.per_class["precision"] == [0.5, 0.5, 0.0]


def test_log_loss_is_on_the_stored_float32_probabilities():
    y = np.array([0, 1, 1])
    proba = np.array([[0.0, 1.0], [0.3, 0.7], [0.6, 0.4]])  # an exact 0 for the true class
    stored = proba.astype(np.float32)
    got = compute_metrics(y, proba, 2).values["log_loss"]
    assert got == skm.log_loss(y, stored, labels=[0, 1])
    # clipped at float32's epsilon, not float64's: -log(1.19e-7) = 15.9, not -log(2.2e-16) = 36.0
    clipped = -math.log(np.finfo(np.float32).eps)
    assert got == pytest.approx((clipped - math.log(0.7) - math.log(0.4)) / 3, rel=1e-6)


def test_rows_that_do_not_sum_to_one_are_scored_as_they_are():
    y = np.array([0, 1, 2, 2])
    proba = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]], dtype=np.float32
    )
    proba *= np.float32(1 + 4e-6)  # within ROC-AUC's tolerance, not renormalized for log loss
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compute_metrics lets no warning out
        report = compute_metrics(y, proba, 3)
    assert report.values["log_loss"] == skm.log_loss(y, proba, labels=[0, 1, 2])
    assert report.values["roc_auc"] == skm.roc_auc_score(y, proba, multi_class="ovr")


def test_scores_that_are_not_probabilities_give_roc_auc_nan_with_reason():
    y = np.array([0, 1, 2])
    proba = np.array([[0.5, 0.1, 0.1], [0.1, 0.5, 0.1], [0.1, 0.1, 0.5]])
    report = compute_metrics(y, proba, 3)
    assert math.isnan(report.values["roc_auc"]) and "sum to 1" in report.notes["roc_auc"]
    assert report.values["accuracy"] == 1.0


def test_ties_predict_the_lowest_class_index():
    y = np.array([1, 1])
    proba = np.array([[0.5, 0.5], [0.25, 0.75]])
    report = compute_metrics(y, proba, 2)
    assert report.confusion == [[0, 0], [1, 1]]


@st.composite
def problems(draw):
    """(y_true, float32 proba, num_classes): some classes absent from the labels, some never
    predicted, exact zeros, ties, rows off 1 by float32 rounding and a little drift."""
    num_classes = draw(st.integers(2, 11))
    samples = draw(st.integers(2, 40))
    classes = st.integers(0, num_classes - 1)
    in_labels = draw(st.lists(classes, min_size=1, max_size=num_classes, unique=True))
    never_predicted = draw(st.lists(classes, max_size=num_classes - 1, unique=True))
    coarse = draw(st.booleans())  # few distinct values: ties everywhere
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y, proba = random_problem(rng, num_classes, samples, in_labels, never_predicted, coarse)
    drift = rng.uniform(-3e-6, 3e-6, size=(samples, 1)).astype(np.float32)
    proba = np.minimum(proba * (1 + drift), np.float32(1))
    return y, proba, num_classes


@settings(max_examples=60, deadline=None)
@given(problems())
def test_every_value_equals_scikit_learn(problem):
    y, proba, num_classes = problem
    report = compute_metrics(y, proba, num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = sklearn_metrics(y, proba, num_classes)
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y, proba.argmax(axis=1), zero_division=0
        )
    for name in METRIC_NAMES:
        # scikit-learn sums a Brier score of float32 probabilities in float32; bench in float64
        tolerance = {"rel": 1e-6, "abs": 1e-9} if name == "brier" else {"abs": 1e-9}
        assert report.values[name] == pytest.approx(expected[name], nan_ok=True, **tolerance), name
    present = np.union1d(y, proba.argmax(axis=1))
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        per_class = np.full(num_classes, math.nan)
        per_class[present] = values
        assert report.per_class[name] == pytest.approx(per_class.tolist(), abs=1e-9, nan_ok=True)
    assert (
        report.confusion
        == skm.confusion_matrix(y, proba.argmax(axis=1), labels=range(num_classes)).tolist()
    )
