"""The one results schema: every Parquet file bench writes, its columns, types and order.

Metric columns are generated from the metric table (bench.metrics.METRIC_NAMES), so a new
metric joins every file by itself. Each table has its row type (ROWS), derived from its schema:
a row is built with every column of its table, so a column added here is one declaration that
every builder must then fill. Imports neither Ray nor torch: reports read only this."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from bench.errors import BenchError
from bench.metrics import METRIC_NAMES
from bench.results.rowtype import RowError, RowType, dumps  # noqa: F401 (re-exported)

SCHEMA_VERSION = 4
VERSION_KEY = b"bench.schema_version"

# Columns that identify a pairing in every table.
_PAIRING = [
    ("run_id", pa.string()),
    ("benchmark", pa.string()),
    ("dataset", pa.string()),
    ("model", pa.string()),
]
# A replicate of a pairing: its own stratified test split, folds and training seed
# (evaluation.repeats); 0 in files of a run with one repeat.
_REPEAT = [("repeat", pa.int64())]


def _metrics(prefix: str = "", suffix: str = "") -> list[tuple[str, pa.DataType]]:
    return [(f"{prefix}{m}{suffix}", pa.float64()) for m in METRIC_NAMES]


def _intervals() -> list[tuple[str, pa.DataType]]:
    """test_<metric> (mean over repeats) with its 95% bootstrap interval."""
    return [
        col
        for m in METRIC_NAMES
        for col in (
            (f"test_{m}", pa.float64()),
            (f"test_{m}_low", pa.float64()),
            (f"test_{m}_high", pa.float64()),
        )
    ]


# What a pairing's search and refits cost: resource-seconds reserved while training and
# evaluating (seconds x CPUs, seconds x GPUs) and epochs trained, over every trial, fold, refit.
_COMPUTE = [
    ("cpu_seconds", pa.float64()),
    ("gpu_seconds", pa.float64()),
]

# What the kept (repeat 0) model costs to run, measured after its refit on the refit's device
# and threads (bench.train.deployment); null for the other repeats.
_DEPLOYMENT = [
    ("macs", pa.float64()),  # multiply-accumulates per image
    ("latency_ms", pa.float64()),  # batch 1, median of timed runs after warm-up
    ("latency_p95_ms", pa.float64()),  # batch 1, 95th percentile
    ("throughput", pa.float64()),  # images/s at batch 64 (CUDA) or 16 (CPU)
    ("peak_memory_mb", pa.float64()),  # CUDA only: most memory allocated while timing
    ("inference_precision", pa.string()),  # fp32, bf16 or fp16
    ("inference_device", pa.string()),  # cpu, or cuda and the GPU's name
]


def _cv_columns() -> list[tuple[str, pa.DataType]]:
    return [
        col
        for m in METRIC_NAMES
        for col in ((f"cv_{m}_mean", pa.float64()), (f"cv_{m}_std", pa.float64()))
    ]


FOLDS = pa.schema(
    _PAIRING
    + _REPEAT
    + [
        ("trial", pa.int64()),
        ("trial_id", pa.string()),
        ("fold", pa.int64()),
        # The fold's validation samples (rows of the repeat's CV pool): how many, and a digest
        # of which, so anyone can check that every model was validated on the same ones.
        ("val_samples", pa.int64()),
        ("val_digest", pa.string()),
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
    + _REPEAT
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
    + _REPEAT
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
        *_COMPUTE,
    ]
)

# One row per (pairing, repeat): the chosen configuration refit on that repeat's training
# pool and scored once on its test split.
REPLICATES = pa.schema(
    _PAIRING
    + _REPEAT
    + [
        ("status", pa.string()),  # ok / failed
        ("error", pa.string()),
        ("metric", pa.string()),
        # Hash of the dataset's splits (every repeat), image size, channels, test fraction and
        # repeats: rows with different fingerprints were not scored on the same data.
        ("fingerprint", pa.string()),
        ("best_trial", pa.int64()),  # the trial whose configuration was refit
        ("best_params", pa.string()),
        ("selection_score", pa.float64()),  # its CV mean of the metric (chose it; biased up)
        ("training_seed", pa.int64()),
        *_metrics(prefix="test_"),
        ("test_metric_notes", pa.string()),
        ("test_per_class", pa.string()),  # JSON {precision, recall, f1, support: [per class]}
        ("test_confusion", pa.string()),  # JSON rows = true class, columns = predicted
        ("classes", pa.string()),  # JSON list of class names, index = label
        ("num_params", pa.int64()),
        *_DEPLOYMENT,
        ("folds", pa.int64()),
        ("max_epochs", pa.int64()),  # the epoch budget of one trial
        ("train_samples", pa.int64()),
        ("test_samples", pa.int64()),
        ("refit_epochs", pa.int64()),
        ("refit_seconds", pa.float64()),
        ("refit_samples_per_second", pa.float64()),
        ("refit_worker_pid", pa.int64()),  # the trial actor the refit ran in
        *_COMPUTE,  # the refit's (its trials' are in trials.parquet)
        ("search_seconds", pa.float64()),  # 0 for a repeat that only refits
        ("wall_seconds", pa.float64()),
    ]
)

LEADERBOARD = pa.schema(
    _PAIRING
    + [
        ("status", pa.string()),  # ok / failed
        ("error", pa.string()),
        ("metric", pa.string()),
        # Within (dataset, fingerprint), by the mean over repeats of test_<metric> (1 = best).
        ("rank", pa.int64()),
        ("fingerprint", pa.string()),
        ("repeats", pa.int64()),  # replicates that finished (rows in replicates.parquet)
        ("search_mode", pa.string()),  # "once": searched on repeat 0; "every": per repeat
        ("best_trial", pa.int64()),  # repeat 0's
        ("best_params", pa.string()),
        # Selection scores: the CV figures of repeat 0's chosen trial (they chose it, so they
        # are biased upward; the rank never reads them).
        *_cv_columns(),
        *_intervals(),
        ("test_metric_notes", pa.string()),
        ("test_per_class", pa.string()),  # repeat 0's, JSON as in replicates
        ("test_confusion", pa.string()),  # repeat 0's
        ("classes", pa.string()),  # JSON list of class names, index = label
        ("train_samples", pa.int64()),  # repeat 0's training pool
        ("test_samples", pa.int64()),  # repeat 0's test split
        ("num_trials", pa.int64()),
        ("num_failed", pa.int64()),
        ("num_pruned", pa.int64()),
        ("num_params", pa.int64()),
        *_DEPLOYMENT,  # repeat 0's (its model is the kept one)
        ("folds", pa.int64()),
        ("max_epochs", pa.int64()),  # the epoch budget of one trial
        ("trial_epochs", pa.int64()),  # epochs run, summed over trials (largest fold each)
        *_COMPUTE,  # over every trial, fold and refit of every repeat
        ("refit_epochs", pa.int64()),
        ("refit_seconds", pa.float64()),  # summed over repeats
        ("refit_samples_per_second", pa.float64()),
        ("refit_worker_pid", pa.int64()),
        ("search_seconds", pa.float64()),
        ("wall_seconds", pa.float64()),
    ]
)

PREDICTIONS = pa.schema(
    _PAIRING
    + _REPEAT
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
        ("repeat", pa.int64()),
        ("role", pa.string()),  # "train" (the CV pool) or "test"
        ("sample", pa.int64()),  # row within its role's array
        ("source_index", pa.int64()),  # row in the loaded pool; -1 with an official test split
        ("label", pa.int64()),
        ("fold", pa.int64()),  # the fold that validates on this sample; -1 for test rows
    ]
)

# The chosen trial's out-of-fold predictions (trial parts hold every trial's; the merge keeps
# the trial each repeat chose): every CV-pool sample scored by the one fold model that never
# trained on it, what the data audit's label check needs (bench.audit).
OUT_OF_FOLD = pa.schema(
    _PAIRING
    + _REPEAT
    + [
        ("trial", pa.int64()),
        ("fold", pa.int64()),
        ("sample", pa.int64()),  # row of the repeat's CV pool
        ("y_true", pa.int64()),
        ("proba", pa.list_(pa.float32())),
    ]
)

# Where an audited image is: its role and row in repeat 0's splits, its row in the loaded
# dataset (-1 in an official test split) and its file (empty when the dataset has none).
_AUDIT_RUN = [("run_id", pa.string()), ("benchmark", pa.string()), ("dataset", pa.string())]


def _image(prefix: str = "") -> list[tuple[str, pa.DataType]]:
    return [
        (f"{prefix}role", pa.string()),
        (f"{prefix}sample", pa.int64()),
        (f"{prefix}source_index", pa.int64()),
        (f"{prefix}file", pa.string()),
        (f"{prefix}thumbnail", pa.binary()),  # PNG, for the first rows only; else empty
    ]


LABEL_ISSUES = pa.schema(
    _AUDIT_RUN
    + [("rank", pa.int64())]  # 1 = the likeliest error
    + _image()
    + [
        ("given_label", pa.int64()),
        ("suggested_label", pa.int64()),
        ("given_class", pa.string()),
        ("suggested_class", pa.string()),
        ("given_probability", pa.float64()),  # the models' mean probability of the given label
        ("suggested_probability", pa.float64()),
        ("models_flagging", pa.int64()),  # models whose own predictions flag it
        ("models", pa.int64()),
    ]
)

DUPLICATES = pa.schema(
    _AUDIT_RUN
    + [
        ("kind", pa.string()),  # "exact" (the same pixels) or "near"
        ("pair", pa.string()),  # "test-train" or "test-test" (roles in repeat 0)
        ("distance", pa.float64()),  # 1 - cosine similarity of the images' signatures
    ]
    + _image("a_")
    + _image("b_")
)

# Each pairing's held-out score on every repeat's test split with the flagged images left out.
AUDIT_RANKING = pa.schema(
    _PAIRING
    + [
        ("metric", pa.string()),
        ("subset", pa.string()),  # "all", "without_duplicates", "without_label_issues"
        ("test_samples", pa.int64()),  # summed over repeats
        ("removed", pa.int64()),  # test images left out, summed over repeats
        ("test_score", pa.float64()),
        ("test_score_low", pa.float64()),
        ("test_score_high", pa.float64()),
        ("rank", pa.int64()),  # within the dataset, on this subset
        ("rank_all", pa.int64()),  # on every test image, as the leaderboard ranks
    ]
)

TABLES: dict[str, pa.Schema] = {
    "folds": FOLDS,
    "epochs": EPOCHS,
    "trials": TRIALS,
    "leaderboard": LEADERBOARD,
    "replicates": REPLICATES,
    "predictions": PREDICTIONS,
    "splits": SPLITS,
    "oof": OUT_OF_FOLD,
    "label_issues": LABEL_ISSUES,
    "duplicates": DUPLICATES,
    "audit_ranking": AUDIT_RANKING,
}
STATUSES = ("ok", "failed", "pruned")

# Column groups generated from the metric table, for builders that must name them (a column a
# builder cannot know yet is given as None, never left out).
CV_COLUMNS = tuple(name for name, _ in _cv_columns())  # cv_<metric>_mean / _std
INTERVAL_COLUMNS = tuple(name for name, _ in _intervals())  # test_<metric>[_low|_high]
DEPLOYMENT_COLUMNS = tuple(name for name, _ in _DEPLOYMENT)


class SchemaError(BenchError):
    """A results file that does not match this version of bench's schema."""


ROWS: dict[str, RowType] = {name: RowType(name, schema) for name, schema in TABLES.items()}


def make_row(table: str, /, **fields: Any) -> dict[str, Any]:
    """A row of `table` (see RowType): every column given, None where it has no value."""
    return ROWS[table](**fields)


def to_table(name: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows -> a table in the schema's column order. A row with a missing or an extra column
    is a bug in its builder, so it raises RowError instead of becoming nulls."""
    row_type = ROWS[name]
    rows = list(rows)
    for row in rows:
        row_type.check(row)
    arrays = {col: [_cell(row[col]) for row in rows] for col in row_type.columns}
    table = pa.Table.from_pydict(arrays, schema=TABLES[name])
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
