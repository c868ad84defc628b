"""`bench report`: leaderboard.md / .csv / .parquet and a self-contained report.html, rebuilt
from the Parquet files alone. Writes only into its output folder; never into a run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError
from bench.metrics import Objective
from bench.report import plots
from bench.report.audit import audit_notes
from bench.report.budgets import (
    EQUAL_COMPUTE_FRACTIONS,
    equal_compute_budgets,
    rank_at_equal_compute,
    search_progress,
)
from bench.report.parallel import parallel_map
from bench.report.stats import friedman
from bench.report.tables import (
    FIGURES_NOTE,
    PAIRING_KEYS,
    TESTS_NOTE,
    comparison_rows,
    display_rows,
    leaderboard,
    report_notes,
    to_markdown,
)
from bench.results.reader import RunSet, load_runs
from bench.results.store import RunStore

REPORT_FOLDER = "report"


@dataclass
class ReportFiles:
    folder: Path
    markdown: Path
    csv: Path
    parquet: Path
    html: Path
    # What a reader must know before comparing rows (incomparable runs, unequal budgets);
    # also in the Markdown and HTML, and for the CLI to print.
    notes: list[str] = field(default_factory=list)


def default_output(paths: list[str]) -> Path:
    """`<first path>/report/` for a folder of runs; beside a run named first, as
    `report-<run id>/`: a run's own folder holds only what its run wrote."""
    first = Path(paths[0]).expanduser()
    if RunStore(str(first)).is_run():
        return first.parent / f"{REPORT_FOLDER}-{first.name}"
    return first / REPORT_FOLDER


def _refuse_run_folder(folder: Path) -> None:
    """A report written into a run's own folder would replace its leaderboard.parquet."""
    if RunStore(str(folder)).is_run():
        raise BenchError(
            f"--out {folder}: that is a run folder, and the report would overwrite its "
            f"leaderboard; pick another folder, or leave --out out (the report then goes "
            f"beside the runs)"
        )


def build_report(
    paths: list[str],
    metric: str | None = None,
    datasets: list[str] | None = None,
    models: list[str] | None = None,
    out: str | None = None,
) -> ReportFiles:
    """`metric`: rank by it; by default, by the metric the runs searched on."""
    folder = Path(out).expanduser() if out else default_output(paths)
    _refuse_run_folder(folder)  # before reading anything
    runs = load_runs(paths)
    metric = metric or runs.search_metric()
    board = leaderboard(runs, metric, datasets, models)
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        folder,
        folder / "leaderboard.md",
        folder / "leaderboard.csv",
        folder / "leaderboard.parquet",
        folder / "report.html",
        report_notes(board) + audit_notes(runs["audit_ranking"]),
    )
    files.markdown.write_text(to_markdown(board, metric, files.notes))
    board.to_csv(files.csv, index=False)
    board.to_parquet(files.parquet, index=False)
    files.html.write_text(render_html(runs, board, metric, files.notes))
    return files


def render_html(runs: RunSet, board: pd.DataFrame, metric: str, notes: list[str]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from bench.report.audit import audit_sections

    env = Environment(
        loader=PackageLoader("bench.report", "templates"), autoescape=select_autoescape(["html"])
    )
    shown = display_rows(board, metric)
    per_pairing = {name: _first_repeat(runs[name]) for name in ("predictions", "epochs", "trials")}
    return env.get_template("report.html").render(
        title=", ".join(sorted(board.dataset.unique())) if len(board) else "empty",
        metric=metric,
        runs=runs.runs,
        figures_note=FIGURES_NOTE,
        tests_note=TESTS_NOTE,
        notes=_missing_notes(runs) + notes,
        columns=list(shown.columns),
        rows=shown.to_dict("records"),
        friedman=_friedman_section(board, metric),
        groups=[
            _group_section(name, group, per_pairing, metric)
            for name, group in board.groupby("group", sort=False)
        ],
        audits=audit_sections(runs),
    )


def _missing_notes(runs: RunSet) -> list[str]:
    what = {
        "predictions": "ROC curves, McNemar tests and paired intervals",
        "replicates": "tests over repeats (t-test, Wilcoxon, P(best better))",
        "epochs": "learning curves",
        "trials": "search history, importances and compute curves",
    }
    return [
        f"{len(missing)} run(s) have no {name}.parquet: their {what[name]} are left out"
        for name, missing in runs.missing.items()
        if missing and name in what
    ]


def _friedman_section(board: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    """Across datasets on test means. A dataset that runs scored on different data enters
    once, with its group of most models: its groups are not independent datasets."""
    ok = board[board.status == "ok"]
    largest = (
        ok.groupby(["dataset", "group"]).size().sort_values(ascending=False).reset_index()
    ).drop_duplicates("dataset")
    ok = ok[ok.group.isin(largest.group)]
    table = ok.pivot_table(index="dataset", columns="model", values=f"test_{metric}")
    table = table.dropna(axis=1)  # models present on every dataset
    if table.shape[0] < 2 or table.shape[1] < 3:
        return None
    higher = Objective(metric).higher_is_better
    result = friedman(table.to_numpy(), list(table.columns), higher)
    ranks = sorted(zip(result.models, result.average_ranks, strict=True), key=lambda kv: kv[1])
    cd_plot = (
        plots.cd_diagram(result.models, result.average_ranks, result.critical_difference)
        if table.shape[0] >= 3
        else None
    )
    return {"datasets": table.shape[0], "result": result, "ranks": ranks, "cd_plot": cd_plot}


def _group_section(
    name: str, group: pd.DataFrame, per_pairing: dict[str, dict[tuple, pd.DataFrame]], metric: str
) -> dict[str, Any]:
    ok = group[group.status == "ok"]
    keys = list(group[PAIRING_KEYS].itertuples(index=False, name=None))

    def rows_of(table: str, key: tuple) -> pd.DataFrame:
        return per_pairing[table].get(key, pd.DataFrame())

    jobs = [
        (row, *(rows_of(t, key) for t in ("predictions", "epochs", "trials")), metric)
        for (_, row), key in zip(group.iterrows(), keys, strict=True)
    ]
    trials = [rows_of("trials", key) for key in keys]
    against = comparison_rows(group, metric)
    return {
        "name": name,
        "best": group.model.iloc[0],
        "bars": plots.metric_bars(group, metric) if len(ok) else None,
        "pareto": _pareto(ok, metric),
        "comparison_columns": list(against.columns),
        "comparisons": against.to_dict("records"),
        **_compute_section(pd.concat(trials) if any(len(t) for t in trials) else pd.DataFrame()),
        "pairings": parallel_map(_pairing_section, jobs),
    }


def _pareto(ok: pd.DataFrame, metric: str) -> str | None:
    """The accuracy-latency plot, when at least two kept models were timed."""
    if "latency_ms" not in ok or ok.latency_ms.notna().sum() < 2:
        return None
    return plots.pareto_plot(ok, metric, Objective(metric).higher_is_better)


def _compute_section(trials: pd.DataFrame) -> dict[str, Any]:
    """Best-so-far CV score against compute, and the ranks at equal compute."""
    if trials.empty:
        return {"compute_plot": None}
    trials = trials[trials.cpu_seconds.notna() | trials.gpu_seconds.notna()]
    if trials.empty or trials.metric.nunique() != 1:
        return {"compute_plot": None}  # no costs recorded, or scores not comparable
    metric = trials.metric.iloc[0]
    progress = search_progress(trials)
    budgets = equal_compute_budgets(progress)
    table = rank_at_equal_compute(progress, Objective(metric).higher_is_better)
    columns = [
        f"{fraction:.0%} ({budget:,.0f} s)"
        for fraction, budget in zip(EQUAL_COMPUTE_FRACTIONS, budgets, strict=True)
    ]
    rows = [
        {
            "model": row.model,
            **{
                column: _score_and_rank(row[f"best_{f:g}"], row[f"rank_{f:g}"])
                for column, f in zip(columns, EQUAL_COMPUTE_FRACTIONS, strict=True)
            },
        }
        for _, row in table.iterrows()
    ]
    return {
        "compute_plot": plots.compute_curves(progress, budgets, metric),
        "compute_metric": metric,
        "compute_columns": ["model", *columns],
        "compute_rows": rows,
    }


def _score_and_rank(score: float, rank: float) -> str:
    return "-" if pd.isna(score) else f"{score:.3f} (#{int(rank)})"


def _pairing_section(
    row: pd.Series,
    predictions: pd.DataFrame,
    epochs: pd.DataFrame,
    trials: pd.DataFrame,
    metric: str,
) -> dict[str, Any]:
    if row.status != "ok":
        return {
            "model": row.model,
            "figures": [],
            "importances": {},
            "notes": [f"failed: {row.error}"],
        }
    figures, notes = _test_figures(row, predictions)
    if len(epochs):
        epochs = epochs[(epochs.phase == "cv") & (epochs.trial == row.best_trial)]
    if len(epochs):
        caption = "learning curves of the chosen trial (mean over folds)"
        figures.append(_figure(caption, plots.learning_curves(epochs, metric)))
    else:
        notes.append("no epochs: learning curves left out")
    search_figures, importances = _search_figures(trials)
    figures += search_figures
    if not len(trials):
        notes.append("no trials: search history left out")
    return {"model": row.model, "figures": figures, "importances": importances, "notes": notes}


def _figure(caption: str, uri: str) -> dict[str, str]:
    return {"caption": caption, "uri": uri}


def _test_figures(
    row: pd.Series, predictions: pd.DataFrame
) -> tuple[list[dict[str, str]], list[str]]:
    """The held-out figures of repeat 0: confusion matrix, per-class F1, ROC curves."""
    classes = json.loads(row.classes)
    figures = [
        _figure(
            "normalized confusion matrix (test, repeat 0)",
            plots.confusion_heatmap(row.test_confusion, classes),
        ),
        _figure("per-class F1 (test, repeat 0)", plots.per_class_f1(row.test_per_class, classes)),
    ]
    if not len(predictions):
        return figures, ["no predictions: ROC curves left out"]
    ordered = predictions.sort_values("sample")
    roc = plots.roc_curves(ordered, classes)
    reliability = plots.reliability_diagram(ordered)
    return figures + [
        _figure("one-vs-rest ROC (test, repeat 0)", roc),
        _figure("reliability diagram (test, repeat 0)", reliability),
    ], []


def _search_figures(trials: pd.DataFrame) -> tuple[list[dict[str, str]], dict[str, float]]:
    """The search history and the hyperparameter importances of repeat 0's search."""
    if not len(trials):
        return [], {}
    # the trials' score is the search metric's, not necessarily the report's
    up = Objective(trials.metric.iloc[0]).higher_is_better
    figures = [_figure("search history (repeat 0)", plots.search_history(trials, up))]
    importances = plots.param_importances(trials)
    if importances:
        figures.append(_figure("hyperparameter importances", plots.importances_chart(importances)))
    return figures, importances


def _first_repeat(table: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """Repeat 0's rows of each pairing (run_id, dataset, model): the repeat the search ran on,
    and whose test split every model shares."""
    if table.empty:
        return {}
    return dict(iter(table[table.repeat == 0].groupby(PAIRING_KEYS, sort=False)))
