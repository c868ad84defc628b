"""Leaderboard tables from the merged runs: ranked per dataset, with significance vs the best."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.metrics import higher_is_better
from bench.report.stats import corrected_resampled_ttest, kfold_test_train_ratio, wilcoxon_p
from bench.results.reader import RunSet

# (label, metric) shown in the leaderboard, CV mean ± std and test.
SHOWN = [
    ("precision", "precision_macro"),
    ("recall", "recall_macro"),
    ("F1", "f1_macro"),
    ("AUC", "roc_auc"),
    ("accuracy", "accuracy"),
]


def select(
    runs: RunSet, datasets: list[str] | None = None, models: list[str] | None = None
) -> pd.DataFrame:
    """Leaderboard rows after filters; a pairing run several times keeps its newest run."""
    board = runs["leaderboard"].copy()
    if datasets:
        board = board[board.dataset.isin(datasets)]
    if models:
        board = board[board.model.isin(models)]
    board = board.sort_values("run_id").drop_duplicates(["dataset", "model"], keep="last")
    return board.reset_index(drop=True)


def fold_scores(runs: RunSet, row: pd.Series, metric: str) -> np.ndarray:
    """The chosen trial's per-fold scores of one pairing (fold order), empty if unknown."""
    folds = runs["folds"]
    if folds.empty or pd.isna(row.get("best_trial")):
        return np.array([])
    mine = folds[
        (folds.run_id == row.run_id)
        & (folds.dataset == row.dataset)
        & (folds.model == row.model)
        & (folds.trial == row.best_trial)
    ]
    return mine.sort_values("fold")[metric].to_numpy(dtype=float)


def leaderboard(
    runs: RunSet, metric: str, datasets: list[str] | None = None, models: list[str] | None = None
) -> pd.DataFrame:
    """One row per pairing, ranked within its dataset by the CV mean of `metric`, with paired
    tests of the dataset's best model against each other model over the shared folds."""
    board = select(runs, datasets, models)
    sign = 1.0 if higher_is_better(metric) else -1.0
    out = []
    for _, group in board.groupby("dataset", sort=True):
        group = group.copy()
        ok = group.status == "ok"
        key = sign * group[f"cv_{metric}_mean"].astype(float)
        group["rank"] = key.where(ok).rank(ascending=False, method="min")
        group = group.sort_values(["rank", "model"], na_position="last")
        group["p_ttest"], group["p_wilcoxon"] = _tests_against_best(runs, group, metric)
        out.append(group)
    if not out:
        return board.assign(rank=[], p_ttest=[], p_wilcoxon=[])
    result = pd.concat(out, ignore_index=True)
    result["rank"] = result["rank"].astype("Int64")
    result["train_seconds"] = result.search_seconds.fillna(0) + result.refit_seconds.fillna(0)
    return result


def _tests_against_best(runs: RunSet, group: pd.DataFrame, metric: str) -> tuple[list, list]:
    p_t, p_w = [], []
    best = group.iloc[0]
    best_scores = fold_scores(runs, best, metric)
    for _, row in group.iterrows():
        scores = fold_scores(runs, row, metric)
        if row.model == best.model or len(scores) != len(best_scores) or len(scores) < 2:
            p_t.append(math.nan)
            p_w.append(math.nan)
            continue
        _, p = corrected_resampled_ttest(best_scores, scores, kfold_test_train_ratio(len(scores)))
        p_t.append(p)
        p_w.append(wilcoxon_p(best_scores, scores))
    return p_t, p_w


def figure(row: pd.Series, metric: str) -> str:
    """`cv mean ± std (test)` for one metric of one row."""
    mean, std, test = (
        row.get(f"cv_{metric}_mean"),
        row.get(f"cv_{metric}_std"),
        row.get(f"test_{metric}"),
    )
    if mean is None or pd.isna(mean):
        return "-"
    text = f"{mean:.3f} ± {std:.3f}" if not pd.isna(std) else f"{mean:.3f}"
    return f"{text} ({test:.3f})" if not pd.isna(test) else text


def _p(value: float) -> str:
    return "-" if pd.isna(value) else (f"{value:.3f}" if value >= 0.001 else "<0.001")


def display_rows(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as strings, one column per shown figure (for Markdown and HTML)."""
    rows = []
    for _, row in board.iterrows():
        rows.append(
            {
                "dataset": row.dataset,
                "rank": "-" if pd.isna(row["rank"]) else int(row["rank"]),
                "model": row.model,
                **{label: figure(row, metric) for label, metric in SHOWN},
                "parameters": "-" if pd.isna(row.num_params) else f"{int(row.num_params):,}",
                "train s": "-" if pd.isna(row.train_seconds) else f"{row.train_seconds:.1f}",
                "trials": int(row.num_trials) if not pd.isna(row.num_trials) else 0,
                "p (t-test)": _p(row.p_ttest),
                "p (Wilcoxon)": _p(row.p_wilcoxon),
                "status": row.status if row.status == "ok" else f"{row.status}: {row.error}",
            }
        )
    return pd.DataFrame(rows)


def to_markdown(board: pd.DataFrame, metric: str) -> str:
    """Per dataset, a Markdown table ranked by `metric`."""
    shown = display_rows(board)
    lines = [
        f"# Leaderboard (ranked by cross-validated {metric})",
        "",
        "Figures: CV mean ± std over folds (held-out test score). p: best model vs this one "
        "over the shared folds (corrected resampled t-test; Wilcoxon signed-rank).",
        "",
    ]
    for dataset, group in shown.groupby("dataset", sort=True):
        columns = [c for c in group.columns if c != "dataset"]
        lines += [
            f"## {dataset}",
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
        ]
        for _, row in group.iterrows():
            cells = [str(row[c]).replace("|", "\\|") for c in columns]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
