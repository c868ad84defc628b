import math

import numpy as np
import pytest

from bench.metrics import (
    LOWER_IS_BETTER,
    METRIC_NAMES,
    compute_metrics,
    get_metric,
    higher_is_better,
    metric_table,
)

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
        assert metric.higher_is_better == higher_is_better(name) == (name not in LOWER_IS_BETTER)
        assert metric.mode == ("max" if metric.higher_is_better else "min")


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_perfect_predictions_score_best(name):
    y = np.repeat(np.arange(7), 3)
    perfect = np.eye(7)[y] * 0.94 + 0.01
    worst = np.roll(np.eye(7), 1, axis=1)[y] * 0.94 + 0.01
    good, bad = (
        compute_metrics(y, perfect, 7).values[name],
        compute_metrics(y, worst, 7).values[name],
    )
    assert (good > bad) if higher_is_better(name) else (good < bad)
