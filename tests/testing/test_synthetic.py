"""Synthetic runs look like real ones: schema v3, paired test images, consistent summaries."""

import numpy as np
import pandas as pd
import pytest

from bench.results.reader import load_runs
from bench.testing.synthetic import write_synthetic_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    write_synthetic_run(str(folder), "b", ["d1"], ["alpha", "beta"], repeats=2, run_id="r1")
    write_synthetic_run(str(folder), "b", ["d1"], ["alpha"], repeats=2, run_id="r2", seed=3)
    write_synthetic_run(
        str(folder), "b", ["d1"], ["alpha"], repeats=2, run_id="r3", fingerprint="other"
    )
    return load_runs([str(folder)])


def _labels(runs, run_id, model, repeat):
    p = runs["predictions"]
    rows = p[(p.run_id == run_id) & (p.model == model) & (p.repeat == repeat)]
    return rows.sort_values("sample").y_true.to_numpy()


def test_models_and_runs_on_the_same_data_share_test_labels_per_repeat(runs):
    assert np.array_equal(_labels(runs, "r1", "alpha", 0), _labels(runs, "r1", "beta", 0))
    assert np.array_equal(_labels(runs, "r1", "alpha", 1), _labels(runs, "r2", "alpha", 1))
    assert not np.array_equal(_labels(runs, "r1", "alpha", 0), _labels(runs, "r1", "alpha", 1))
    assert not np.array_equal(_labels(runs, "r1", "alpha", 0), _labels(runs, "r3", "alpha", 0))


def test_leaderboard_summarizes_the_replicates(runs):
    board = runs["leaderboard"].set_index(["run_id", "model"])
    replicates = runs["replicates"]
    for (run_id, model), row in board.iterrows():
        mine = replicates[(replicates.run_id == run_id) & (replicates.model == model)]
        assert sorted(mine.repeat) == [0, 1] and row.repeats == 2
        assert row.test_f1_macro == pytest.approx(mine.test_f1_macro.mean())
        assert row.test_f1_macro_low <= row.test_f1_macro <= row.test_f1_macro_high
        assert (mine.fingerprint == row.fingerprint).all()
    r1 = board.loc["r1"]
    assert r1["rank"].to_dict() == {"beta": 1, "alpha": 2}  # beta is better on test
    assert board.loc[("r3", "alpha"), "fingerprint"] == "other"


def test_compute_is_summed_over_trials_and_refits(runs):
    trials = runs["trials"]
    assert trials.cpu_seconds.gt(0).all() and (trials.repeat == 0).all()
    board = runs["leaderboard"].set_index(["run_id", "model"])
    mine = trials[(trials.run_id == "r1") & (trials.model == "alpha")]
    refits = runs["replicates"]
    refits = refits[(refits.run_id == "r1") & (refits.model == "alpha")]
    assert board.loc[("r1", "alpha"), "cpu_seconds"] == pytest.approx(
        mine.cpu_seconds.sum() + refits.cpu_seconds.sum()
    )
    assert board.loc[("r1", "alpha"), "trial_epochs"] == mine.epochs_run.sum()


def test_replicates_are_optional(tmp_path):
    write_synthetic_run(str(tmp_path), "b", ["d1"], ["alpha"], run_id="r")
    (tmp_path / "b" / "r" / "replicates.parquet").unlink()
    loaded = load_runs([str(tmp_path)])
    assert loaded.missing["replicates"] == [str(tmp_path / "b" / "r")]
    assert isinstance(loaded["replicates"], pd.DataFrame) and loaded["replicates"].empty
    assert "repeat" in loaded["replicates"].columns
