"""Synthetic run folders in the real schema, for the report's tests and its speed benchmark.

Nothing here trains: the figures are random draws, written through the same RunStore and
schema as `bench run` writes, so a report cannot tell them apart by format."""

from __future__ import annotations

import json

import numpy as np

from bench.metrics import METRIC_NAMES, compute_metrics
from bench.results.finalize import rank_pairings
from bench.results.store import RunStore


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
    seed: int = 0,
    run_id: str | None = None,
) -> RunStore:
    rng = np.random.default_rng(seed)
    store = RunStore.create(output, benchmark, run_id)
    tables: dict[str, list[dict]] = {n: [] for n in ("folds", "epochs", "trials", "predictions")}
    board = []
    for dataset in datasets:
        for m, model in enumerate(models):
            ids = {
                "run_id": store.run_id,
                "benchmark": benchmark,
                "dataset": dataset,
                "model": model,
            }
            skill = 0.55 + 0.4 * (m + 1) / (len(models) + 1)  # later models are better
            trial_rows = []
            for t in range(trials):
                params = {
                    "lr": float(10 ** rng.uniform(-4, -2)),
                    "hidden_dim": int(rng.choice([64, 128])),
                }
                quality = float(
                    np.clip(
                        skill - 0.1 * abs(np.log10(params["lr"]) + 3) + rng.normal(0, 0.01),
                        0.05,
                        0.99,
                    )
                )
                fold_rows = []
                for k in range(folds):
                    values = _metric_values(quality + rng.normal(0, 0.01))
                    fold_rows.append(
                        {
                            **ids,
                            "trial": t,
                            "trial_id": f"t{t}",
                            "fold": k,
                            "params": json.dumps(params, sort_keys=True),
                            **values,
                            "metric_notes": "",
                            "best_epoch": epochs,
                            "epochs_run": epochs,
                            "train_seconds": 1.0,
                            "eval_seconds": 0.1,
                            "samples_per_second": 1000.0,
                            "workers": 1,
                            "node_id": "node",
                            "gpu_ids": "",
                            "worker_pid": 1000 + t % 2,
                        }
                    )
                    for e in range(1, epochs + 1):
                        tables["epochs"].append(
                            {
                                **ids,
                                "trial": t,
                                "phase": "cv",
                                "fold": k,
                                "epoch": e,
                                "train_loss": 1.0 / e,
                                "val_loss": 1.1 / e,
                                "val_score": quality * e / epochs,
                                "seconds": 0.3,
                            }
                        )
                tables["folds"] += fold_rows
                summary = {
                    **ids,
                    "trial": t,
                    "trial_id": f"t{t}",
                    "params": fold_rows[0]["params"],
                    "status": "ok",
                    "error": "",
                    "metric": "f1_macro",
                    **_cv(fold_rows),
                    "epochs_run": epochs,
                    "wall_seconds": 3.0,
                }
                summary["score"] = summary["cv_f1_macro_mean"]
                trial_rows.append(summary)
            tables["trials"] += trial_rows
            best = max(trial_rows, key=lambda r: r["score"])
            y = np.arange(test_samples) % classes
            proba = rng.dirichlet(np.ones(classes), size=test_samples)
            proba[np.arange(test_samples), y] += (
                best["score"] * 3
            )  # skill shows in the probabilities
            proba /= proba.sum(axis=1, keepdims=True)
            report = compute_metrics(y, proba, classes)
            tables["predictions"] += [
                {
                    **ids,
                    "sample": i,
                    "y_true": int(y[i]),
                    "y_pred": int(proba[i].argmax()),
                    "proba": proba[i].astype(np.float32).tolist(),
                }
                for i in range(test_samples)
            ]
            board.append(
                {
                    **ids,
                    "status": "ok",
                    "error": "",
                    "metric": "f1_macro",
                    "best_trial": best["trial"],
                    "best_params": best["params"],
                    **{k: v for k, v in best.items() if k.startswith("cv_")},
                    **{f"test_{k}": v for k, v in report.values.items()},
                    "test_metric_notes": "",
                    "test_per_class": json.dumps(report.per_class),
                    "test_confusion": json.dumps(report.confusion),
                    "classes": json.dumps([f"class{c}" for c in range(classes)]),
                    "test_samples": test_samples,
                    "num_trials": trials,
                    "num_failed": 0,
                    "num_pruned": 0,
                    "num_params": 1000 * (m + 1),
                    "folds": folds,
                    "refit_epochs": epochs,
                    "refit_seconds": 1.0,
                    "refit_samples_per_second": 1000.0,
                    "refit_worker_pid": 1000,
                    "search_seconds": 10.0,
                    "wall_seconds": 11.0,
                }
            )
    for name, rows in tables.items():
        store.write_table(name, rows)
    store.write_table("leaderboard", rank_pairings(board))
    return store


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
