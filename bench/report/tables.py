"""Leaderboard tables from the merged runs: ranked on held-out test data within each group of
pairings scored on the same data (dataset and fingerprint), with paired tests of the group's
best model against each other one, and what each pairing's search cost."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from bench.audit.effect import SUBSETS
from bench.metrics import Objective
from bench.report.audit import with_audit_scores
from bench.report.budgets import budget_warnings
from bench.report.parallel import parallel_map
from bench.report.stats import Comparison, HeldOut, compare, holm, is_tied
from bench.results.ranking import competition_ranks, ranked_order
from bench.results.reader import RunSet

# (label, metric) shown in the leaderboard: test mean [95% interval].
SHOWN = [
    ("precision", "precision_macro"),
    ("recall", "recall_macro"),
    ("F1", "f1_macro"),
    ("AUC", "roc_auc"),
    ("accuracy", "accuracy"),
    ("ECE", "ece"),
    ("Brier", "brier"),
]
PAIRING_KEYS = ["run_id", "dataset", "model"]
FINGERPRINT_SHOWN = 8  # characters of a fingerprint in group names and notes
BOOTSTRAP_SEED = 0  # the report is rebuilt often: the same files give the same intervals
TESTS = ("p_mcnemar", "p_ttest", "p_wilcoxon")  # Holm-adjusted within a group


def select(
    runs: RunSet, datasets: list[str] | None = None, models: list[str] | None = None
) -> pd.DataFrame:
    """Leaderboard rows after filters, each with its `group`; a pairing run several times on
    the same data keeps its newest run."""
    board = runs["leaderboard"].copy()
    if datasets:
        board = board[board.dataset.isin(datasets)]
    if models:
        board = board[board.model.isin(models)]
    board["fingerprint"] = _known_fingerprints(board)
    board = board.sort_values("run_id").drop_duplicates(
        ["dataset", "fingerprint", "model"], keep="last"
    )
    board["group"] = group_names(board)
    return board.reset_index(drop=True)


def _known_fingerprints(board: pd.DataFrame) -> pd.Series:
    """A row without a fingerprint (a pairing that failed before its data was split) joins
    its dataset's group when the dataset has exactly one fingerprint."""
    fingerprints = board.fingerprint.fillna("").astype(str)
    for dataset, found in fingerprints.groupby(board.dataset):
        known = set(found) - {""}
        if len(known) == 1:
            fingerprints[(board.dataset == dataset) & (fingerprints == "")] = known.pop()
    return fingerprints


def group_names(board: pd.DataFrame) -> pd.Series:
    """The dataset's name, or `name [fingerprint]` where runs scored it on different data."""
    per_dataset = board.groupby("dataset").fingerprint.transform("nunique")
    short = board.fingerprint.str[:FINGERPRINT_SHOWN].replace("", "unknown")
    return board.dataset.where(per_dataset < 2, board.dataset + " [" + short + "]")


def fingerprint_notes(board: pd.DataFrame) -> list[str]:
    """One line per dataset that runs scored on different splits or preprocessing."""
    notes = []
    for dataset, rows in board.groupby("dataset", sort=True):
        fingerprints = sorted(set(rows.fingerprint) - {""})
        if len(fingerprints) < 2:
            continue
        shown = ", ".join(f"{f[:FINGERPRINT_SHOWN]}…" for f in fingerprints)
        notes.append(
            f"{dataset}: {rows.run_id.nunique()} runs scored on different splits or "
            f"preprocessing (fingerprints {shown}); shown as separate groups, not compared"
        )
    return notes


def report_notes(board: pd.DataFrame) -> list[str]:
    """What a reader must know before comparing rows: incomparable runs, unequal budgets."""
    return fingerprint_notes(board) + budget_warnings(board)


def leaderboard(
    runs: RunSet, metric: str, datasets: list[str] | None = None, models: list[str] | None = None
) -> pd.DataFrame:
    """One row per pairing, ranked within its group by the mean over repeats of test_`metric`,
    with paired tests of the group's best model against each other model."""
    board = select(runs, datasets, models)
    groups = [
        _ranked(group, metric) for _, group in board.groupby(["dataset", "fingerprint"], sort=True)
    ]
    if not groups:
        return board.assign(rank=pd.Series(dtype="Int64"), **_comparison_columns([]))
    held_out = held_out_results(runs, board, metric)
    pairs = [(g, i) for g, group in enumerate(groups) for i in _challengers(group)]
    jobs = [
        (held_out[_key(groups[g].iloc[0])], held_out[_key(groups[g].iloc[i])], metric)
        for g, i in pairs
    ]
    found = dict(zip(pairs, parallel_map(_compare, jobs), strict=True))
    result = pd.concat(
        [
            group.assign(**_against_best(group, {i: found[g, i] for i in _challengers(group)}))
            for g, group in enumerate(groups)
        ],
        ignore_index=True,
    )
    result["rank"] = result["rank"].astype("Int64")
    return with_audit_scores(result, runs["audit_ranking"], metric)


def _ranked(group: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Finished pairings ranked by their test mean, as a run's leaderboard is ranked
    (bench.results.ranking: 1 = best, ties share the better rank, unranked last)."""
    tests = group[f"test_{metric}"].astype(float).where(group.status == "ok")
    ranks = competition_ranks(tests.tolist(), Objective(metric))
    order = ranked_order(ranks, group.model.tolist())
    group = group.assign(rank=pd.Series(ranks, index=group.index, dtype=float))
    return group.iloc[order].reset_index(drop=True)


def _challengers(group: pd.DataFrame) -> list[int]:
    """Positions of the ranked rows after the best (none when nothing is ranked)."""
    ranked = group["rank"].notna().to_numpy()
    return [i for i in range(1, len(group)) if ranked[0] and ranked[i]]


def _compare(best: HeldOut, other: HeldOut, metric: str) -> Comparison | None:
    """None when the two were not scored on the same test labels."""
    try:
        return compare(best, other, metric, Objective(metric).higher_is_better, BOOTSTRAP_SEED)
    except ValueError:
        return None


def _against_best(group: pd.DataFrame, found: dict[int, Comparison | None]) -> dict[str, list]:
    """Per row, the tests of the group's best model against it (Holm-adjusted in the group)
    and the verdict: best, tied, behind, or "-" where nothing could be tested."""
    verdicts = ["best" if pd.notna(group["rank"].iloc[0]) else "-"] + ["-"] * (len(group) - 1)
    comparisons = [Comparison() for _ in range(len(group))]
    for i, comparison in found.items():
        if comparison is None:
            verdicts[i] = "not paired: test labels differ"
        else:
            comparisons[i] = comparison
    columns = _comparison_columns(comparisons)
    for test in TESTS:
        columns[test] = holm(columns[test]).tolist()
    for i, comparison in enumerate(comparisons):
        if i in found and found[i] is not None:
            tied = is_tied(
                [columns[t][i] for t in TESTS],
                comparison.difference_low,
                comparison.difference_high,
            )
            verdicts[i] = {True: "tied", False: "behind", None: "-"}[tied]
    columns["vs_best"] = verdicts
    return columns


def _comparison_columns(comparisons: list[Comparison]) -> dict[str, list]:
    fields = list(asdict(Comparison()))
    columns = {name: [asdict(c)[name] for c in comparisons] for name in fields}
    columns["paired_repeats"] = columns.pop("repeats")
    if not comparisons:
        columns["vs_best"] = []
    return columns


def _key(row: pd.Series) -> tuple:
    return tuple(row[k] for k in PAIRING_KEYS)


def held_out_results(runs: RunSet, board: pd.DataFrame, metric: str) -> dict[tuple, HeldOut]:
    """Per pairing (run_id, dataset, model): its test predictions and test scores by repeat."""
    wanted = set(map(tuple, board[PAIRING_KEYS].itertuples(index=False)))
    results: dict[tuple, HeldOut] = {key: HeldOut() for key in wanted}
    replicates = runs["replicates"]
    if len(replicates):
        ok = replicates[replicates.status == "ok"]
        for key, rows in ok.groupby(PAIRING_KEYS, sort=False):
            if key in wanted:
                results[key].scores = dict(
                    zip(rows.repeat.astype(int), rows[f"test_{metric}"].astype(float), strict=True)
                )
                trained = rows.train_samples.sum()
                if trained > 0:
                    results[key].test_train_ratio = float(rows.test_samples.sum() / trained)
    predictions = runs["predictions"]
    if len(predictions):
        for (*key, repeat), rows in predictions.groupby([*PAIRING_KEYS, "repeat"], sort=False):
            if tuple(key) in wanted:
                rows = rows.sort_values("sample")
                results[tuple(key)].predictions[int(repeat)] = (
                    rows.y_true.to_numpy(dtype=np.int64),
                    np.stack(rows.proba.to_numpy()).astype(np.float32),
                )
    return results


def interval(row: pd.Series, metric: str) -> str:
    """`mean [low, high]` of a test metric; the mean alone when there is no interval."""
    mean = row.get(f"test_{metric}")
    if mean is None or pd.isna(mean):
        return "-"
    low, high = row.get(f"test_{metric}_low"), row.get(f"test_{metric}_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def selection(row: pd.Series, metric: str) -> str:
    """`cv mean ± std` of the chosen trial over its folds (the score that chose it)."""
    mean, std = row.get(f"cv_{metric}_mean"), row.get(f"cv_{metric}_std")
    if mean is None or pd.isna(mean):
        return "-"
    return f"{mean:.3f} ± {std:.3f}" if std is not None and not pd.isna(std) else f"{mean:.3f}"


def _p(value: float) -> str:
    return "-" if pd.isna(value) else (f"{value:.3f}" if value >= 0.001 else "<0.001")


def _count(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{int(value):,}"


def _seconds(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:,.0f}"


def _latency(row: pd.Series) -> str:
    """Batch-1 latency of the kept model, median (95th percentile), in ms."""
    median, p95 = row.get("latency_ms"), row.get("latency_p95_ms")
    if median is None or pd.isna(median):
        return "-"
    return f"{median:.2f} ({p95:.2f})"


def shown_metrics(metric: str) -> list[tuple[str, str]]:
    """The ranking metric first, then the usual ones."""
    return [(metric, metric)] * (metric not in dict(SHOWN).values()) + SHOWN


def display_rows(board: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The leaderboard as strings, one column per shown figure (for Markdown and HTML)."""
    label = dict((m, lab) for lab, m in shown_metrics(metric))[metric]
    gpu = board.gpu_seconds.fillna(0).gt(0).any() if len(board) else False
    audited = [s for s in SUBSETS if f"test_{s}" in board and board[f"test_{s}"].notna().any()]
    rows = []
    for _, row in board.iterrows():
        rows.append(
            {
                "dataset": row.group,
                "rank": "-" if pd.isna(row["rank"]) else int(row["rank"]),
                "model": row.model,
                **{f"test {lab}": interval(row, m) for lab, m in shown_metrics(metric)},
                **{f"test {label} {s.replace('_', ' ')}": interval(row, s) for s in audited},
                f"selection {label} (CV)": selection(row, metric),
                "vs best": row.vs_best,
                "parameters": _count(row.num_params),
                "MACs": _count(row.get("macs")),
                "latency ms (p95)": _latency(row),
                "images/s": _count(row.get("throughput")),
                "trials": _count(row.num_trials),
                "epochs run": _count(row.trial_epochs),
                "CPU-s": _seconds(row.cpu_seconds),
                **({"GPU-s": _seconds(row.gpu_seconds)} if gpu else {}),
                "repeats": _count(row.repeats),
                "status": row.status if row.status == "ok" else f"{row.status}: {row.error}",
            }
        )
    return pd.DataFrame(rows)


def comparison_rows(group: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One group's tests of its best model against each other ranked model, as strings."""
    rows = []
    for _, row in group.iloc[1:].iterrows():
        if pd.isna(row["rank"]):
            continue
        difference = "-"
        if not pd.isna(row.difference):
            difference = f"{row.difference:+.3f}"
            if not pd.isna(row.difference_low):
                difference += f" [{row.difference_low:+.3f}, {row.difference_high:+.3f}]"
        rows.append(
            {
                "model": row.model,
                f"best − model, {metric} [95% CI]": difference,
                "McNemar p": _p(row.p_mcnemar),
                "t-test p": _p(row.p_ttest),
                "Wilcoxon p": row.wilcoxon_note or _p(row.p_wilcoxon),
                "P(best better)": "-" if pd.isna(row.p_outperform) else f"{row.p_outperform:.2f}",
                "repeats": _count(row.paired_repeats),
                "vs best": row.vs_best,
            }
        )
    return pd.DataFrame(rows)


FIGURES_NOTE = (
    "Test figures: mean over the repeats' held-out test splits [95% bootstrap interval over "
    "test images and repeats]; ranks read only these. Selection: the chosen trial's CV mean ± "
    "std over folds on repeat 0; it chose the configuration, so it is biased upward. Compute: "
    "CPU- and GPU-seconds over every trial, fold and refit."
)
TESTS_NOTE = (
    "Against the best: paired on the same test images. McNemar: exact test on one repeat's "
    "predictions. Interval: paired bootstrap of the difference over every repeat. t-test: "
    "corrected resampled t-test over the repeats' test scores (Nadeau & Bengio). Wilcoxon: "
    "signed-rank over repeats, run only where it can reach p < 0.05. p-values are "
    "Holm-adjusted within the group. P(best better): share of repeats the best wins (ties "
    "half). tied: no test separates the two (every p >= 0.05 and the interval holds 0)."
)


def to_markdown(board: pd.DataFrame, metric: str, notes: list[str] | None = None) -> str:
    """Per group, a Markdown table ranked by test `metric` and the tests against its best."""
    shown = display_rows(board, metric)
    lines = [f"# Leaderboard (ranked by held-out test {metric})", "", FIGURES_NOTE, "", TESTS_NOTE]
    lines += [""] + [f"**Note:** {note}  " for note in notes or []] + [""]
    for name, group in board.groupby("group", sort=False):
        rows = shown[shown.dataset == name].drop(columns="dataset")
        lines += [f"## {name}", "", *_markdown_table(rows), ""]
        against = comparison_rows(group, metric)
        if len(against):
            best = group.model.iloc[0]
            lines += [f"Against the best ({best}):", "", *_markdown_table(against), ""]
    return "\n".join(lines)


def _markdown_table(rows: pd.DataFrame) -> list[str]:
    columns = list(rows.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in rows.iterrows():
        cells = [str(row[c]).replace("|", "\\|") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
