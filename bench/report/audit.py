"""The report's data-audit section, from label_issues, duplicates and audit_ranking.parquet:
per dataset the likeliest label errors and duplicate pairs, with their thumbnails, and the
ranks without the flagged images."""

from __future__ import annotations

import base64
from typing import Any

import pandas as pd

from bench.audit.effect import ALL, SUBSETS, rank_changes
from bench.results.reader import RunSet

SHOWN = 24  # rows of each table in the report (the Parquet files hold them all)
_PAIRING = ["run_id", "dataset", "model"]
_SCORE = ["test_score", "test_score_low", "test_score_high"]


def with_audit_scores(board: pd.DataFrame, ranking: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The leaderboard with each pairing's test score, and interval, on its test splits
    without the audit's flagged images: columns `test_<subset>[_low|_high]` for each subset,
    where the pairing's run was audited on `metric` (NaN elsewhere: no audit, or another
    metric, whose scores the audit did not compute). `ranking`: audit_ranking as the reader
    gives it (empty, with its columns, when no run was audited)."""
    board = board.copy()
    for subset in SUBSETS:
        rows = ranking[(ranking["subset"] == subset) & (ranking["metric"] == metric)]
        scores = rows.set_index(_PAIRING)[_SCORE]
        scores.columns = [f"test_{subset}", f"test_{subset}_low", f"test_{subset}_high"]
        joined = board[_PAIRING].join(scores, on=_PAIRING)
        for column in scores.columns:
            board[column] = joined[column].astype(float).to_numpy()
    return board


def audit_notes(ranking: pd.DataFrame) -> list[str]:
    """The report's notes on ranks that change without the audit's flagged images."""
    lines = rank_changes(ranking.to_dict("records"))
    return [f"data audit, {line} (the run's ranks, on its own metric)" for line in lines]


def audit_sections(runs: RunSet) -> list[dict[str, Any]]:
    """Per audited dataset of `runs`, what the report's audit section shows."""
    issues, pairs, ranking = (
        runs[name] for name in ("label_issues", "duplicates", "audit_ranking")
    )
    datasets = sorted(set(issues["dataset"]) | set(pairs["dataset"]))
    return [_section(d, issues, pairs, ranking) for d in datasets]


def _section(dataset: str, issues, pairs, ranking) -> dict[str, Any]:
    issues = issues[issues["dataset"] == dataset]
    pairs = pairs[pairs["dataset"] == dataset]
    rows = ranking[ranking["dataset"] == dataset].to_dict("records")
    return {
        "name": dataset,
        "issue_count": len(issues),
        "pair_count": len(pairs),
        "crossing": int((pairs["pair"] == "test-train").sum()),
        "issues": [_issue(r) for r in issues.head(SHOWN).to_dict("records")],
        "pairs": [_pair(r) for r in pairs.head(SHOWN).to_dict("records")],
        "ranking": [
            {**r, "interval": f"[{r['test_score_low']:.3f}, {r['test_score_high']:.3f}]"}
            for r in rows
            if r["subset"] != ALL
        ],
        "changes": rank_changes(rows),
    }


def _issue(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "picture": _data_uri(row["thumbnail"]),
        "where": _where(row),
        "given": f"{row['given_class']} ({row['given_probability']:.2f})",
        "suggested": f"{row['suggested_class']} ({row['suggested_probability']:.2f})",
        "models": f"{row['models_flagging']} of {row['models']}",
    }


def _pair(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "pair": row["pair"],
        "distance": f"{row['distance']:.4f}",
        "a": _data_uri(row["a_thumbnail"]),
        "b": _data_uri(row["b_thumbnail"]),
        "a_where": _where(row, "a_"),
        "b_where": _where(row, "b_"),
    }


def _where(row: dict[str, Any], prefix: str = "") -> str:
    return row[f"{prefix}file"] or f"{row[f'{prefix}role']} row {row[f'{prefix}sample']}"


def _data_uri(png: bytes | None) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else ""
