"""The search edge end to end: a DDP pairing's trials and refit through Ray Train write the
same rows as single-worker ones, with values that agree with each other."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.config import validate_benchmark
from bench.metrics import compute_metrics
from bench.results.schema import FOLDS, TRIALS
from bench.train.records import sample_digest


@pytest.mark.ray
@pytest.mark.slow
def test_two_worker_ddp_trial_writes_the_same_rows(ray_session, tmp_path, tiny_benchmark):
    """A 2-worker CPU/gloo DDP trial through Ray Train: same columns as a single-worker run.
    Its output is a URI (file://, read through pyarrow like s3://), as on a cluster."""
    from bench.runner import run_benchmark

    raw = tiny_benchmark(
        tmp_path,
        models=["mlp"],
        search={"trials": 1, "seed": 0},
        budget={"epochs": 1, "batch_size": 64},
        resources={"workers": 2, "cpus_per_worker": 1},
        evaluation={"repeats": 1},
        output=(tmp_path / "results").as_uri(),
    )
    run = run_benchmark(validate_benchmark(raw), echo=lambda line: None)
    folds = pq.read_table(f"{run.store.path}/folds.parquet").to_pandas()
    assert len(folds) == 2 and (folds.workers == 2).all()
    assert list(folds.columns) == FOLDS.names  # the single-worker runs write the same columns
    assert (folds.accuracy > 0.3).all()
    assert run.store.uri.startswith("file://")
    single = pq.read_table(f"{run.store.path}/trials.parquet").schema
    assert single.names == TRIALS.names
    board = run.leaderboard[0]
    assert board["status"] == "ok" and board["test_samples"] == 360
    # the values, not only the columns: the ranks validated on the folds the run saved...
    splits = pq.read_table(f"{run.store.path}/splits.parquet").to_pandas()
    train = splits[splits.role == "train"]
    for _, row in folds.iterrows():
        assert row.val_digest == sample_digest(train[train.fold == row.fold]["sample"].to_numpy())
    # ... the trial's score is its folds' mean, and the refit's test figures are its predictions'
    trial = pq.read_table(f"{run.store.path}/trials.parquet").to_pandas().iloc[0]
    assert trial.score == pytest.approx(folds.f1_macro.mean(), abs=1e-12)
    predictions = pq.read_table(f"{run.store.path}/predictions.parquet").to_pandas()
    proba = np.stack(predictions.sort_values("sample").proba.to_numpy())
    report = compute_metrics(predictions.sort_values("sample").y_true.to_numpy(), proba, 10)
    assert board["test_f1_macro"] == pytest.approx(report.values["f1_macro"], abs=1e-12)
    assert board["best_trial"] == 0 and board["trial_epochs"] == 1
