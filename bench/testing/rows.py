"""Rows for tests that care about a few columns."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.results.schema import ROWS


def sparse_row(table: str, /, **fields: Any) -> dict[str, Any]:
    """A row of `table`: `fields`, and None in every other column. A run's builders never do
    this (they name every column); a test about one column need not."""
    return ROWS[table](**{**dict.fromkeys(ROWS[table].columns), **fields})


# Columns that differ between two runs of the same definition by nature: identities (run,
# trial, process, node) and wall-clock figures (any *seconds* column, throughputs, the kept
# model's timings). Every other column of a seeded run must come out the same.
IDENTITIES = ("run_id", "trial_id", "worker_pid", "refit_worker_pid", "node_id", "gpu_ids")
KEPT_MODEL_TIMINGS = ("latency_ms", "latency_p95_ms", "throughput", "peak_memory_mb")
SORT_KEYS = ("dataset", "model", "repeat", "trial", "fold", "phase", "epoch", "role", "sample")


def comparable(frame: pd.DataFrame, also_ignored: tuple[str, ...] = ()) -> pd.DataFrame:
    """`frame` without the columns that differ between runs by nature, sorted by its keys."""
    ignored = IDENTITIES + KEPT_MODEL_TIMINGS + also_ignored
    keep = [
        c
        for c in frame.columns
        if c not in ignored and "seconds" not in c and "per_second" not in c
    ]
    keys = [c for c in SORT_KEYS if c in keep]
    return frame[keep].sort_values(keys).reset_index(drop=True)
