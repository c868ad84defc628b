"""Tables and the report over results written in the real schema (synthetic figures)."""

import json

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.report.build import build_report
from bench.report.tables import leaderboard, to_markdown
from bench.results.reader import load_runs
from bench.results.schema import SchemaError
from bench.results.synthetic import write_synthetic_run

MODELS = ["alpha", "beta", "gamma"]


@pytest.fixture
def results(tmp_path):
    write_synthetic_run(
        str(tmp_path), "b1", ["d1", "d2", "d3"], MODELS, run_id="20260101-000000-aaaa"
    )
    return tmp_path


def test_ranked_per_dataset_with_tests_against_the_best(results):
    board = leaderboard(load_runs([str(results)]), "f1_macro")
    assert len(board) == 9
    for _, group in board.groupby("dataset"):
        assert group["rank"].tolist() == [1, 2, 3]
        means = group.cv_f1_macro_mean.tolist()
        assert means == sorted(means, reverse=True)
        assert pd.isna(group.p_ttest.iloc[0]) and group.p_ttest.iloc[1:].between(0, 1).all()
        assert group.p_wilcoxon.iloc[1:].between(0, 1).all()


def test_lower_is_better_metric_ranks_ascending(results):
    board = leaderboard(load_runs([str(results)]), "log_loss")
    for _, group in board.groupby("dataset"):
        losses = group.cv_log_loss_mean.tolist()
        assert losses == sorted(losses)


def test_filters_and_newest_rerun_wins(results):
    write_synthetic_run(
        str(results), "b1", ["d1"], ["alpha"], seed=5, run_id="20270101-000000-bbbb"
    )
    board = leaderboard(
        load_runs([str(results)]), "f1_macro", datasets=["d1"], models=["alpha", "beta"]
    )
    assert sorted(board.model) == ["alpha", "beta"]
    assert board.set_index("model").loc["alpha", "run_id"] == "20270101-000000-bbbb"


def test_markdown_has_a_table_per_dataset(results):
    text = to_markdown(leaderboard(load_runs([str(results)]), "f1_macro"), "f1_macro")
    for dataset in ("d1", "d2", "d3"):
        assert f"## {dataset}" in text
    assert text.count("| 1 | gamma |") == 3


def test_report_files_and_nothing_written_into_the_run(results):
    run = next(results.glob("b1/*"))
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    files = build_report([str(results)], out=str(results / "out"))
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
    for path in (files.markdown, files.csv, files.parquet, files.html):
        assert path.is_file() and path.stat().st_size > 0
    html = files.html.read_text()
    assert html.count('class="leaderboard-row"') == 9
    assert "Friedman test over 3 datasets" in html
    assert "critical-difference diagram" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    merged = pd.read_parquet(files.parquet)
    assert len(merged) == 9 and {"rank", "p_ttest", "p_wilcoxon"} <= set(merged.columns)


def test_missing_optional_files_drop_sections_with_a_note(results):
    run = next(results.glob("b1/*"))
    (run / "predictions.parquet").unlink()
    (run / "epochs.parquet").unlink()
    html = build_report([str(results)], out=str(results / "out")).html.read_text()
    assert "have no predictions.parquet" in html and "have no epochs.parquet" in html
    assert "one-vs-rest ROC" not in html


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
