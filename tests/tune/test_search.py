"""The search edge: pruned trials reach Optuna as pruned; the DDP path writes the same rows."""

import optuna
import pyarrow.parquet as pq
import pytest

from bench.config import ParamSpec, validate_benchmark
from bench.results.schema import FOLDS, TRIALS
from bench.tune.search import PrunedAwareOptunaSearch, best_trial
from bench.tune.space import DefineByRun, grid_size, make_sampler
from bench.tune.trial import COMPLETE_FLAG

SPACE = {
    "lr": ParamSpec(type="loguniform", low=1e-4, high=1e-1),
    "hidden_dim": ParamSpec(type="choice", values=[32, 64]),
    "depth": ParamSpec(type="fixed", value=2),
}


def searcher():
    return PrunedAwareOptunaSearch(
        space=DefineByRun(SPACE),
        metric="score",
        mode="max",
        sampler=make_sampler("tpe", SPACE, seed=0),
    )


def states(search):
    return [t.state for t in search._ot_study.trials]


def test_trial_stopped_early_is_told_pruned_and_finished_one_complete():
    search = searcher()
    first, second, third = (search.suggest(f"t{i}") for i in range(3))
    assert first["depth"] == 2 and first["hidden_dim"] in (32, 64) and 1e-4 <= first["lr"] <= 1e-1
    search.on_trial_result("t0", {"score": 0.4, "training_iteration": 1})
    # ASHA stopped t0 after one epoch: its last result has a score but no completion flag
    search.on_trial_complete("t0", {"score": 0.4, "training_iteration": 1})
    search.on_trial_complete("t1", {"score": 0.9, "training_iteration": 3, COMPLETE_FLAG: True})
    search.on_trial_complete("t2", None, error=True)
    assert states(search) == [
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
    ]
    assert search._ot_study.best_value == 0.9


def test_samplers_are_seeded():
    a = [searcher().suggest("x")["lr"] for _ in range(2)]
    assert a[0] == a[1]


def test_grid_size_and_sampler():
    grid = {
        "hidden_dim": ParamSpec(type="choice", values=[1, 2, 3]),
        "optimizer": ParamSpec(type="choice", values=["adam", "sgd"]),
    }
    assert grid_size(grid) == 6
    assert isinstance(make_sampler("grid", grid, 0), optuna.samplers.GridSampler)


def test_best_trial_respects_direction_and_skips_failures():
    rows = [
        {"trial": 0, "status": "ok", "score": 0.5},
        {"trial": 1, "status": "failed", "score": float("nan")},
        {"trial": 2, "status": "ok", "score": 0.7},
        {"trial": 3, "status": "pruned", "score": 0.9},
    ]
    assert best_trial(rows, "f1_macro")["trial"] == 2
    assert best_trial(rows, "log_loss")["trial"] == 0
    assert best_trial(rows[1:2], "f1_macro") is None


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
