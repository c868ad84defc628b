"""What the flagged images do to the ranking: each pairing's held-out score on every repeat's
test split with them left out, with the leaderboard's bootstrap interval, ranked again."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics import Objective
from bench.results.ranking import competition_ranks
from bench.results.schema import make_row

ALL = "all"
# the test splits without the audit's duplicated images, and without its flagged labels
SUBSETS = ("without_duplicates", "without_label_issues")


def item_key(source_index: int, sample: int) -> int:
    """One image of a dataset across repeats: its row in the loaded dataset, or (in an
    official test split, whose rows the repeats share) -(test row + 1)."""
    return int(source_index) if source_index >= 0 else -(int(sample) + 1)


def held_out_keys(splits: pd.DataFrame) -> dict[tuple[str, int], np.ndarray]:
    """(dataset, repeat) -> the item key of each test row, in row order."""
    test = splits[splits["role"] == "test"].sort_values("sample")
    return {
        (dataset, int(repeat)): np.array(
            [item_key(s, n) for s, n in zip(group["source_index"], group["sample"], strict=True)]
        )
        for (dataset, repeat), group in test.groupby(["dataset", "repeat"])
    }


def ranking_rows(
    leaderboard: pd.DataFrame,
    predictions: pd.DataFrame,
    keys: dict[tuple[str, int], np.ndarray],
    left_out: dict[str, dict[str, set[int]]],
    seed: int,
    resamples: int,
) -> list[dict[str, Any]]:
    """Rows of audit_ranking.parquet: for every finished pairing, its test score on all test
    images and on each subset of `left_out` (subset -> dataset -> item keys left out)."""
    rows: list[dict[str, Any]] = []
    finished = leaderboard[leaderboard["status"] == "ok"]
    for dataset, pairings in finished.groupby("dataset"):
        for subset in (ALL, *left_out):
            removed = left_out.get(subset, {}).get(dataset, set())
            scored = [
                _scored(p, predictions, keys, removed, subset, seed, resamples)
                for p in pairings.to_dict("records")
            ]
            rows += _ranked([row for row in scored if row is not None])
    overall = {(r["dataset"], r["model"]): r["rank"] for r in rows if r["subset"] == ALL}
    for row in rows:
        row["rank_all"] = overall.get((row["dataset"], row["model"]))
    return rows


def rank_changes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per dataset and subset whose ranks differ from the ranks on all images."""
    changed = defaultdict(list)
    for row in rows:
        if row["subset"] != ALL and row["rank"] != row["rank_all"]:
            changed[(row["dataset"], row["subset"])].append(
                f"{row['model']} {row['rank_all']} -> {row['rank']}"
            )
    return [
        f"{dataset}: {subset.replace('_', ' ')}, ranks change: {', '.join(moves)}"
        for (dataset, subset), moves in sorted(changed.items())
    ]


def _scored(
    pairing: dict[str, Any],
    predictions: pd.DataFrame,
    keys: dict[tuple[str, int], np.ndarray],
    removed: set[int],
    subset: str,
    seed: int,
    resamples: int,
) -> dict[str, Any] | None:
    """The pairing's row for `subset`; None when the subset leaves no test image (a small
    dataset whose every test image was flagged): there is nothing to score."""
    from bench.bootstrap import metric_intervals

    mine = predictions[
        (predictions["dataset"] == pairing["dataset"]) & (predictions["model"] == pairing["model"])
    ]
    held_out, total, dropped = [], 0, 0
    for repeat, group in mine.sort_values("sample").groupby("repeat"):
        rows = group["sample"].to_numpy()
        kept = ~np.isin(keys[(pairing["dataset"], int(repeat))][rows], list(removed))
        proba = np.stack(group["proba"].to_numpy()).astype(np.float32)
        total, dropped = total + int(kept.sum()), dropped + int((~kept).sum())
        if kept.any():  # a repeat whose every test image is left out has no score
            held_out.append((group["y_true"].to_numpy(dtype=np.int64)[kept], proba[kept]))
    if not held_out:
        return None
    metric = pairing["metric"]
    classes = len(json.loads(pairing["classes"]))
    interval = metric_intervals(held_out, classes, seed, resamples=resamples)[metric]
    return make_row(
        "audit_ranking",
        run_id=pairing["run_id"],
        benchmark=pairing["benchmark"],
        dataset=pairing["dataset"],
        model=pairing["model"],
        metric=metric,
        subset=subset,
        test_samples=total,
        removed=dropped,
        test_score=interval.estimate,
        test_score_low=interval.low,
        test_score_high=interval.high,
        rank=None,
        rank_all=None,
    )


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return rows
    ranks = competition_ranks([r["test_score"] for r in rows], Objective(rows[0]["metric"]))
    for row, rank in zip(rows, ranks, strict=True):
        row["rank"] = rank
    return sorted(rows, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["model"]))
