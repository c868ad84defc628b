"""`bench perf --quick` runs every section and writes its table (figures exist and are
positive; no timing is asserted: the machines are shared and noisy). The sections run smaller
still than --quick's (TESTED): the code is the same, the figures only have to exist."""

import dataclasses
import math

import pyarrow.parquet as pq
import pytest

from bench.perf.figures import Figure, format_table
from bench.perf.run import QUICK

TESTED = dataclasses.replace(
    QUICK,
    sweep_sizes=(2, 4),
    naive_fits=1,
    tree_images=500,
    pipeline_epochs=2,
    pairing_counts=(2, 4),
    data_sizes=(200, 400),
    default_changes=(("search.trials", 2), ("budget.epochs", 2), ("cv.folds", 2)),
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_perf(ray_session, tmp_path_factory):
    from bench.perf.run import run_perf

    out = tmp_path_factory.mktemp("perf")
    lines = []
    figures, path = run_perf(quick=True, output=str(out), echo=lines.append, plan=TESTED)
    return figures, path, "\n".join(lines)


def test_every_section_reports_positive_figures(quick_perf):
    figures, _, _ = quick_perf
    by_name = {(f.section[:2], f.name): f.value for f in figures}
    expected = [
        ("1.", "median"),
        ("1.", "max"),
        ("2.", "bench"),
        ("2.", "plain PyTorch, sequential"),
        ("2.", "naive TorchTrainer per fit"),
        ("2.", "bench / plain"),
        ("2.", "naive / bench"),
        ("2.", "CPU: trial actors"),
        ("2.", "CPU: driver"),
        ("2.", "CPU: plain PyTorch"),
        ("2.", "CPU: trials + driver / plain"),
        ("3.", "bench, first trial"),
        ("3.", "plain ImageFolder + DataLoader"),
        ("3.", "bench / plain"),
        ("4.", "2 trials"),
        ("4.", "4 trials"),
        ("6.", "2 pairings: wall"),
        ("6.", "4 pairings: per pairing"),
        ("6.", "4 pairings: peak memory"),
        ("6.", "4 pairings: trial actors"),
        ("6.", "peak memory 4 vs 2"),
        ("7.", "batch 0 (as slots free)"),
        ("7.", "batch 4 (default)"),
        ("7.", "batch 4 / batch 0"),
        ("8.", "100 images: peak memory"),
        ("8.", "200 images: peak memory"),
        ("8.", "200 images: decode"),
        ("8.", "200 images: warm cache"),
        ("8.", "200 images: bench loader"),
        ("8.", "200 images: ImageFolder+DataLoader"),
        ("8.", "400 images: peak memory"),
        ("8.", "peak memory growth"),
    ]
    for key in expected:
        assert key in by_name, key
        assert math.isfinite(by_name[key]) and by_name[key] > 0, key
    # each ratio is the ratio of the figures it names, not a figure of its own
    ratios = {
        ("2.", "bench / plain"): (("2.", "bench"), ("2.", "plain PyTorch, sequential")),
        ("2.", "naive / bench"): (("2.", "naive TorchTrainer per fit"), ("2.", "bench")),
        ("7.", "batch 4 / batch 0"): (
            ("7.", "batch 4 (default)"),
            ("7.", "batch 0 (as slots free)"),
        ),
        ("8.", "200 images: loader ratio"): (
            ("8.", "200 images: bench loader"),
            ("8.", "200 images: ImageFolder+DataLoader"),
        ),
        ("8.", "peak memory growth"): (  # of the run's process tree
            ("8.", "400 images: run's processes"),
            ("8.", "200 images: run's processes"),
        ),
    }
    for ratio, (top, bottom) in ratios.items():
        assert by_name[ratio] == pytest.approx(by_name[top] / by_name[bottom]), ratio
    # the 4-pairing run's wall divided among its pairings
    per_pairing = by_name[("6.", "4 pairings: per pairing")]
    assert per_pairing == pytest.approx(by_name[("6.", "4 pairings: wall")] / 4)
    # one pool of trial actors for the run: no more than the 2-CPU session runs at once
    assert by_name[("6.", "4 pairings: trial actors")] <= 2


def test_the_table_is_printed_and_saved(quick_perf):
    figures, path, printed = quick_perf
    table = pq.read_table(path).to_pylist()
    assert len(table) == len(figures)
    assert {row["mode"] for row in table} == {"quick"}
    assert "per-trial overhead" in printed and "sweep ratio" in printed
    assert "input pipeline" in printed and "GPU" in printed and "scale in pairings" in printed
    assert "reproducible search" in printed


def test_format_table_groups_by_section():
    text = format_table(
        [Figure("a", "x", 1.5, "s"), Figure("a", "y", 2000.0, "img/s"), Figure("b", "z", 0.5, "x")]
    )
    # two sections: a blank line between them
    assert text.splitlines()[0] == "a" and "2,000" in text and text.count("\n") == 5
