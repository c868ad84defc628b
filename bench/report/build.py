"""`bench report`: leaderboard.md / .csv / .parquet and a self-contained report.html, rebuilt
from the Parquet files alone. Writes only into its output folder; never into a run folder."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics import higher_is_better
from bench.report import plots
from bench.report.stats import friedman
from bench.report.tables import display_rows, leaderboard, to_markdown
from bench.results.reader import RunSet, load_runs

REPORT_FOLDER = "report"


@dataclass
class ReportFiles:
    folder: Path
    markdown: Path
    csv: Path
    parquet: Path
    html: Path


def default_output(paths: list[str]) -> Path:
    """`<first path>/report/`: beside the results, never over a run's own files."""
    return Path(paths[0]).expanduser() / REPORT_FOLDER


def build_report(
    paths: list[str],
    metric: str = "f1_macro",
    datasets: list[str] | None = None,
    models: list[str] | None = None,
    out: str | None = None,
) -> ReportFiles:
    runs = load_runs(paths)
    board = leaderboard(runs, metric, datasets, models)
    folder = Path(out).expanduser() if out else default_output(paths)
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        folder,
        folder / "leaderboard.md",
        folder / "leaderboard.csv",
        folder / "leaderboard.parquet",
        folder / "report.html",
    )
    files.markdown.write_text(to_markdown(board, metric))
    board.to_csv(files.csv, index=False)
    board.to_parquet(files.parquet, index=False)
    files.html.write_text(render_html(runs, board, metric))
    return files


def render_html(runs: RunSet, board: pd.DataFrame, metric: str) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("bench.report", "templates"), autoescape=select_autoescape(["html"])
    )
    shown = display_rows(board)
    return env.get_template("report.html").render(
        title=", ".join(sorted(board.dataset.unique())) if len(board) else "empty",
        metric=metric,
        runs=runs.runs,
        notes=_missing_notes(runs),
        columns=list(shown.columns),
        rows=shown.to_dict("records"),
        friedman=_friedman_section(board, metric),
        datasets=[
            _dataset_section(runs, name, group, metric)
            for name, group in board.groupby("dataset", sort=True)
        ],
    )


def _missing_notes(runs: RunSet) -> list[str]:
    what = {
        "predictions": "ROC curves",
        "epochs": "learning curves",
        "trials": "search history and importances",
        "folds": "significance tests",
    }
    return [
        f"{len(missing)} run(s) have no {name}.parquet: their {what[name]} are left out"
        for name, missing in runs.missing.items()
        if missing and name in what
    ]


def _friedman_section(board: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    ok = board[board.status == "ok"]
    table = ok.pivot_table(index="dataset", columns="model", values=f"cv_{metric}_mean")
    table = table.dropna(axis=1)  # models present on every dataset
    if table.shape[0] < 2 or table.shape[1] < 3:
        return None
    result = friedman(table.to_numpy(), list(table.columns), higher_is_better(metric))
    ranks = sorted(zip(result.models, result.average_ranks, strict=True), key=lambda kv: kv[1])
    cd_plot = (
        plots.cd_diagram(result.models, result.average_ranks, result.critical_difference)
        if table.shape[0] >= 3
        else None
    )
    return {"datasets": table.shape[0], "result": result, "ranks": ranks, "cd_plot": cd_plot}


def _dataset_section(runs: RunSet, name: str, group: pd.DataFrame, metric: str) -> dict[str, Any]:
    ok = group[group.status == "ok"]
    jobs = [
        (row, *(_rows_of(runs[t], row) for t in ("predictions", "epochs", "trials")), metric)
        for _, row in group.iterrows()
    ]
    return {
        "name": name,
        "bars": plots.metric_bars(group, metric) if len(ok) else None,
        "pairings": _map(_pairing_section, jobs),
    }


def _map(fn, jobs: list[tuple]) -> list[Any]:
    """Figures are CPU-bound and independent: draw them on every core (fork keeps it cheap)."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2:
        return [fn(*job) for job in jobs]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(fn, *zip(*jobs, strict=True)))


def _pairing_section(
    row: pd.Series,
    predictions: pd.DataFrame,
    epochs: pd.DataFrame,
    trials: pd.DataFrame,
    metric: str,
) -> dict[str, Any]:
    figures, notes = [], []
    if row.status != "ok":
        return {
            "model": row.model,
            "figures": [],
            "importances": {},
            "notes": [f"failed: {row.error}"],
        }
    classes = json.loads(row.classes)
    figures.append(
        {
            "caption": "normalized confusion matrix (test)",
            "uri": plots.confusion_heatmap(row.test_confusion, classes),
        }
    )
    figures.append(
        {"caption": "per-class F1 (test)", "uri": plots.per_class_f1(row.test_per_class, classes)}
    )
    if len(predictions):
        figures.append(
            {
                "caption": "one-vs-rest ROC (test)",
                "uri": plots.roc_curves(predictions.sort_values("sample"), classes),
            }
        )
    else:
        notes.append("no predictions: ROC curves left out")
    epochs = (
        epochs[(epochs.phase == "cv") & (epochs.trial == row.best_trial)] if len(epochs) else epochs
    )
    if len(epochs):
        figures.append(
            {
                "caption": "learning curves of the chosen trial (mean over folds)",
                "uri": plots.learning_curves(epochs, metric),
            }
        )
    else:
        notes.append("no epochs: learning curves left out")
    importances: dict[str, float] = {}
    if len(trials):
        figures.append(
            {
                "caption": "search history",
                "uri": plots.search_history(trials, higher_is_better(metric)),
            }
        )
        importances = plots.param_importances(trials)
        if importances:
            figures.append(
                {
                    "caption": "hyperparameter importances",
                    "uri": plots.importances_chart(importances),
                }
            )
    else:
        notes.append("no trials: search history left out")
    return {"model": row.model, "figures": figures, "importances": importances, "notes": notes}


def _rows_of(table: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    if table.empty:
        return table
    mask = (
        (table.run_id == row.run_id) & (table.dataset == row.dataset) & (table.model == row.model)
    )
    return table[np.asarray(mask)]
