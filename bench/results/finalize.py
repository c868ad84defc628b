"""Merge a run's parts into its final Parquet files: replicates.parquet (a row per pairing and
repeat) and leaderboard.parquet (a row per pairing: test figures averaged over repeats, with
bootstrap intervals, ranked within each dataset on those held-out figures)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from bench.metrics import Objective
from bench.results.names import pairing_name, part_name, trial_part
from bench.results.ranking import competition_ranks, ranked_order
from bench.results.schema import CV_COLUMNS, DEPLOYMENT_COLUMNS, INTERVAL_COLUMNS, make_row
from bench.results.store import RunStore, concat
from bench.seeds import BOOTSTRAP, derive_seed

# final file -> the parts folder it is merged from
PARTS = {
    "folds": "parts/folds",
    "epochs": "parts/epochs",
    "trials": "parts/trials_all",
    "predictions": "parts/predictions",
    "splits": "parts/splits",  # one part per dataset, written when it is loaded
    "replicates": "parts/replicates",  # one part per pairing and repeat
}
# Figures of a pairing taken from its repeat 0 (the others' are in replicates.parquet).
_FROM_REPEAT_ZERO = (
    "run_id",
    "benchmark",
    "dataset",
    "model",
    "metric",
    "best_trial",
    "best_params",
    "test_metric_notes",
    "test_per_class",
    "test_confusion",
    "classes",
    "train_samples",
    "test_samples",
    "num_params",
    *DEPLOYMENT_COLUMNS,
    "folds",
    "max_epochs",
    "refit_epochs",
    "refit_samples_per_second",
    "refit_worker_pid",
)


def merge_parts(store: RunStore, evaluation: Any = None) -> dict[str, pa.Table]:
    """Write every final file from the parts; return them. `evaluation` (the run's
    EvaluationConfig) says how the repeats were searched and how many bootstrap resamples
    each interval takes."""
    tables = {}
    for name, folder in PARTS.items():
        tables[name] = concat(name, [store.read_table(p) for p in store.list(folder)])
        store.write_parquet(f"{name}.parquet", tables[name])
    tables["oof"] = chosen_out_of_fold(store, tables)
    store.write_parquet("oof.parquet", tables["oof"])
    search_mode = getattr(evaluation, "search", "once")
    resamples = getattr(evaluation, "bootstrap", 1000)
    seed = derive_seed(getattr(evaluation, "training_seed", 0), BOOTSTRAP)
    rows = pairing_rows(tables, search_mode, resamples, seed)
    tables["leaderboard"] = store.write_table("leaderboard", rank_pairings(rows))
    return tables


def chosen_out_of_fold(store: RunStore, tables: dict[str, pa.Table]) -> pa.Table:
    """The out-of-fold predictions of the trial each repeat chose (every trial wrote its own:
    which one is chosen is known only once the search is over)."""
    parts = []
    for row in tables["replicates"].to_pylist():
        if row["best_trial"] is None:
            continue
        pairing = pairing_name(row["model"], row["dataset"], row["repeat"])
        part = trial_part("oof", part_name(pairing), int(row["best_trial"]))
        if store.exists(part):  # absent for repeats refit from repeat 0's choice
            parts.append(store.read_table(part))
    return concat("oof", parts)


def pairing_rows(
    tables: dict[str, pa.Table], search_mode: str, resamples: int, seed: int
) -> list[dict[str, Any]]:
    """One leaderboard row per pairing (unranked), from its repeats' rows, its trials and
    predictions."""
    replicates = _grouped(tables["replicates"].to_pylist())
    trials = _grouped(tables["trials"].to_pylist())
    predictions = _prediction_arrays(tables["predictions"])
    fingerprints = {r["dataset"]: r["fingerprint"] for g in replicates.values() for r in g}
    return [
        _pairing_row(
            key,
            sorted(rows, key=lambda r: r["repeat"]),
            trials.get(key, []),
            predictions,
            fingerprints.get(key[0]),
            search_mode,
            resamples,
            seed,
        )
        for key, rows in sorted(replicates.items())
    ]


def _pairing_row(
    key: tuple[str, str],
    repeats: list[dict[str, Any]],
    trials: list[dict[str, Any]],
    predictions: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]],
    fingerprint: str | None,
    search_mode: str,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    from bench.bootstrap import metric_intervals

    first = repeats[0]
    ok = [r for r in repeats if r["status"] == "ok"]
    failed = [r for r in repeats if r["status"] != "ok"]
    tests: dict[str, float | None] = dict.fromkeys(INTERVAL_COLUMNS)  # none without predictions
    held_out = [predictions[(*key, r["repeat"])] for r in ok if (*key, r["repeat"]) in predictions]
    if held_out and first.get("classes"):
        classes = len(json.loads(first["classes"]))
        intervals = metric_intervals(held_out, classes, seed, resamples=resamples)
        for name, interval in intervals.items():
            tests[f"test_{name}"] = interval.estimate
            tests[f"test_{name}_low"] = interval.low
            tests[f"test_{name}_high"] = interval.high
    return make_row(
        "leaderboard",
        **{name: first.get(name) for name in _FROM_REPEAT_ZERO},
        status="failed" if failed or not ok else "ok",
        error="; ".join(f"repeat {r['repeat']}: {r['error']}" for r in failed),
        rank=None,  # rank_pairings ranks the run's rows together
        fingerprint=first.get("fingerprint") or fingerprint,
        repeats=len(ok),
        search_mode=search_mode,
        **_selection_scores(first, trials),
        **tests,
        **_compute(repeats, trials),
    )


def _selection_scores(first: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The CV figures of the trial repeat 0 chose: the scores that selected it (None when it
    chose none)."""
    chosen = [
        t for t in trials if t["repeat"] == first["repeat"] and t["trial"] == first["best_trial"]
    ]
    return {k: chosen[0][k] if chosen else None for k in CV_COLUMNS}


def _compute(repeats: list[dict[str, Any]], trials: list[dict[str, Any]]) -> dict[str, Any]:
    """What the pairing cost: every trial of every repeat, and every refit."""
    return {
        "num_trials": len(trials),
        "num_failed": sum(t["status"] == "failed" for t in trials),
        "num_pruned": sum(t["status"] == "pruned" for t in trials),
        "trial_epochs": sum(int(t["epochs_run"] or 0) for t in trials),
        "cpu_seconds": _total(t.get("cpu_seconds") for t in trials + repeats),
        "gpu_seconds": _total(t.get("gpu_seconds") for t in trials + repeats),
        "refit_seconds": _total(r.get("refit_seconds") for r in repeats),
        "search_seconds": _total(r.get("search_seconds") for r in repeats),
        "wall_seconds": max((r.get("wall_seconds") or 0.0 for r in repeats), default=0.0),
    }


def _total(values: Iterable[float | None]) -> float:
    return float(sum(v for v in values if v is not None and not math.isnan(v)))


def _grouped(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[(row["dataset"], row["model"])].append(row)
    return out


def _prediction_arrays(
    table: pa.Table,
) -> dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]]:
    """(dataset, model, repeat) -> (y_true, proba float32 as stored), in sample order."""
    if table.num_rows == 0:
        return {}
    frame = table.select(["dataset", "model", "repeat", "sample", "y_true", "proba"]).to_pandas()
    out = {}
    for key, group in frame.sort_values("sample").groupby(["dataset", "model", "repeat"]):
        proba = np.stack(group["proba"].to_numpy()).astype(np.float32)
        out[key] = (group["y_true"].to_numpy(dtype=np.int64), proba)
    return out


def rank_pairings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank finished pairings within each (dataset, fingerprint) by the mean over repeats of
    their metric on held-out test data (bench.results.ranking: 1 = best; ties share the
    better rank). CV scores never rank: they chose the configuration, so they are biased
    upward. Failed pairings get no rank and sort last."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["fingerprint"] or "")].append(row)
    ranked = []
    for key in sorted(groups):
        group = groups[key]
        metric = _group_metric(key[0], group)
        tests = [r[f"test_{metric}"] if r["status"] == "ok" else None for r in group]
        ranks = competition_ranks(tests, Objective(metric)) if metric else [None] * len(group)
        order = ranked_order(ranks, [r["model"] for r in group])
        ranked += [make_row("leaderboard", **{**group[i], "rank": ranks[i]}) for i in order]
    return ranked


def _group_metric(dataset: str, group: list[dict[str, Any]]) -> str | None:
    """The metric the group's finished pairings searched on (None when none finished)."""
    metrics = sorted({r["metric"] for r in group if r["status"] == "ok"})
    if len(metrics) > 1:
        raise ValueError(f"{dataset}: its pairings searched on different metrics {metrics}")
    return metrics[0] if metrics else None
