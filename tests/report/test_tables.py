"""Tables and the report over results written in the real schema (synthetic figures), and over
a small hand-built run whose p-values are known."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.metrics import METRIC_NAMES, higher_is_better
from bench.report.budgets import budget_warnings, rank_at_equal_compute, search_progress
from bench.report.build import build_report
from bench.report.tables import leaderboard, report_notes, to_markdown
from bench.results.reader import RunSet, load_runs
from bench.results.schema import SchemaError, to_table
from bench.testing.rows import sparse_row
from bench.testing.synthetic import write_synthetic_run

MODELS = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("written")
    write_synthetic_run(
        str(folder), "b1", ["d1", "d2", "d3"], MODELS, run_id="20260101-000000-aaaa"
    )
    return folder


@pytest.fixture
def results(written, tmp_path):
    """A fresh copy of the written run for each test (tests add runs and delete files)."""
    shutil.copytree(written, tmp_path / "results")
    return tmp_path / "results"


@pytest.fixture(scope="module")
def one_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-dataset")
    write_synthetic_run(str(folder), "b", ["d1"], MODELS)
    return load_runs([str(folder)])


# A hand-built run: models a, b, c on one dataset, 3 repeats, n_test / n_train = 100 / 400.
# Per-repeat test F1 (replicates.parquet): a - b = 0.02, 0.01, 0.03 and a - c = 0.10, 0.12,
# 0.08, so the corrected resampled t-test gives, by hand (t with 2 df has a closed form,
# p = 1 - t / sqrt(2 + t^2)): p(a, b) = 1 - sqrt(48/62) = 0.120117 and
# p(a, c) = 1 - sqrt(300/314) = 0.022547; Holm over the two: 0.120117 and 0.045094.
# Repeat 0's predictions (60 images): only a right on images 0-9 where c is wrong, only c
# right on 10-11 (b = 10, c = 2: exact McNemar p = 158/4096 = 0.038574, Holm-adjusted
# 0.077148), and a vs b disagree on 5 images, 3 to 2 (p = 1).
HAND_F1 = {"a": [0.92, 0.91, 0.93], "b": [0.90, 0.90, 0.90], "c": [0.82, 0.79, 0.85]}
HAND_CV = {"a": 0.80, "b": 0.85, "c": 0.99}  # c chose best on CV but tests worst


def _hand_correct(model: str) -> np.ndarray:
    right = np.ones(60, dtype=bool)
    if model == "a":
        right[10:12] = False
    if model == "b":
        right[0:3] = False
    if model == "c":
        right[0:10] = False
    return right


def _hand_rows(model: str) -> tuple[dict, list[dict], list[dict]]:
    ids = {"run_id": "r", "benchmark": "b", "dataset": "d", "model": model}
    board = sparse_row(
        "leaderboard",
        **ids,
        status="ok",
        metric="f1_macro",
        fingerprint="f00d",
        repeats=3,
        test_f1_macro=float(np.mean(HAND_F1[model])),
        cv_f1_macro_mean=HAND_CV[model],
        cpu_seconds=10.0,
    )
    replicates = [
        sparse_row("replicates", **ids, repeat=r, status="ok", test_f1_macro=score)
        | {"train_samples": 400, "test_samples": 100}
        for r, score in enumerate(HAND_F1[model])
    ]
    y = np.arange(60) % 2
    predicted = np.where(_hand_correct(model), y, 1 - y)
    predictions = [
        sparse_row("predictions", **ids, repeat=r, sample=i, y_true=int(y[i]))
        | {"y_pred": int(predicted[i]), "proba": [0.9, 0.1] if predicted[i] == 0 else [0.1, 0.9]}
        for r in range(3)
        for i in range(60)
    ]
    return board, replicates, predictions


@pytest.fixture
def hand_built():
    rows = [_hand_rows(m) for m in "abc"]
    tables = {
        "leaderboard": [r[0] for r in rows],
        "replicates": [x for r in rows for x in r[1]],
        "predictions": [x for r in rows for x in r[2]],
        "trials": [],
        "epochs": [],
    }
    return RunSet(["r"], {name: to_table(name, t).to_pandas() for name, t in tables.items()})


def test_known_p_values_holm_adjusted_within_the_group(hand_built):
    board = leaderboard(hand_built, "f1_macro").set_index("model")
    assert board.p_ttest["b"] == pytest.approx(0.120117, abs=1e-6)
    assert board.p_ttest["c"] == pytest.approx(2 * 0.022547, abs=1e-5)
    assert board.p_mcnemar["b"] == 1.0
    assert board.p_mcnemar["c"] == pytest.approx(2 * 158 / 4096)
    assert board.p_outperform[["b", "c"]].tolist() == [1.0, 1.0]
    assert board.paired_repeats[["b", "c"]].tolist() == [3, 3]
    assert board.difference_low["c"] > 0  # c is wrong on 8 more images than a
    assert board.wilcoxon_note["c"] == "n/a (needs >= 6 repeats)"


def test_tied_when_no_test_separates_from_the_best(hand_built):
    board = leaderboard(hand_built, "f1_macro").set_index("model")
    # b: every adjusted p >= 0.05 and its interval holds 0; c: the t-test separates it
    assert board.difference_low["b"] <= 0 <= board.difference_high["b"]
    assert board.vs_best.to_dict() == {"a": "best", "b": "tied", "c": "behind"}


def test_ranked_by_test_never_by_selection_scores(hand_built):
    board = leaderboard(hand_built, "f1_macro")
    # c has the best CV (selection) score and the worst test score
    assert board.model.tolist() == ["a", "b", "c"] and board["rank"].tolist() == [1, 2, 3]
    text = to_markdown(board, "f1_macro")
    assert "| 3 | c | " in text and "0.990" in text  # shown, as a selection score


def test_ranked_per_dataset_with_intervals_and_tests_against_the_best(results):
    board = leaderboard(load_runs([str(results)]), "f1_macro")
    assert len(board) == 9
    for _, group in board.groupby("dataset"):
        assert group["rank"].tolist() == [1, 2, 3]
        means = group.test_f1_macro.tolist()
        assert means == sorted(means, reverse=True)
        assert (group.test_f1_macro_low <= group.test_f1_macro).all()
        assert (group.test_f1_macro <= group.test_f1_macro_high).all()
        assert group.vs_best.iloc[0] == "best" and math.isnan(group.p_ttest.iloc[0])
        assert group.p_ttest.iloc[1:].between(0, 1).all()
        assert group.p_mcnemar.iloc[1:].between(0, 1).all()
        assert set(group.vs_best.iloc[1:]) <= {"tied", "behind"}


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_any_metric_ranks_by_its_test_mean_in_its_direction(one_dataset, metric):
    board = leaderboard(one_dataset, metric)
    for _, group in board.groupby("dataset"):
        ranked = group[group["rank"].notna()]
        means = ranked[f"test_{metric}"].tolist()
        assert means == sorted(means, reverse=higher_is_better(metric))
        if board[f"test_{metric}"].isna().all():  # top5_accuracy with 4 classes
            assert ranked.empty and set(group.vs_best) == {"-"}
    assert f"ranked by held-out test {metric}" in to_markdown(board, metric)


def test_filters_and_newest_rerun_wins(results):
    write_synthetic_run(
        str(results), "b1", ["d1"], ["alpha"], seed=5, run_id="20270101-000000-bbbb"
    )
    board = leaderboard(
        load_runs([str(results)]), "f1_macro", datasets=["d1"], models=["alpha", "beta"]
    )
    assert sorted(board.model) == ["alpha", "beta"]
    assert board.set_index("model").loc["alpha", "run_id"] == "20270101-000000-bbbb"
    assert report_notes(board) == []  # same data: one group, nothing to warn about


def test_runs_on_different_data_are_separate_groups_never_paired(tmp_path):
    write_synthetic_run(str(tmp_path), "b", ["d1"], MODELS, run_id="r1", fingerprint="ab12cd34ef")
    write_synthetic_run(
        str(tmp_path), "b", ["d1"], MODELS[:2], seed=1, run_id="r2", fingerprint="9f8e7d6c5b"
    )
    board = leaderboard(load_runs([str(tmp_path)]), "f1_macro")
    groups = {name: group for name, group in board.groupby("group")}
    assert set(groups) == {"d1 [ab12cd34]", "d1 [9f8e7d6c]"}
    assert groups["d1 [ab12cd34]"]["rank"].tolist() == [1, 2, 3]
    assert groups["d1 [9f8e7d6c]"]["rank"].tolist() == [1, 2]
    assert set(groups["d1 [9f8e7d6c]"].run_id) == {"r2"}  # r1's rows did not join them
    assert board.vs_best.isin(["best", "tied", "behind"]).all()  # every pair shares labels
    note = (
        "d1: 2 runs scored on different splits or preprocessing (fingerprints 9f8e7d6c…, "
        "ab12cd34…); shown as separate groups, not compared"
    )
    assert report_notes(board) == [note]
    files = build_report([str(tmp_path)], out=str(tmp_path / "out"))
    assert files.notes == [note]
    markdown = files.markdown.read_text()
    assert note in markdown and "## d1 [ab12cd34]" in markdown
    assert "d1 [9f8e7d6c]" in files.html.read_text()


def test_budget_warning_only_when_budgets_differ_more_than_twice(tmp_path):
    # alpha: 4 trials x 10 s + 3 refits x 1 s = 43 s. gamma at 19.675 s a trial: 81.7 s
    # (1.9x); at 30 s a trial: 123 s (2.9x).
    costs = {"near": {"gamma": 19.675}, "far": {"gamma": 30.0}}
    warnings = {}
    for name, cost in costs.items():
        write_synthetic_run(str(tmp_path / name), "b", ["d1"], MODELS, trial_cpu_seconds=cost)
        warnings[name] = budget_warnings(leaderboard(load_runs([str(tmp_path / name)]), "f1_macro"))
    assert warnings["near"] == []
    assert len(warnings["far"]) == 1
    assert warnings["far"][0].startswith(
        "d1: compute budgets differ 2.9x (alpha 43 s to gamma 123 s"
    )
    files = build_report([str(tmp_path / "far")], out=str(tmp_path / "out"))
    assert files.notes == warnings["far"] and warnings["far"][0] in files.markdown.read_text()


def test_rank_at_equal_compute():
    # cheap: five 1-second trials (the first half CPU, half GPU); its pruned trial's 0.95
    # scores nothing. dear: two 5-second trials. The smallest search is 5 s: budgets 1.25,
    # 2.5 and 5 s. dear's first trial fits only the last, and it has the better final best
    # (0.9), but at equal compute cheap wins.
    trials = pd.DataFrame(
        {
            "model": ["cheap"] * 5 + ["dear"] * 2,
            "trial": [0, 1, 2, 3, 4, 0, 1],
            "status": ["ok", "ok", "pruned", "ok", "ok", "ok", "ok"],
            "score": [0.5, 0.6, 0.95, 0.7, 0.8, 0.75, 0.9],
            "metric": "f1_macro",
            "cpu_seconds": [0.5, 1, 1, 1, 1, 5, 5],
            "gpu_seconds": [0.5, 0, 0, 0, 0, 0, 0],
        }
    )
    table = rank_at_equal_compute(search_progress(trials), higher=True).set_index("model")
    assert table["best_0.25"].tolist()[0] == 0.5 and math.isnan(table["best_0.25"]["dear"])
    assert table["best_0.5"]["cheap"] == 0.6 and math.isnan(table["rank_0.5"]["dear"])
    assert table["best_1"].tolist() == [0.8, 0.75]
    assert table["rank_1"].tolist() == [1, 2]
    # a loss: the lowest so far counts, so cheap keeps its first 0.5 and still wins
    losses = trials.assign(metric="log_loss")
    table = rank_at_equal_compute(search_progress(losses), higher=False).set_index("model")
    assert table["best_1"].tolist() == [0.5, 0.75] and table["rank_1"].tolist() == [1, 2]


def test_report_files_and_nothing_written_into_the_run(results):
    run = next(results.glob("b1/*"))
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    files = build_report([str(results)], out=str(results / "out"))
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
    for path in (files.markdown, files.csv, files.parquet, files.html):
        assert path.is_file() and path.stat().st_size > 0
    html = files.html.read_text()
    assert html.count('class="leaderboard-row"') == 9
    assert "Friedman test on the ranks of the test means over 3 datasets" in html
    assert "critical-difference diagram" in html
    assert html.count("Against the best (gamma)") == 3
    assert html.count("At equal compute") == 3
    assert html.count("reliability diagram (test, repeat 0)") == 2 * 9  # alt text + caption
    assert html.count("the Pareto front joins the models") == 3  # one per dataset
    assert "http://" not in html and "https://" not in html  # self-contained
    merged = pd.read_parquet(files.parquet)
    assert len(merged) == 9
    assert {"rank", "group", "p_mcnemar", "p_ttest", "p_wilcoxon", "vs_best"} <= set(merged)


def test_a_report_is_never_written_over_a_run(results):
    run = next(results.glob("b1/*"))
    (run / "config.yaml").write_text("name: b1\n")  # what marks a run's folder
    before = (run / "leaderboard.parquet").read_bytes()
    with pytest.raises(BenchError, match="that is a run folder, and the report would overwrite"):
        build_report([str(run)], out=str(run))
    assert (run / "leaderboard.parquet").read_bytes() == before
    # with no --out, a report of one run goes beside it, not into it
    files = build_report([str(run)])
    assert files.folder == run.parent / f"report-{run.name}" and files.html.is_file()
    assert not (run / "report").exists()


def test_missing_optional_files_drop_sections_with_a_note(results):
    run = next(results.glob("b1/*"))
    for name in ("predictions", "epochs", "replicates"):
        (run / f"{name}.parquet").unlink()
    files = build_report([str(results)], out=str(results / "out"))
    html = files.html.read_text()
    assert "have no predictions.parquet" in html and "have no epochs.parquet" in html
    assert "have no replicates.parquet" in html
    assert "one-vs-rest ROC" not in html and "reliability diagram" not in html
    board = pd.read_parquet(files.parquet)
    assert board.p_mcnemar.isna().all() and board.p_ttest.isna().all()
    assert set(board.vs_best) == {"best", "-"}  # nothing tested: no verdict


def test_values_are_escaped(tmp_path):
    write_synthetic_run(str(tmp_path), "b", ["<script>alert(1)</script>"], MODELS)
    html = build_report([str(tmp_path)], out=str(tmp_path / "out")).html.read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_other_schema_version_is_refused_with_a_fix(results):
    import pyarrow.parquet as pq

    run = next(results.glob("b1/*"))
    table = pq.read_table(run / "leaderboard.parquet")
    pq.write_table(
        table.replace_schema_metadata({b"bench.schema_version": b"99"}), run / "leaderboard.parquet"
    )
    with pytest.raises(SchemaError, match="version 99.*rerun the benchmark"):
        load_runs([str(results)])


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="no leaderboard.parquet below it"):
        load_runs([str(tmp_path)])


def test_per_class_and_confusion_are_json(results):
    board = leaderboard(load_runs([str(results)]), "f1_macro")
    row = board.iloc[0]
    assert len(json.loads(row.test_confusion)) == len(json.loads(row.classes))


def test_results_are_read_through_a_uri(results):
    board = leaderboard(load_runs([results.as_uri()]), "f1_macro")
    assert len(board) == 9


def test_a_failed_pairing_is_unranked_and_stays_in_its_datasets_group(results):
    from bench.results.store import RunStore

    store = RunStore(str(next(results.glob("b1/*"))))
    rows = store.read_table("leaderboard.parquet").to_pylist()
    failed = {k: None for k in rows[0]} | {
        **{k: rows[0][k] for k in ("run_id", "benchmark", "dataset", "metric")},
        "model": "delta",
        "status": "failed",
        "error": "CUDA out of memory",
    }
    store.write_table("leaderboard", [*rows, failed])  # no fingerprint: it never split data
    files = build_report([str(results)], out=str(results / "out"))
    board = pd.read_parquet(files.parquet)
    mine = board[board.model == "delta"].iloc[0]
    assert pd.isna(mine["rank"]) and mine.vs_best == "-" and mine.group == mine.dataset
    assert files.notes == []  # not a second fingerprint
    assert "failed: CUDA out of memory" in files.markdown.read_text()


def test_a_report_ranks_by_the_runs_own_metric_unless_told(tmp_path):
    """A run that searched on log loss is ranked by test log loss (lower first) by default."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_synthetic_run(str(tmp_path), "b", ["d1"], MODELS)
    path = next(tmp_path.glob("b/*")) / "leaderboard.parquet"
    table = pq.read_table(path)
    column = table.schema.get_field_index("metric")
    table = table.set_column(column, "metric", pa.array(["log_loss"] * table.num_rows))
    pq.write_table(table, path)
    assert load_runs([str(tmp_path)]).search_metric() == "log_loss"
    files = build_report([str(tmp_path)], out=str(tmp_path / "out"))
    assert "log_loss" in files.markdown.read_text().splitlines()[0]
    board = pd.read_parquet(files.parquet).sort_values("rank")
    assert board.test_log_loss.is_monotonic_increasing
    told = build_report([str(tmp_path)], "accuracy", out=str(tmp_path / "told"))
    assert "accuracy" in told.markdown.read_text().splitlines()[0]


def test_the_reliability_diagram_bins_give_the_ece_the_metrics_compute():
    """The diagram's bins are the metric's: their share-weighted gaps sum to the ECE."""
    from bench.metrics import compute_metrics
    from bench.report import plots

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4))
    logits[np.arange(300), y] += 1.5
    proba = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    predictions = pd.DataFrame({"y_true": y, "proba": list(proba)})
    table = plots.reliability_bins(predictions)
    gap = (np.abs(table.accuracy - table.confidence) * table.share).sum()
    assert gap == pytest.approx(compute_metrics(y, proba, 4).values["ece"], abs=1e-12)
    assert table.share.sum() == pytest.approx(1.0) and len(table) > 3
    assert plots.reliability_diagram(predictions).startswith("data:image/png;base64,")
