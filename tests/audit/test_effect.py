"""The ranking with flagged test images left out (bench.audit.effect)."""

import json

import numpy as np
import pandas as pd

from bench.audit.effect import held_out_keys, item_key, rank_changes, ranking_rows


def one_hot(labels, classes=2, sure=0.9):
    proba = np.full((len(labels), classes), (1 - sure) / (classes - 1), dtype=np.float32)
    proba[np.arange(len(labels)), labels] = sure
    return proba


def tables(right_a, right_b, labels):
    """Two models on one repeat's 6 test images (dataset rows 10..15); `right_*`: which
    images each predicts right."""
    splits = pd.DataFrame(
        {
            "dataset": "d",
            "repeat": 0,
            "role": "test",
            "sample": range(6),
            "source_index": range(10, 16),
        }
    )
    rows = []
    for model, right in (("a", right_a), ("b", right_b)):
        predicted = np.where(right, labels, 1 - labels)
        for sample, proba in enumerate(one_hot(predicted)):
            rows.append(
                {
                    "dataset": "d",
                    "model": model,
                    "repeat": 0,
                    "sample": sample,
                    "y_true": int(labels[sample]),
                    "proba": proba,
                }
            )
    leaderboard = pd.DataFrame(
        {
            "run_id": "r",
            "benchmark": "b",
            "dataset": "d",
            "model": ["a", "b"],
            "status": "ok",
            "metric": "accuracy",
            "classes": json.dumps(["x", "y"]),
        }
    )
    return leaderboard, pd.DataFrame(rows), splits


def test_leaving_out_flagged_images_can_change_the_ranks_and_says_so():
    labels = np.array([0, 1, 0, 1, 0, 1])
    # a is right on all but image 5; b on all but images 0 and 1, which are flagged
    leaderboard, predictions, splits = tables(
        np.array([1, 1, 1, 1, 1, 0], bool), np.array([0, 0, 1, 1, 1, 1], bool), labels
    )
    flagged = {"without_label_issues": {"d": {item_key(10, 0), item_key(11, 1)}}}

    rows = ranking_rows(
        leaderboard, predictions, held_out_keys(splits), flagged, seed=0, resamples=200
    )

    by = {(r["subset"], r["model"]): r for r in rows}
    assert by[("all", "a")]["rank"] == 1 and by[("all", "b")]["rank"] == 2
    assert by[("without_label_issues", "b")]["test_score"] == 1.0
    assert by[("without_label_issues", "b")]["rank"] == 1
    assert by[("without_label_issues", "b")]["removed"] == 2
    assert by[("without_label_issues", "b")]["test_samples"] == 4
    assert by[("without_label_issues", "b")]["rank_all"] == 2
    low, high = by[("all", "a")]["test_score_low"], by[("all", "a")]["test_score_high"]
    assert low <= by[("all", "a")]["test_score"] <= high
    assert rank_changes(rows) == ["d: without label issues, ranks change: b 2 -> 1, a 1 -> 2"]


def test_an_official_test_row_is_known_by_its_row():
    assert item_key(-1, 0) == -1 and item_key(-1, 4) == -5 and item_key(7, 3) == 7


def test_a_subset_that_leaves_no_test_image_has_no_rows_and_no_error():
    """A small dataset whose every test image was flagged: nothing to score without them."""
    labels = np.array([0, 1, 0, 1, 0, 1])
    leaderboard, predictions, splits = tables(np.ones(6, bool), np.ones(6, bool), labels)
    everything = {"without_label_issues": {"d": {item_key(10 + i, i) for i in range(6)}}}

    rows = ranking_rows(
        leaderboard, predictions, held_out_keys(splits), everything, seed=0, resamples=200
    )

    assert {r["subset"] for r in rows} == {"all"} and len(rows) == 2
    assert rank_changes(rows) == []
