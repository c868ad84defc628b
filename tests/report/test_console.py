"""The terminal leaderboard: test figures with intervals, selection scores, compute."""

import math

from bench.report.console import format_leaderboard

ROW = {
    "rank": 1,
    "dataset": "digits",
    "model": "resnet18",
    "status": "ok",
    "metric": "f1_macro",
    "fingerprint": "ab12cd34ef56",
    "test_f1_macro": 0.969,
    "test_f1_macro_low": 0.951,
    "test_f1_macro_high": 0.984,
    "test_accuracy": 0.97,
    "test_accuracy_low": math.nan,
    "test_accuracy_high": math.nan,
    "test_roc_auc": None,
    "cv_f1_macro_mean": 0.981,
    "cv_f1_macro_std": 0.004,
    "num_trials": 20,
    "trial_epochs": 340,
    "cpu_seconds": 1234.4,
    "gpu_seconds": 0.0,
}


def test_test_figures_with_intervals_and_selection_and_compute():
    lines = format_leaderboard([ROW]).splitlines()
    header, row = lines[0].split(), lines[2]
    assert header[:3] == ["rank", "dataset", "model"] and "GPU-s" not in header
    assert "0.969 [0.951,0.984]" in row  # test F1 with its interval
    assert "0.970 " in row  # test accuracy without an interval: the mean alone
    assert "0.981±0.004" in row  # the selection (CV) score
    assert row.split()[-5:] == ["0.981±0.004", "20", "340", "1,234", "ok"]
    assert "never by CV" in lines[-2] and "biased upward" in lines[-1]


def test_gpu_column_and_groups_for_different_fingerprints():
    other = {**ROW, "rank": 1, "fingerprint": "9f8e7d6c5b4a", "gpu_seconds": 88.0}
    lines = format_leaderboard([ROW, other, {**ROW, "rank": None, "status": "failed"}])
    assert "GPU-s" in lines.splitlines()[0]
    assert "digits [ab12cd34]" in lines and "digits [9f8e7d6c]" in lines
    assert "failed:" in lines.splitlines()[4] and lines.splitlines()[4].startswith("-")
