"""The data audit end to end on a real local Ray: digits as a class-per-folder tree with 3% of
its labels flipped and 3% of its images copied with a shift and noise (bench.testing.planted),
benchmarked with mlp and simple_cnn; the audit must find the planted faults. `pytest -s`
prints the figures the closing note of issue 25 reports."""

import pandas as pd
import pytest

from bench.audit.run import image_files
from bench.cli import main
from bench.config import validate_benchmark
from bench.registry.datasets import load_dataset
from bench.testing.planted import write_planted_digits

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def planted_run(ray_session, tmp_path_factory, tiny_benchmark):
    from bench.runner import run_benchmark

    tmp = tmp_path_factory.mktemp("planted")
    planted = write_planted_digits(tmp / "digits")
    dataset = {"name": "imagefolder", "path": str(planted.root), "image_size": 32, "channels": 1}
    config = validate_benchmark(
        tiny_benchmark(
            tmp,
            name="planted",
            datasets=[dataset],
            cv={"folds": 3, "seed": 0},
            budget={"epochs": 8, "batch_size": 64},
        )
    )
    lines = []
    run = run_benchmark(config, echo=lines.append)
    return planted, run, config, lines


def read(run, name):
    return pd.read_parquet(f"{run.store.path}/{name}.parquet")


def test_flipped_labels_are_found(planted_run):
    planted, run, _, _ = planted_run
    flagged = set(read(run, "label_issues")["file"])
    found = flagged & planted.flipped
    recall, precision = len(found) / len(planted.flipped), len(found) / max(len(flagged), 1)
    print(f"\nlabel issues: {len(flagged)} flagged, recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.8 and precision >= 0.5


def test_planted_near_duplicates_of_test_images_are_found(planted_run):
    planted, run, config, _ = planted_run
    data = load_dataset(config.datasets[0], config.cv.folds, config.cv.test_fraction, 0)
    tested = set(image_files(data.test_x))
    planted_pairs = {frozenset(pair) for pair in planted.copies.items()}
    in_scope = {pair for pair in planted_pairs if pair & tested}  # a test image in repeat 0
    pairs = read(run, "duplicates")
    reported = {
        frozenset((a, b))
        for a, b, kind in zip(pairs["a_file"], pairs["b_file"], pairs["pair"], strict=True)
        if kind in ("test-train", "test-test")
    }
    recall = len(reported & in_scope) / len(in_scope)
    precision = len(reported & planted_pairs) / max(len(reported), 1)
    print(
        f"\nduplicates: {len(in_scope)} planted pairs with a test image, {len(reported)} "
        f"reported, recall {recall:.3f}, precision {precision:.3f}"
    )
    assert len(in_scope) >= 0.03 * len(tested)
    assert recall >= 0.9 and precision >= 0.9


def test_the_ranking_without_flagged_images_and_the_run_summary(planted_run):
    _, run, _, lines = planted_run
    ranking = read(run, "audit_ranking")
    assert set(ranking["subset"]) == {"all", "without_duplicates", "without_label_issues"}
    everything = ranking[ranking["subset"] == "all"].set_index("model")
    board = read(run, "leaderboard").set_index("model")
    for model in board.index:  # on every image, the audit's ranking is the leaderboard's
        assert everything.loc[model, "rank"] == board.loc[model, "rank"]
        assert everything.loc[model, "test_score"] == pytest.approx(
            board.loc[model, "test_f1_macro"]
        )
    cleaned = ranking[ranking["subset"] == "without_label_issues"]
    assert (cleaned["removed"] > 0).all()
    assert (cleaned["test_score_low"] <= cleaned["test_score"]).all()
    assert any(line.startswith("audit imagefolder@") for line in lines)


def test_bench_audit_recomputes_the_same_tables_from_the_run_folder(planted_run, capsys):
    _, run, _, _ = planted_run
    before = {name: read(run, name) for name in ("label_issues", "duplicates", "audit_ranking")}
    assert main(["audit", run.store.path]) == 0
    assert "likely label error" in capsys.readouterr().out
    for name, table in before.items():
        pd.testing.assert_frame_equal(read(run, name), table)


def test_the_report_shows_the_flagged_images_from_the_parquet_files_alone(planted_run, tmp_path):
    from bench.report.build import build_report

    _, run, _, _ = planted_run
    files = build_report([run.store.path], None, None, None, str(tmp_path / "report"))
    html = files.html.read_text()
    assert "Data audit: imagefolder@" in html
    issues = html.count('<tr class="label-issue"><td><img')
    pairs = html.count('<tr class="duplicate-pair"><td><img')
    assert issues == min(24, len(read(run, "label_issues")))  # a thumbnail on each shown row
    assert pairs == min(24, len(read(run, "duplicates")))
    # the report's leaderboard gains the test figures without the flagged images
    board = pd.read_parquet(files.parquet).set_index("model")
    ranking = read(run, "audit_ranking")
    cleaned = ranking[ranking["subset"] == "without_duplicates"].set_index("model")
    for model in board.index:
        assert board.loc[model, "test_without_duplicates"] == cleaned.loc[model, "test_score"]
        assert (
            board.loc[model, "test_without_duplicates_low"] == cleaned.loc[model, "test_score_low"]
        )
    header = files.markdown.read_text()
    assert "test F1 without duplicates" in header and "test F1 without label issues" in header
