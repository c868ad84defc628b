"""Synthetic run folders in the real schema, for the report's tests and its speed benchmark.

Nothing here trains: the figures are random draws, built as the same row types and written
through the same RunStore as `bench run` writes, and the leaderboard is ranked by the same
function, so a report cannot tell them apart by format. As in a real run, the search runs on
repeat 0 (search mode "once") and the chosen configuration is refit and tested on every
repeat; every model of a dataset sees the same test images in each repeat."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bench.bootstrap import metric_intervals
from bench.metrics import METRIC_NAMES, compute_metrics
from bench.results.finalize import rank_pairings
from bench.results.schema import CV_COLUMNS, DEPLOYMENT_COLUMNS, ROWS, dumps, make_row
from bench.results.store import RunStore

SEARCH_METRIC = "f1_macro"
TRAIN_PER_TEST = 4  # training pool size per test image


@dataclass(frozen=True)
class Shape:
    """What every pairing of a synthetic run shares (resamples: of each bootstrap interval)."""

    trials: int
    folds: int
    epochs: int
    classes: int
    test_samples: int
    repeats: int
    resamples: int


def write_synthetic_run(
    output: str,
    benchmark: str,
    datasets: list[str],
    models: list[str],
    trials: int = 4,
    folds: int = 3,
    epochs: int = 3,
    classes: int = 4,
    test_samples: int = 40,
    repeats: int = 3,
    seed: int = 0,
    run_id: str | None = None,
    fingerprint: str | None = None,
    trial_cpu_seconds: Mapping[str, float] | None = None,
    resamples: int = 1000,
) -> RunStore:
    """A run of every model on every dataset. Later models in `models` are better.
    `fingerprint` (default: derived from the dataset and the shape) names the data the run
    scored on: runs with the same fingerprint share their test images and labels.
    `trial_cpu_seconds`: model -> CPU-seconds each trial costs (default 10 + model index).
    `resamples`: bootstrap resamples of each leaderboard interval."""
    shape = Shape(trials, folds, epochs, classes, test_samples, repeats, resamples)
    rng = np.random.default_rng(seed)
    store = RunStore.create(output, benchmark, run_id)
    tables: dict[str, list[dict]] = {
        n: [] for n in ("folds", "epochs", "trials", "replicates", "predictions", "splits")
    }
    board = []
    for dataset in datasets:
        data_id = fingerprint or _default_fingerprint(dataset, shape)
        tables["splits"] += _split_rows(store.run_id, dataset, data_id, shape)
        for m, model in enumerate(models):
            ids = {
                "run_id": store.run_id,
                "benchmark": benchmark,
                "dataset": dataset,
                "model": model,
            }
            skill = 0.55 + 0.4 * (m + 1) / (len(models) + 1)
            cost = (trial_cpu_seconds or {}).get(model, 10.0 + m)
            trial_rows = _search(ids, skill, cost, shape, rng, tables)
            best = max(trial_rows, key=lambda r: r["score"])
            replicates = [
                _replicate(ids, r, best, data_id, skill, shape, rng, tables) for r in range(repeats)
            ]
            board.append(_leaderboard_row(ids, m, best, trial_rows, replicates, data_id, shape))
    for name, rows in tables.items():
        store.write_table(name, rows)
    store.write_table("leaderboard", rank_pairings(board))
    return store


def _default_fingerprint(dataset: str, shape: Shape) -> str:
    text = f"{dataset}:{shape.classes}:{shape.test_samples}:{shape.repeats}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _data_rng(fingerprint: str, repeat: int) -> np.random.Generator:
    """The same draws for every model and run scored on this data and repeat."""
    digest = hashlib.sha256(f"{fingerprint}:{repeat}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _test_split(fingerprint: str, repeat: int, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """(labels, difficulty) of one repeat's test images: hard images fool every model."""
    rng = _data_rng(fingerprint, repeat)
    labels = rng.permutation(np.arange(shape.test_samples) % shape.classes)
    return labels, rng.uniform(0, 2, shape.test_samples)


def _split_rows(run_id: str, dataset: str, fingerprint: str, shape: Shape) -> list[dict]:
    rows, split_row = [], ROWS["splits"]
    for repeat in range(shape.repeats):
        labels, _ = _test_split(fingerprint, repeat, shape)
        train = shape.test_samples * TRAIN_PER_TEST
        for role, count in (("train", train), ("test", shape.test_samples)):
            for sample in range(count):
                rows.append(
                    split_row(
                        run_id=run_id,
                        dataset=dataset,
                        repeat=repeat,
                        role=role,
                        sample=sample,
                        source_index=sample + (train if role == "test" else 0),
                        label=int(labels[sample]) if role == "test" else sample % shape.classes,
                        fold=sample % shape.folds if role == "train" else -1,
                    )
                )
    return rows


def _search(
    ids: dict, skill: float, cost: float, shape: Shape, rng: np.random.Generator, tables: dict
) -> list[dict]:
    """Repeat 0's trials, folds and epochs; the trials' summary rows."""
    trial_rows = []
    for t in range(shape.trials):
        params = {"lr": float(10 ** rng.uniform(-4, -2)), "hidden_dim": int(rng.choice([64, 128]))}
        quality = skill - 0.1 * abs(np.log10(params["lr"]) + 3) + rng.normal(0, 0.01)
        quality = float(np.clip(quality, 0.05, 0.99))
        fold_rows = [_fold_row(ids, t, k, params, quality, shape, rng) for k in range(shape.folds)]
        tables["folds"] += fold_rows
        tables["epochs"] += [
            make_row(
                "epochs",
                **ids,
                repeat=0,
                trial=t,
                phase="cv",
                fold=k,
                epoch=e,
                train_loss=1.0 / e,
                val_loss=1.1 / e,
                val_score=quality * e / shape.epochs,
                seconds=0.3,
            )
            for k in range(shape.folds)
            for e in range(1, shape.epochs + 1)
        ]
        cv = _cv(fold_rows)
        summary = make_row(
            "trials",
            **ids,
            repeat=0,
            trial=t,
            trial_id=f"t{t}",
            params=fold_rows[0]["params"],
            status="ok",
            error="",
            metric=SEARCH_METRIC,
            score=cv[f"cv_{SEARCH_METRIC}_mean"],
            **cv,
            epochs_run=shape.epochs,
            resumed_from_epoch=0,
            wall_seconds=3.0,
            cpu_seconds=cost,
            gpu_seconds=0.0,
        )
        trial_rows.append(summary)
    tables["trials"] += trial_rows
    return trial_rows


def _fold_row(
    ids: dict, trial: int, fold: int, params: dict, quality: float, shape: Shape, rng
) -> dict:
    return make_row(
        "folds",
        **ids,
        repeat=0,
        trial=trial,
        trial_id=f"t{trial}",
        fold=fold,
        val_samples=None,
        val_digest=None,
        params=json.dumps(params, sort_keys=True),
        **_metric_values(quality + rng.normal(0, 0.01)),
        metric_notes="",
        best_epoch=shape.epochs,
        epochs_run=shape.epochs,
        train_seconds=1.0,
        eval_seconds=0.1,
        samples_per_second=1000.0,
        workers=1,
        node_id="node",
        gpu_ids="",
        worker_pid=1000 + trial % 2,
    )


def _replicate(
    ids: dict,
    repeat: int,
    best: dict,
    fingerprint: str,
    skill: float,
    shape: Shape,
    rng: np.random.Generator,
    tables: dict,
) -> dict:
    """The chosen configuration refit and tested on one repeat: its predictions and row."""
    labels, difficulty = _test_split(fingerprint, repeat, shape)
    logits = rng.normal(0, 1, (shape.test_samples, shape.classes))
    logits[np.arange(shape.test_samples), labels] += 4 * skill - difficulty
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba = proba.astype(np.float32)
    report = compute_metrics(labels, proba, shape.classes)
    prediction_row = ROWS["predictions"]
    tables["predictions"] += [
        prediction_row(
            **ids,
            repeat=repeat,
            sample=i,
            y_true=int(labels[i]),
            y_pred=int(proba[i].argmax()),
            proba=proba[i].tolist(),
        )
        for i in range(shape.test_samples)
    ]
    row = make_row(
        "replicates",
        **ids,
        repeat=repeat,
        status="ok",
        error="",
        metric=SEARCH_METRIC,
        fingerprint=fingerprint,
        best_trial=best["trial"],
        best_params=best["params"],
        selection_score=best["score"],
        training_seed=1000 + repeat,
        **{f"test_{k}": v for k, v in report.values.items()},
        test_metric_notes=report.notes_text(),
        test_per_class=dumps(report.per_class),  # NaN (absent class) as null
        test_confusion=dumps(report.confusion),
        classes=None,
        num_params=None,
        **dict.fromkeys(DEPLOYMENT_COLUMNS),
        folds=None,
        max_epochs=None,
        train_samples=shape.test_samples * TRAIN_PER_TEST,
        test_samples=shape.test_samples,
        refit_epochs=shape.epochs,
        refit_seconds=1.0,
        refit_samples_per_second=1000.0,
        refit_worker_pid=1000,
        cpu_seconds=1.0,
        gpu_seconds=0.0,
        search_seconds=None,
        wall_seconds=None,
    )
    tables["replicates"].append(row)
    return {**row, "_replicate": (labels, proba)}


def _leaderboard_row(
    ids: dict,
    index: int,
    best: dict,
    trial_rows: list[dict],
    replicates: list[dict],
    fingerprint: str,
    shape: Shape,
) -> dict:
    """The pairing's summary: test means over repeats with bootstrap intervals."""
    intervals = metric_intervals(
        [r["_replicate"] for r in replicates], shape.classes, seed=0, resamples=shape.resamples
    )
    tests = {}
    for name in METRIC_NAMES:
        tests[f"test_{name}"] = intervals[name].estimate  # mean over repeats
        tests[f"test_{name}_low"] = intervals[name].low
        tests[f"test_{name}_high"] = intervals[name].high
    first = replicates[0]
    return make_row(
        "leaderboard",
        **ids,
        status="ok",
        error="",
        metric=SEARCH_METRIC,
        rank=None,  # rank_pairings ranks the run's rows together
        fingerprint=fingerprint,
        repeats=len(replicates),
        search_mode="once",
        best_trial=best["trial"],
        best_params=best["params"],
        **{k: best[k] for k in CV_COLUMNS},
        **tests,
        test_metric_notes=first["test_metric_notes"],
        test_per_class=first["test_per_class"],
        test_confusion=first["test_confusion"],
        classes=json.dumps([f"class{c}" for c in range(shape.classes)]),
        train_samples=first["train_samples"],
        test_samples=shape.test_samples,
        num_trials=shape.trials,
        num_failed=0,
        num_pruned=0,
        num_params=1000 * (index + 1),
        **deployment(index),
        folds=shape.folds,
        max_epochs=shape.epochs,
        trial_epochs=sum(r["epochs_run"] for r in trial_rows),
        cpu_seconds=sum(r["cpu_seconds"] for r in trial_rows + replicates),
        gpu_seconds=0.0,
        refit_epochs=shape.epochs,
        refit_seconds=sum(r["refit_seconds"] for r in replicates),
        refit_samples_per_second=1000.0,
        refit_worker_pid=1000,
        search_seconds=10.0,
        wall_seconds=11.0,
    )


def _metric_values(quality: float) -> dict[str, float]:
    quality = float(np.clip(quality, 0.01, 0.999))
    values = {name: quality for name in METRIC_NAMES}
    values["log_loss"] = float(-np.log(quality))
    return values


def _cv(fold_rows: list[dict]) -> dict[str, float]:
    out = {}
    for name in METRIC_NAMES:
        values = np.array([r[name] for r in fold_rows])
        out[f"cv_{name}_mean"] = float(values.mean())
        out[f"cv_{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def deployment(index: int) -> dict[str, float | str | None]:
    """Deployment figures of the index-th model: the bigger, the slower."""
    return {
        "macs": 1e6 * (index + 1),
        "latency_ms": 0.5 * (index + 1),
        "latency_p95_ms": 0.6 * (index + 1),
        "throughput": 2000.0 / (index + 1),
        "peak_memory_mb": None,
        "inference_precision": "fp32",
        "inference_device": "cpu",
    }
