"""Merge a run's per-trial and per-pairing parts into its final Parquet files, with ranks."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pyarrow as pa

from bench.metrics import higher_is_better
from bench.results.store import RunStore, concat

# final file -> the parts folder it is merged from
PARTS = {
    "folds": "parts/folds",
    "epochs": "parts/epochs",
    "trials": "parts/trials_all",
    "predictions": "parts/predictions",
    "splits": "parts/splits",  # one part per dataset, written when it is loaded
}


def merge_parts(store: RunStore) -> dict[str, pa.Table]:
    """Write folds/epochs/trials/predictions/splits/leaderboard.parquet from the parts; return
    them."""
    tables = {}
    for name, folder in PARTS.items():
        tables[name] = concat(name, [store.read_table(p) for p in store.list(folder)])
        store.write_parquet(f"{name}.parquet", tables[name])
    rows = [row for p in store.list("parts/leaderboard") for row in store.read_table(p).to_pylist()]
    tables["leaderboard"] = store.write_table("leaderboard", rank_pairings(rows))
    return tables


def rank_pairings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank finished pairings within each dataset by the CV mean of their search metric
    (1 = best; ties share the better rank); failed pairings get no rank and sort last."""
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_dataset[row["dataset"]].append(dict(row))
    ranked = []
    for dataset in sorted(by_dataset):
        group = by_dataset[dataset]
        for row in group:
            row["rank"] = None
        scored = [(r, _cv_score(r)) for r in group if r.get("status") == "ok"]
        scored = [(r, s) for r, s in scored if not math.isnan(s)]
        for row, score in scored:
            row["rank"] = 1 + sum(1 for _, other in scored if other > score)
        ranked += sorted(group, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["model"]))
    return ranked


def _cv_score(row: dict[str, Any]) -> float:
    """The row's CV mean, signed so that larger is better."""
    value = row.get(f"cv_{row['metric']}_mean")
    if value is None:
        return math.nan
    return value if higher_is_better(row["metric"]) else -value
