"""The leaderboard as a plain-text table for the terminal."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# (header, metric) pairs shown with CV mean +- std and the test figure.
COLUMNS = [
    ("precision", "precision_macro"),
    ("recall", "recall_macro"),
    ("F1", "f1_macro"),
    ("AUC", "roc_auc"),
    ("accuracy", "accuracy"),
]


def _figure(row: Mapping[str, Any], metric: str) -> str:
    mean, std = row.get(f"cv_{metric}_mean"), row.get(f"cv_{metric}_std")
    test = row.get(f"test_{metric}")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    cv = f"{mean:.3f}±{std:.3f}" if std is not None and not math.isnan(std) else f"{mean:.3f}"
    return f"{cv} ({test:.3f})" if test is not None and not math.isnan(test) else cv


def format_leaderboard(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows of leaderboard.parquet -> an aligned table: CV mean±std over folds (test)."""
    header = ["rank", "dataset", "model", *[h for h, _ in COLUMNS], "trials", "status"]
    lines = [header]
    for row in rows:
        rank = row.get("rank")
        status = row.get("status") or ""
        if status != "ok":
            status = f"{status}: {row.get('error') or ''}"[:60]
        lines.append(
            [
                "-" if rank is None else str(rank),
                str(row["dataset"]),
                str(row["model"]),
                *[_figure(row, metric) for _, metric in COLUMNS],
                str(row.get("num_trials") or 0),
                status,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append("figures: cross-validated mean±std over folds (held-out test score)")
    return "\n".join(text)
