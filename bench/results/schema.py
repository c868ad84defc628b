"""The one results schema: every Parquet file bench writes, its columns, types and order.

Metric columns are generated from the metric table (bench.metrics.METRIC_NAMES), so a new
metric joins every file by itself. Imports neither Ray nor torch: reports read only this."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from bench.errors import BenchError
from bench.metrics import METRIC_NAMES

SCHEMA_VERSION = 2
VERSION_KEY = b"bench.schema_version"

# Columns that identify a pairing in every table.
_PAIRING = [
    ("run_id", pa.string()),
    ("benchmark", pa.string()),
    ("dataset", pa.string()),
    ("model", pa.string()),
]


def _metrics(prefix: str = "", suffix: str = "") -> list[tuple[str, pa.DataType]]:
    return [(f"{prefix}{m}{suffix}", pa.float64()) for m in METRIC_NAMES]


def _cv_columns() -> list[tuple[str, pa.DataType]]:
    return [
        col
        for m in METRIC_NAMES
        for col in ((f"cv_{m}_mean", pa.float64()), (f"cv_{m}_std", pa.float64()))
    ]


FOLDS = pa.schema(
    _PAIRING
    + [
        ("trial", pa.int64()),
        ("trial_id", pa.string()),
        ("fold", pa.int64()),
        ("params", pa.string()),  # JSON object of the trial's hyperparameters
        *_metrics(),
        ("metric_notes", pa.string()),  # why a metric is NaN on this fold, if one is
        ("best_epoch", pa.int64()),
        ("epochs_run", pa.int64()),
        ("train_seconds", pa.float64()),
        ("eval_seconds", pa.float64()),
        ("samples_per_second", pa.float64()),
        ("workers", pa.int64()),
        ("node_id", pa.string()),
        ("gpu_ids", pa.string()),  # comma-separated, empty on CPU
        ("worker_pid", pa.int64()),  # the trial actor's process (actors are reused by trials)
    ]
)

EPOCHS = pa.schema(
    _PAIRING
    + [
        ("trial", pa.int64()),
        ("phase", pa.string()),  # "cv" (a fold of a trial) or "refit" (the final model)
        ("fold", pa.int64()),  # -1 for the refit
        ("epoch", pa.int64()),
        ("train_loss", pa.float64()),
        ("val_loss", pa.float64()),  # NaN for the refit: it sees no validation data
        ("val_score", pa.float64()),  # the search metric on the fold's validation data
        ("seconds", pa.float64()),
    ]
)

TRIALS = pa.schema(
    _PAIRING
    + [
        ("trial", pa.int64()),
        ("trial_id", pa.string()),
        ("params", pa.string()),
        ("status", pa.string()),  # ok / failed / pruned
        ("error", pa.string()),
        ("metric", pa.string()),  # the search metric
        ("score", pa.float64()),  # its CV mean (last reported value for a pruned trial)
        *_cv_columns(),
        ("epochs_run", pa.int64()),  # largest epochs run over the folds
        ("resumed_from_epoch", pa.int64()),  # 0, or the checkpoint epoch a restart began after
        ("wall_seconds", pa.float64()),
    ]
)

LEADERBOARD = pa.schema(
    _PAIRING
    + [
        ("status", pa.string()),  # ok / failed
        ("error", pa.string()),
        ("metric", pa.string()),
        ("rank", pa.int64()),  # within the dataset, by the CV mean of the metric (1 = best)
        ("best_trial", pa.int64()),
        ("best_params", pa.string()),
        *_cv_columns(),
        *_metrics(prefix="test_"),
        ("test_metric_notes", pa.string()),
        ("test_per_class", pa.string()),  # JSON {precision, recall, f1, support: [per class]}
        ("test_confusion", pa.string()),  # JSON rows = true class, columns = predicted
        ("classes", pa.string()),  # JSON list of class names, index = label
        ("test_samples", pa.int64()),
        ("num_trials", pa.int64()),
        ("num_failed", pa.int64()),
        ("num_pruned", pa.int64()),
        ("num_params", pa.int64()),
        ("folds", pa.int64()),
        ("refit_epochs", pa.int64()),
        ("refit_seconds", pa.float64()),
        ("refit_samples_per_second", pa.float64()),
        ("refit_worker_pid", pa.int64()),  # the trial actor the refit ran in
        ("search_seconds", pa.float64()),
        ("wall_seconds", pa.float64()),
    ]
)

PREDICTIONS = pa.schema(
    _PAIRING
    + [
        ("sample", pa.int64()),  # row of the test split
        ("y_true", pa.int64()),
        ("y_pred", pa.int64()),
        ("proba", pa.list_(pa.float32())),
    ]
)

SPLITS = pa.schema(
    [
        ("run_id", pa.string()),
        ("dataset", pa.string()),
        ("role", pa.string()),  # "train" (the CV pool) or "test"
        ("sample", pa.int64()),  # row within its role's array
        ("source_index", pa.int64()),  # row in the loaded pool; -1 with an official test split
        ("label", pa.int64()),
        ("fold", pa.int64()),  # the fold that validates on this sample; -1 for test rows
    ]
)

TABLES: dict[str, pa.Schema] = {
    "folds": FOLDS,
    "epochs": EPOCHS,
    "trials": TRIALS,
    "leaderboard": LEADERBOARD,
    "predictions": PREDICTIONS,
    "splits": SPLITS,
}
STATUSES = ("ok", "failed", "pruned")


class SchemaError(BenchError):
    """A results file that does not match this version of bench's schema."""


def to_table(name: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts) -> a table in the schema's column order. Unknown keys are a bug, so they
    raise; missing keys become nulls."""
    schema = TABLES[name]
    rows = list(rows)
    columns = set(schema.names)
    for row in rows:
        extra = set(row) - columns
        if extra:
            raise ValueError(f"{name}: columns not in the schema: {sorted(extra)}")
    arrays = {col: [_cell(row.get(col)) for row in rows] for col in schema.names}
    table = pa.Table.from_pydict(arrays, schema=schema)
    return table.replace_schema_metadata({VERSION_KEY: str(SCHEMA_VERSION).encode()})


def _cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return math.nan  # kept as NaN (a metric undefined on this data), not null
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        return value.item()  # numpy scalar
    return value


def check_version(table: pa.Table, source: str) -> None:
    """Refuse a file written by another schema version, saying what to do."""
    meta = table.schema.metadata or {}
    found = meta.get(VERSION_KEY)
    if found is None:
        raise SchemaError(
            f"{source}: not a bench results file (no {VERSION_KEY.decode()} metadata); "
            f"point at a folder written by `bench run`"
        )
    if int(found) != SCHEMA_VERSION:
        raise SchemaError(
            f"{source}: results schema version {int(found)}, this bench reads version "
            f"{SCHEMA_VERSION}; rerun the benchmark or use the bench release that wrote it"
        )


def dumps(value: Any) -> str:
    """JSON for params and per-class columns: stable key order, NaN stored as null."""
    return json.dumps(_nan_to_none(value), sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars and arrays
    raise TypeError(f"cannot store {type(value).__name__} in a results file")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value
