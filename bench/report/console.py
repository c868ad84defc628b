"""The leaderboard as a plain-text table for the terminal."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

# (header, metric) of the test figures shown, each as mean [95% interval].
COLUMNS = [
    ("F1", "f1_macro"),
    ("accuracy", "accuracy"),
    ("AUC", "roc_auc"),
]
FINGERPRINT_SHOWN = 8
FOOTER = (
    "test: mean over repeats of the held-out test score [95% bootstrap interval]; "
    "rank: by a test mean, never by CV\n"
    "selection: the chosen trial's CV mean±std (it chose the trial, so biased upward); "
    "compute: CPU/GPU-seconds of every trial, fold and refit"
)


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (rows may come from a DataFrame with nullable columns)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pd.NA refuses to be a bool
        return True


def _test(row: Mapping[str, Any], metric: str) -> str:
    mean = row.get(f"test_{metric}")
    if _missing(mean):
        return "-"
    low, high = row.get(f"test_{metric}_low"), row.get(f"test_{metric}_high")
    if _missing(low) or _missing(high):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f},{high:.3f}]"


def _selection(row: Mapping[str, Any]) -> str:
    metric = row.get("metric") or "f1_macro"
    mean, std = row.get(f"cv_{metric}_mean"), row.get(f"cv_{metric}_std")
    if _missing(mean):
        return "-"
    return f"{mean:.3f}±{std:.3f}" if not _missing(std) else f"{mean:.3f}"


def _number(value: Any) -> str:
    return "-" if _missing(value) else f"{value:,.0f}"


def _group_names(rows: list[Mapping[str, Any]]) -> list[str]:
    """The dataset, with its fingerprint where rows score it on different data."""
    fingerprints: dict[str, set] = defaultdict(set)
    for row in rows:
        fingerprints[row["dataset"]].add(row.get("fingerprint") or "")
    return [
        str(row["dataset"])
        if len(fingerprints[row["dataset"]]) < 2
        else f"{row['dataset']} [{(row.get('fingerprint') or 'unknown')[:FINGERPRINT_SHOWN]}]"
        for row in rows
    ]


def format_leaderboard(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows of leaderboard.parquet (or of the report's leaderboard) -> an aligned table."""
    rows = list(rows)
    gpu = any(not _missing(row.get("gpu_seconds")) and row["gpu_seconds"] > 0 for row in rows)
    verdicts = any("vs_best" in row for row in rows)
    header = [
        "rank",
        "dataset",
        "model",
        *[f"test {h}" for h, _ in COLUMNS],
        "selection",
        *(["vs best"] if verdicts else []),
        "trials",
        "epochs",
        "CPU-s",
        *(["GPU-s"] if gpu else []),
        "status",
    ]
    lines = [header]
    for row, group in zip(rows, _group_names(rows), strict=True):
        status = row.get("status") or ""
        if status != "ok":
            status = f"{status}: {row.get('error') or ''}"[:60]
        lines.append(
            [
                "-" if _missing(row.get("rank")) else str(int(row["rank"])),
                group,
                str(row["model"]),
                *[_test(row, metric) for _, metric in COLUMNS],
                _selection(row),
                *([str(row.get("vs_best") or "-")] if verdicts else []),
                _number(row.get("num_trials")),
                _number(row.get("trial_epochs")),
                _number(row.get("cpu_seconds")),
                *([_number(row.get("gpu_seconds"))] if gpu else []),
                status,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append(FOOTER)
    return "\n".join(text)
