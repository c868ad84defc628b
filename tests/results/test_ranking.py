"""The one ranking: direction from the metric, shared ranks for ties, and the same order in a
run's leaderboard.parquet (bench.results.finalize) and in a report (bench.report.tables)."""

import math

import pandas as pd
import pytest

from bench.metrics import METRIC_NAMES, Objective
from bench.report.tables import leaderboard
from bench.results.finalize import rank_pairings
from bench.results.ranking import competition_ranks, ranked_order
from bench.results.reader import RunSet
from bench.results.schema import to_table
from bench.testing.rows import sparse_row


def test_higher_is_better_ranks_the_largest_first():
    assert competition_ranks([0.7, 0.9, 0.8], Objective("f1_macro")) == [3, 1, 2]


def test_lower_is_better_ranks_the_smallest_first():
    assert competition_ranks([0.7, 0.9, 0.8], Objective("log_loss")) == [1, 3, 2]


@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
def test_ties_share_the_better_rank_and_skip_the_next(metric):
    best_first = [0.7, 0.6, 0.6, 0.5] if metric == "accuracy" else [0.5, 0.6, 0.6, 0.7]
    assert competition_ranks(best_first, Objective(metric)) == [1, 2, 2, 4]


def test_missing_scores_get_no_rank_and_cost_no_place():
    ranks = competition_ranks([None, math.nan, 0.5, 0.6], Objective("accuracy"))
    assert ranks == [None, None, 2, 1]
    assert competition_ranks([], Objective("accuracy")) == []


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_rank_one_is_the_objectives_best(metric):
    objective, values = Objective(metric), [0.31, 0.12, 0.58, 0.44]
    ranks = competition_ranks(values, objective)
    assert values[ranks.index(1)] == objective.best(values)
    for a, rank_a in zip(values, ranks, strict=True):
        for b, rank_b in zip(values, ranks, strict=True):
            assert (rank_a < rank_b) == objective.is_better(a, b)


def test_order_is_by_rank_then_name_with_the_unranked_last():
    names = ["d", "a", "e", "b", "c"]
    assert ranked_order([2, None, 1, 2, None], names) == [2, 3, 0, 1, 4]


def _board(metric: str) -> list[dict]:
    """Five pairings of one dataset: a tie, a failed one and one whose metric is undefined."""
    tests = {"a": 0.30, "b": 0.10, "c": 0.30, "d": None, "e": math.nan}
    return [
        sparse_row("leaderboard", run_id="r", benchmark="b", dataset="d1", model=model)
        | {"metric": metric, "fingerprint": "f", f"test_{metric}": value}
        | {"status": "failed" if model == "d" else "ok"}
        for model, value in tests.items()
    ]


@pytest.mark.parametrize("metric", ["f1_macro", "log_loss"])
def test_a_runs_leaderboard_and_a_report_rank_alike(metric):
    ranked = rank_pairings(_board(metric))
    scored = {
        "f1_macro": [("a", 1), ("c", 1), ("b", 3)],
        "log_loss": [("b", 1), ("a", 2), ("c", 2)],
    }
    expected = scored[metric] + [("d", None), ("e", None)]  # failed, undefined: by name
    assert [(r["model"], r["rank"]) for r in ranked] == expected
    tables = {"leaderboard": ranked, "replicates": [], "predictions": []}
    runs = RunSet(["r"], {name: to_table(name, rows).to_pandas() for name, rows in tables.items()})
    report = leaderboard(runs, metric)
    assert report.model.tolist() == [r["model"] for r in ranked]
    assert [None if pd.isna(r) else r for r in report["rank"]] == [r["rank"] for r in ranked]


def test_pairings_searched_on_different_metrics_are_not_ranked_together():
    rows = _board("f1_macro")
    rows[1]["metric"] = "accuracy"
    with pytest.raises(ValueError, match="d1: its pairings searched on different metrics"):
        rank_pairings(rows)
