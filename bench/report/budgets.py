"""What each pairing's search cost, in the open: a warning when a dataset's models got
compute budgets far apart, best-so-far CV score against compute spent, and which model leads
at equal compute (a longer search can buy a better rank)."""

from __future__ import annotations

import math

import pandas as pd

from bench.metrics import Objective

BUDGET_RATIO = 2.0  # warn when a group's pairings got compute more than this far apart
EQUAL_COMPUTE_FRACTIONS = (0.25, 0.5, 1.0)  # of the smallest pairing's search compute


def budget_warnings(board: pd.DataFrame) -> list[str]:
    """One line per group whose finished pairings got compute budgets more than 2x apart:
    a longer search can buy a better rank, which is then the budget's, not the model's."""
    warnings = []
    for name, rows in board.groupby("group", sort=True):
        spent = compute_seconds(rows[rows.status == "ok"])
        spent = spent[spent > 0]
        if len(spent) < 2 or spent.max() <= BUDGET_RATIO * spent.min():
            continue
        cheapest, dearest = rows.model[spent.idxmin()], rows.model[spent.idxmax()]
        warnings.append(
            f"{name}: compute budgets differ {spent.max() / spent.min():.1f}x ({cheapest} "
            f"{spent.min():,.0f} s to {dearest} {spent.max():,.0f} s of CPU + GPU); "
            f"ranks may reflect budgets as much as models"
        )
    return warnings


def compute_seconds(rows: pd.DataFrame) -> pd.Series:
    """CPU- plus GPU-seconds of each pairing's trials, folds and refits."""
    return rows.cpu_seconds.astype(float).fillna(0) + rows.gpu_seconds.astype(float).fillna(0)


def search_progress(trials: pd.DataFrame) -> pd.DataFrame:
    """Per model, its trials in order with the compute spent so far and the best CV score so
    far (finished trials only; pruned and failed ones cost compute but score nothing)."""
    frames = []
    for model, rows in trials.groupby("model", sort=True):
        rows = rows.sort_values("trial")
        objective = Objective(rows.metric.iloc[0])
        scores = rows.score.astype(float).where(rows.status == "ok")
        best = scores.cummax() if objective.higher_is_better else scores.cummin()
        frames.append(
            pd.DataFrame(
                {
                    "model": model,
                    "trial": rows.trial.to_numpy(),
                    "compute": compute_seconds(rows).cumsum().to_numpy(),
                    "best": best.to_numpy(),
                }
            )
        )
    columns = ["model", "trial", "compute", "best"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def equal_compute_budgets(
    progress: pd.DataFrame, fractions: tuple[float, ...] = EQUAL_COMPUTE_FRACTIONS
) -> list[float]:
    """Compute-seconds at each fraction of the smallest pairing's search compute."""
    totals = progress.groupby("model").compute.max()
    smallest = float(totals.min()) if len(totals) else math.nan
    return [fraction * smallest for fraction in fractions]


def rank_at_equal_compute(
    progress: pd.DataFrame, higher: bool, fractions: tuple[float, ...] = EQUAL_COMPUTE_FRACTIONS
) -> pd.DataFrame:
    """Which model wins when every one gets the same compute: per model, its best CV score
    after the trials that fit in each fraction of the smallest pairing's search compute, and
    its rank there (NaN when not one finished trial fits)."""
    table = pd.DataFrame(index=pd.Index(sorted(progress.model.unique()), name="model"))
    for fraction, budget in zip(fractions, equal_compute_budgets(progress, fractions), strict=True):
        # the smallest search's own total must fit its 100% budget despite float rounding
        within = progress[progress.compute <= budget * (1 + 1e-9)]
        # best so far only improves, so the last finished score within budget is the best
        best = within.groupby("model").best.last().reindex(table.index)
        table[f"best_{fraction:g}"] = best
        table[f"rank_{fraction:g}"] = best.rank(ascending=not higher, method="min")
    return table.reset_index()
