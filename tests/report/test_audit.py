"""The data audit in the report (bench.report.audit): the leaderboard's columns without the
flagged images, and the notes on ranks that change."""

import pandas as pd
import pytest

from bench.report.audit import audit_notes, with_audit_scores
from bench.report.tables import display_rows
from bench.results.schema import TABLES

# what the reader gives for runs with no audit: the table empty, with its columns
NO_AUDIT = TABLES["audit_ranking"].empty_table().to_pandas()


def ranking_row(model, subset, score, rank, rank_all, run_id="r1", metric="f1_macro"):
    return {
        "run_id": run_id,
        "benchmark": "b",
        "dataset": "d",
        "model": model,
        "metric": metric,
        "subset": subset,
        "test_samples": 10,
        "removed": 0 if subset == "all" else 2,
        "test_score": score,
        "test_score_low": score - 0.05,
        "test_score_high": min(score + 0.05, 1.0),
        "rank": rank,
        "rank_all": rank_all,
    }


RANKING = pd.DataFrame(
    [
        ranking_row("a", "all", 0.90, 1, 1),
        ranking_row("b", "all", 0.80, 2, 2),
        ranking_row("a", "without_duplicates", 0.91, 1, 1),
        ranking_row("b", "without_duplicates", 0.82, 2, 2),
        ranking_row("a", "without_label_issues", 0.85, 2, 1),
        ranking_row("b", "without_label_issues", 0.95, 1, 2),
        # another metric's audit: not this report's figures
        ranking_row("a", "without_duplicates", 0.10, 1, 1, metric="accuracy"),
    ]
)


def board(run_ids=("r1", "r1", "r2")):
    return pd.DataFrame(
        {"run_id": list(run_ids), "dataset": "d", "model": ["a", "b", "c"], "group": "d"}
    )


def test_each_pairing_gains_its_scores_without_the_flagged_images():
    scored = with_audit_scores(board(), RANKING, "f1_macro").set_index("model")
    assert scored.loc["a", "test_without_duplicates"] == pytest.approx(0.91)
    assert scored.loc["b", "test_without_label_issues"] == pytest.approx(0.95)
    assert scored.loc["b", "test_without_label_issues_low"] == pytest.approx(0.90)
    # c's run was not audited: no figure, not another pairing's
    assert scored.loc[["c"], "test_without_duplicates"].isna().all()


def test_a_report_on_another_metric_shows_no_audit_figures():
    scored = with_audit_scores(board(), RANKING, "roc_auc")
    assert scored["test_without_duplicates"].isna().all()
    assert scored["test_without_label_issues"].isna().all()


def test_no_audit_table_leaves_the_columns_empty():
    scored = with_audit_scores(board(), NO_AUDIT, "f1_macro")
    assert scored["test_without_duplicates"].isna().all()


def test_the_shown_leaderboard_has_the_columns_only_where_an_audit_ran():
    def shown(frame):
        rows = frame.assign(
            rank=[1, 2, 3],
            vs_best="-",
            num_params=1,
            num_trials=1,
            trial_epochs=1,
            cpu_seconds=1.0,
            gpu_seconds=0.0,
            repeats=1,
            status="ok",
            test_f1_macro=[0.9, 0.8, 0.7],
        )
        return display_rows(rows, "f1_macro")

    audited = shown(with_audit_scores(board(), RANKING, "f1_macro"))
    assert audited["test F1 without duplicates"].tolist() == [
        "0.910 [0.860, 0.960]",
        "0.820 [0.770, 0.870]",
        "-",
    ]
    assert "test F1 without label issues" in audited
    plain = shown(with_audit_scores(board(), NO_AUDIT, "f1_macro"))
    assert not any("without" in column for column in plain.columns)


def test_a_rank_that_changes_is_a_note():
    notes = audit_notes(RANKING)
    assert notes == [
        "data audit, d: without label issues, ranks change: a 1 -> 2, b 2 -> 1 "
        "(the run's ranks, on its own metric)"
    ]
    assert audit_notes(RANKING[RANKING["subset"] != "without_label_issues"]) == []
    assert audit_notes(NO_AUDIT) == []
