"""Same definition, same seeds: the same results, with trials running concurrently."""

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench.config import validate_benchmark
from bench.testing.rows import comparable

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TABLES = (
    "folds",
    "epochs",
    "trials",
    "replicates",
    "predictions",
    "splits",
    "leaderboard",
    "oof",
    "audit_ranking",
)


def test_two_runs_with_the_same_seeds_give_the_same_rows(ray_session, tmp_path, tiny_benchmark):
    """Two pairings x 2 concurrent trials each, TPE past its start-up trials (batches of 2):
    which trial finishes first differs between runs, the results must not."""
    from bench.runner import run_benchmark

    raw = tiny_benchmark(
        tmp_path,
        search={"trials": 6, "seed": 0, "batch": 2, "max_concurrent_trials": 2},
    )
    runs = [run_benchmark(validate_benchmark(raw), echo=lambda line: None) for _ in range(2)]
    first, second = (run.store.path for run in runs)
    trials = pq.read_table(f"{first}/trials.parquet").to_pandas()
    assert len(trials) == 12 and trials.trial.max() == 5  # proposals beyond TPE's start-up
    for name in TABLES:
        a = comparable(pq.read_table(f"{first}/{name}.parquet").to_pandas())
        b = comparable(pq.read_table(f"{second}/{name}.parquet").to_pandas())
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
