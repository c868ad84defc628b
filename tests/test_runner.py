"""End to end on a real local Ray (2 CPUs, started once per session): bench run at tiny scale."""

import json
import os
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pyarrow.parquet as pq
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from bench.config import validate_benchmark
from bench.metrics import METRIC_NAMES
from bench.results.schema import SCHEMA_VERSION, TABLES
from bench.testing.classification import sklearn_metrics
from bench.tune.studies import STUDIES_FILE

pytestmark = [pytest.mark.ray, pytest.mark.slow]


FAKE_SECRET = "sk-test-0123456789abcdef-NOT-A-REAL-KEY"


@pytest.fixture(scope="module")
def tiny_run(ray_session, tmp_path_factory, tiny_benchmark):
    from bench.runner import run_benchmark

    tmp = tmp_path_factory.mktemp("tiny")
    config = validate_benchmark(tiny_benchmark(tmp))
    # A secret in the environment must not leak into anything the run writes.
    os.environ["AWS_SECRET_ACCESS_KEY"] = FAKE_SECRET
    try:
        return run_benchmark(config, echo=lambda line: None)
    finally:
        del os.environ["AWS_SECRET_ACCESS_KEY"]


def read(run, name):
    return pq.read_table(f"{run.store.path}/{name}.parquet")


def test_every_file_has_the_schema_and_version(tiny_run):
    for name, schema in TABLES.items():
        table = read(tiny_run, name)
        assert table.schema.names == schema.names, name
        assert table.schema.equals(schema, check_metadata=False), name
        assert table.schema.metadata[b"bench.schema_version"] == str(SCHEMA_VERSION).encode()
    for extra in ("config.yaml", "environment.json"):
        assert tiny_run.store.exists(extra)


def test_rows_cover_every_pairing_trial_and_fold(tiny_run):
    folds = read(tiny_run, "folds").to_pandas()
    assert len(folds) == 2 * 2 * 2  # pairings x trials x folds
    assert set(folds.groupby(["model", "trial"]).size()) == {2}
    trials = read(tiny_run, "trials").to_pandas()
    assert len(trials) == 4 and set(trials.status) == {"ok"}
    for _, trial in trials.iterrows():
        mine = folds[(folds.model == trial.model) & (folds.trial == trial.trial)]
        assert trial.score == pytest.approx(mine.f1_macro.mean())
        assert trial.cv_f1_macro_std == pytest.approx(mine.f1_macro.std(ddof=1))
        assert json.loads(trial.params)["lr"] == pytest.approx(
            json.loads(mine.params.iloc[0])["lr"]
        )
    assert (folds.node_id.str.len() > 0).all()
    epochs = read(tiny_run, "epochs").to_pandas()
    assert set(epochs.phase) == {"cv", "refit"}
    assert len(epochs[epochs.phase == "cv"]) == 2 * 2 * 2 * 2  # ... x 2 epochs
    refits = epochs[epochs.phase == "refit"]
    assert sorted(refits.groupby(["model", "repeat"]).size().index) == [
        (m, r) for m in ("mlp", "simple_cnn") for r in (0, 1)
    ]


def test_metrics_are_sane(tiny_run):
    folds = read(tiny_run, "folds").to_pandas()
    for name in METRIC_NAMES:
        if name == "log_loss":
            assert (folds[name] > 0).all()
        else:
            assert folds[name].between(0, 1).all(), name
    # two epochs on digits already beat chance (0.1) by far
    assert (folds.accuracy > 0.5).all()


def test_test_metrics_recomputed_from_predictions_equal_scikit_learn(tiny_run):
    """Every repeat's test metrics, recomputed from predictions.parquet with scikit-learn,
    to 1e-9; the leaderboard's test figures are their mean over repeats."""
    board = read(tiny_run, "leaderboard").to_pandas()
    replicates = read(tiny_run, "replicates").to_pandas()
    predictions = read(tiny_run, "predictions").to_pandas()
    assert sorted(board["rank"]) == [1, 2] and set(board.repeats) == {2}
    assert len(replicates) == 4 and set(replicates.status) == {"ok"}
    for _, rep in replicates.iterrows():
        mine = predictions[
            (predictions.model == rep.model) & (predictions["repeat"] == rep["repeat"])
        ]
        mine = mine.sort_values("sample")
        assert len(mine) == rep.test_samples == 360
        proba = np.stack(mine.proba.to_numpy())
        assert proba.dtype == np.float32 and (mine.y_pred.to_numpy() == proba.argmax(1)).all()
        expected = sklearn_metrics(mine.y_true.to_numpy(), proba, 10)
        assert set(expected) == set(METRIC_NAMES)
        for name, value in expected.items():
            tolerance = {"rel": 1e-6} if name == "brier" else {"abs": 1e-9}  # see test_metrics
            assert rep[f"test_{name}"] == pytest.approx(value, **tolerance), name
    for _, row in board.iterrows():
        mine = replicates[replicates.model == row.model]
        for name in METRIC_NAMES:
            assert row[f"test_{name}"] == pytest.approx(mine[f"test_{name}"].mean(), abs=1e-12)
            assert row[f"test_{name}_low"] <= row[f"test_{name}_high"], name
        # a percentile interval need not hold the mean, but for F1 on 2 x 360 images it does
        assert row.test_f1_macro_low < row.test_f1_macro < row.test_f1_macro_high


def test_ranks_come_from_held_out_scores_not_cv(tiny_run):
    board = read(tiny_run, "leaderboard").to_pandas().sort_values("rank")
    assert board.test_f1_macro.is_monotonic_decreasing


def test_each_repeat_has_its_own_splits_and_seed_shared_by_every_model(tiny_run):
    splits = read(tiny_run, "splits").to_pandas()
    test = {r: set(g[g.role == "test"].source_index) for r, g in splits.groupby("repeat")}
    assert sorted(test) == [0, 1] and all(len(t) == 360 for t in test.values())
    assert test[0] != test[1]  # each repeat draws its own test split
    for _, group in splits.groupby("repeat"):
        train = group[group.role == "train"]
        assert not set(train.source_index) & set(group[group.role == "test"].source_index)
        assert sorted(train.fold.unique()) == [0, 1]
    replicates = read(tiny_run, "replicates").to_pandas()
    seeds = replicates.groupby("repeat").training_seed.unique()
    assert all(len(s) == 1 for s in seeds) and seeds[0][0] != seeds[1][0]
    assert replicates.groupby("repeat").best_params.nunique().max() <= 2  # once: repeat 0's


def test_every_model_was_validated_on_the_same_samples_per_fold(tiny_run):
    """Fold membership, not just fold numbers: each fold row's digest of its validation
    samples equals the one computed from splits.parquet, for every model and trial."""
    from bench.train.records import sample_digest

    splits = read(tiny_run, "splits").to_pandas()
    train = splits[(splits.role == "train") & (splits.repeat == 0)]
    expected = {k: sample_digest(g["sample"].to_numpy()) for k, g in train.groupby("fold")}
    folds = read(tiny_run, "folds").to_pandas()
    assert set(folds.model) == {"mlp", "simple_cnn"}
    for _, row in folds.iterrows():
        assert row.val_digest == expected[row.fold], (row.model, row.trial, row.fold)
        assert row.val_samples == (train.fold == row.fold).sum()


def test_runs_never_overwrite_each_other(tiny_run):
    from bench.errors import BenchError
    from bench.results.store import RunStore

    output = tiny_run.store.path.rsplit("/", 2)[0]
    with pytest.raises(BenchError, match="already exists"):
        RunStore.create(output, "tiny", tiny_run.store.run_id)


def test_no_secret_from_the_environment_is_written(tiny_run):
    files = [p for p in Path(tiny_run.store.path).rglob("*") if p.is_file()]
    assert any(p.name == "environment.json" for p in files)
    for path in files:
        assert FAKE_SECRET.encode() not in path.read_bytes(), path


def test_failing_trials_are_recorded_and_the_pairing_marked_failed(
    ray_session, tmp_path, tiny_benchmark
):
    from bench.runner import run_benchmark

    raw = tiny_benchmark(
        tmp_path,
        models=["mlp"],
        search_space={"lr": 1.0e-3, "optimizer": "sgd"},
        budget={"epochs": 1, "batch_size": 64},
    )
    config = validate_benchmark(raw)
    # a learning rate no definition may ask for (lr is bounded), so that training diverges
    lr = config.search_space["lr"]
    config.search_space["lr"] = lr.model_copy(update={"value": 1.0e30})
    run = run_benchmark(config, echo=lambda line: None)
    trials = read(run, "trials").to_pandas()
    assert len(trials) == 2 and set(trials.status) == {"failed"}
    assert trials.error.str.contains("training diverged").all()
    board = run.leaderboard[0]
    assert board["status"] == "failed" and "training diverged" in board["error"]
    assert board["rank"] is None


def test_a_request_no_node_can_meet_is_named(tmp_path, tiny_benchmark):
    from bench.errors import BenchError
    from bench.preflight import check_resources

    def config(**changes):
        return validate_benchmark(tiny_benchmark(tmp_path, **changes), source="t.yaml")

    cpu_node = [{"CPU": 2.0}]
    wants_gpu = config(resources={"gpus_per_worker": 1})
    # a local instance bench started never gains a GPU: one line with the fix
    with pytest.raises(BenchError, match=r"has no GPU; use --set resources\.gpus_per_worker=0 "):
        check_resources(wants_gpu, cpu_node, local=True)
    # a cluster's autoscaler may still add GPU nodes: a warning, the run goes on
    warning = check_resources(wants_gpu, cpu_node, local=False)
    assert warning.startswith("warning:") and "gpus_per_worker=0" in warning
    assert check_resources(wants_gpu, [{"CPU": 2.0, "GPU": 1.0}], local=False) is None
    assert check_resources(config(), cpu_node, local=True) is None
    # more CPUs per worker than the largest node has, set for one model: named by its key
    too_wide = config(model_resources={"simple_cnn": {"cpus_per_worker": 4}})
    with pytest.raises(
        BenchError,
        match=r"model_resources\.simple_cnn\.cpus_per_worker is 4 "
        r"but the Ray cluster has at most 2 CPUs per node; use --set "
        r"model_resources\.simple_cnn\.cpus_per_worker=2$",
    ):
        check_resources(too_wide, cpu_node + [{"CPU": 1.0}], local=True)


def test_run_refuses_a_gpu_request_before_writing_anything(
    ray_session, tmp_path, tiny_benchmark, monkeypatch
):
    import bench.driver
    import bench.runner
    from bench.errors import BenchError

    # as if `bench run` had started this (GPU-less) local instance itself
    monkeypatch.setattr(bench.driver, "connect", lambda *args, **kwargs: True)
    config = validate_benchmark(
        tiny_benchmark(tmp_path, resources={"gpus_per_worker": 0.5}), source="t.yaml"
    )
    with pytest.raises(BenchError, match="has no GPU"):
        bench.runner.run_benchmark(config, echo=lambda line: None)
    assert not list(tmp_path.glob("results/tiny/*"))  # no run folder left behind


@pytest.mark.parametrize("debug", [False, True])
def test_debug_reaches_the_start_of_ray(tmp_path, tiny_benchmark, monkeypatch, debug):
    """`bench --debug run` shows Ray's start-up notices, `--dashboard` starts its dashboard:
    both flags get to driver.connect."""
    import bench.driver
    import bench.runner
    from bench.errors import BenchError

    seen = []

    def connect(address, echo, debug, dashboard):
        seen.append((debug, dashboard))
        raise BenchError("stop before Ray starts")

    monkeypatch.setattr(bench.driver, "connect", connect)
    config = validate_benchmark(tiny_benchmark(tmp_path))
    with pytest.raises(BenchError, match="stop before Ray starts"):
        bench.runner.run_benchmark(config, echo=lambda line: None, debug=debug, dashboard=debug)
    assert seen == [(debug, debug)]


def test_each_pairing_gets_its_models_resources(ray_session, tmp_path, tiny_benchmark):
    from bench.driver import trial_slots
    from bench.plan import resolve_pairing

    raw = tiny_benchmark(tmp_path, model_resources={"simple_cnn": {"cpus_per_worker": 2}})
    config = validate_benchmark(raw, source="t.yaml")
    jobs = {m: resolve_pairing(config, "run", m, "digits") for m in config.models}
    assert jobs["simple_cnn"].resources.cpus_per_worker == 2
    assert jobs["mlp"].resources.cpus_per_worker == 1
    # the session's cluster has 2 CPUs: one 2-CPU trial at a time, or two 1-CPU trials
    assert trial_slots(jobs["simple_cnn"].resources) == 1
    assert trial_slots(jobs["mlp"].resources) == 2


def test_six_pairings_share_one_pool_of_trial_actors(ray_session, tmp_path, tiny_benchmark):
    """One scheduler and one pool for the run: 6 pairings (2 models x 3 datasets) start no
    more trial actor processes than the trials the cluster runs at once, and every refit runs
    in one of them (no process of its own)."""
    from bench.driver import trial_slots
    from bench.runner import run_benchmark
    from bench.testing.writers import write_image_tree

    trees = [
        write_image_tree(tmp_path / f"tree{i}", ("a", "b"), per_class=20, size=8, seed=i)
        for i in range(3)
    ]
    for clutter in ("a/notes.txt", "b/.DS_Store", "b/Thumbs.db"):  # as people's trees have
        (trees[0] / clutter).write_text("not an image")
    raw = tiny_benchmark(
        tmp_path,
        datasets=[
            {"name": "imagefolder", "path": str(t), "image_size": 8, "channels": 3} for t in trees
        ],
        budget={"epochs": 1, "batch_size": 16},
    )
    config = validate_benchmark(raw)
    lines = []
    run = run_benchmark(config, echo=lines.append)
    left_out = [line for line in lines if "not images" in line]
    assert left_out == [
        "  dataset imagefolder@tree0: left out 3 file(s) that are not images "
        "(notes.txt, .DS_Store, Thumbs.db)"
    ]
    board = read(run, "leaderboard").to_pandas()
    assert len(board) == 6 and set(board.status) == {"ok"}
    folds = read(run, "folds").to_pandas()
    assert len(folds) == 6 * 2 * 2  # pairings x trials x folds
    slots = trial_slots(config.resources)
    assert slots == 2  # the session's cluster: 2 CPUs, 1 CPU per trial
    actors = set(folds.worker_pid)
    assert 1 <= len(actors) <= slots, actors
    assert set(board.refit_worker_pid) <= actors
    splits = read(run, "splits").to_pandas()
    assert sorted(splits.dataset.unique()) == sorted(f"imagefolder@tree{i}" for i in range(3))


def test_asha_prunes_within_a_pairing_and_full_trials_complete(
    ray_session, tmp_path, tiny_benchmark
):
    from bench.runner import run_benchmark

    raw = tiny_benchmark(
        tmp_path,
        models=["mlp"],
        search_space={"lr": {"type": "loguniform", "low": 1e-5, "high": 1e-1}},
        search={
            "trials": 5,
            "seed": 1,
            "sampler": "random",
            "max_concurrent_trials": 1,
            "asha": {"grace_period": 1, "reduction_factor": 2},
        },
        budget={"epochs": 4, "batch_size": 64, "patience": 0},
    )
    run = run_benchmark(validate_benchmark(raw), echo=lambda line: None)
    trials = read(run, "trials").to_pandas()
    assert set(trials.status) == {"ok", "pruned"}, trials[["trial", "status", "score"]]
    # a trial that ran every epoch completed (ASHA's last rung does not prune it)
    assert (trials[trials.status == "ok"].epochs_run == 4).all()
    assert (trials[trials.status == "pruned"].epochs_run < 4).all()
    # only finished trials have fold rows; the refit used the best finished one
    folds = read(run, "folds").to_pandas()
    assert set(folds.trial) == set(trials[trials.status == "ok"].trial)
    board = run.leaderboard[0]
    assert board["num_pruned"] == (trials.status == "pruned").sum()
    assert board["best_trial"] in set(trials[trials.status == "ok"].trial)
    # Optuna's own tools open the search: the study tells the same story as trials.parquet
    storage = JournalStorage(JournalFileBackend(run.store.file(STUDIES_FILE)))
    study = optuna.load_study(study_name="mlp@digits.r0", storage=storage)
    states = {"ok": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}
    trials = trials.sort_values("trial")
    assert [(t.number, t.state.name) for t in study.trials] == [
        (row.trial, states[row.status]) for row in trials.itertuples()
    ]
    assert study.best_trial.number == board["best_trial"]


def test_a_dataset_that_fails_to_load_loses_no_finished_work(ray_session, tmp_path, tiny_benchmark):
    """Datasets load when their first pairing starts, so a bad one is found mid-run: its
    pairings are left out (nothing written for them), the others finish and are saved, and
    the one-line error names the dataset and the resume command, which then runs only them."""
    from bench.errors import BenchError
    from bench.results.store import RunStore
    from bench.runner import run_benchmark
    from bench.testing.writers import write_image_tree

    tree = tmp_path / "photos"
    raw = tiny_benchmark(
        tmp_path,
        models=["mlp"],
        datasets=["digits", {"name": "imagefolder", "path": str(tree), "image_size": 8}],
        search={"trials": 1, "seed": 0},
        budget={"epochs": 1, "batch_size": 64},
    )
    with pytest.raises(BenchError) as stopped:
        run_benchmark(validate_benchmark(raw), echo=lambda line: None, source="b.yaml")
    message = str(stopped.value)
    assert "is not a folder" in message and "\n" not in message
    run_dir = next((tmp_path / "results" / "tiny").iterdir())
    assert f"bench run b.yaml --resume {run_dir}" in message
    board = pq.read_table(run_dir / "leaderboard.parquet").to_pandas()
    assert board[["dataset", "status"]].values.tolist() == [["digits", "ok"]]
    # fix the data, resume: only the missing pairing runs
    write_image_tree(tree, ("a", "b"), per_class=10, size=8)
    resumed = run_benchmark(
        validate_benchmark(raw), echo=lambda line: None, resume=RunStore(str(run_dir))
    )
    assert sorted(r["dataset"] for r in resumed.leaderboard) == ["digits", "imagefolder@photos"]
    assert {r["status"] for r in resumed.leaderboard} == {"ok"}
    trials = read(resumed, "trials").to_pandas()
    assert len(trials) == 2  # digits' trial was not run again


def test_a_report_over_runs_with_other_splits_pairs_nothing_across_them(
    tiny_run, tmp_path, tiny_benchmark
):
    """Another cv.seed draws other splits: `bench report` says the runs are not comparable,
    shows them as two groups and compares models only within each."""
    import subprocess
    import sys

    from bench.runner import run_benchmark

    raw = tiny_benchmark(tmp_path, cv={"folds": 2, "seed": 1}, models=["mlp"])
    other = run_benchmark(validate_benchmark(raw), echo=lambda line: None)
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "report", tiny_run.store.path, other.store.path]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "different splits or preprocessing" in done.stderr
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    assert board.fingerprint.nunique() == 2 and board.group.nunique() == 2
    alone = board[board.run_id == other.store.run_id]
    assert len(alone) == 1 and alone["rank"].iloc[0] == 1  # ranked alone, compared with nobody
    first = board[board.run_id == tiny_run.store.run_id]
    assert sorted(first.model) == ["mlp", "simple_cnn"]  # its mlp was not replaced by the other's
    assert sorted(first["rank"]) == [1, 2]


def test_search_every_repeat_is_nested_cross_validation(ray_session, tmp_path, tiny_benchmark):
    """evaluation.search: every: each repeat runs its own search on its own folds, and its
    refit tests the configuration that search chose."""
    from bench.runner import run_benchmark

    raw = tiny_benchmark(tmp_path, models=["mlp"], evaluation={"repeats": 2, "search": "every"})
    run = run_benchmark(validate_benchmark(raw), echo=lambda line: None)
    trials = read(run, "trials").to_pandas()
    assert sorted(trials.groupby("repeat").size().items()) == [(0, 2), (1, 2)]
    folds = read(run, "folds").to_pandas()
    digests = folds.groupby("repeat").val_digest.unique()
    assert not set(digests[0]) & set(digests[1])  # each repeat's own folds
    replicates = read(run, "replicates").to_pandas()
    for _, rep in replicates.iterrows():
        mine = trials[trials["repeat"] == rep["repeat"]]
        best = mine.loc[mine.score.idxmax()]
        assert rep.best_trial == best.trial and rep.selection_score == best.score
        assert rep.search_seconds > 0
    board = run.leaderboard[0]
    assert board["search_mode"] == "every" and board["num_trials"] == 4


def test_each_pairings_repeat_0_model_is_kept_and_reproduces_its_predictions(tiny_run):
    """models/<model>@<dataset>/ holds repeat 0's refit: loaded back (weights_only) with its
    preprocessing, it predicts the test split as predictions.parquet recorded: the MLP bit
    for bit; the CNN to 1e-6 with the same classes (oneDNN's convolutions differ in the last
    digits between this process and the trial actor, though not between two fresh ones)."""
    import torch

    from bench.config import DatasetConfig
    from bench.models.kept import load_kept_model
    from bench.registry import load_replicates

    data = load_replicates(DatasetConfig(name="digits"), 2, 0.2, 0, 2)[0]  # the tiny splits
    predictions = read(tiny_run, "predictions").to_pandas()
    kept_files = sorted(p.relative_to(tiny_run.store.path) for p in _files(tiny_run, "models"))
    assert [str(p) for p in kept_files] == [
        f"models/{m}@digits/{f}"
        for m in ("mlp", "simple_cnn")
        for f in ("model.json", "weights.pt")
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the trial actor that refit it: one CPU, one thread
    try:
        for model in ("mlp", "simple_cnn"):
            kept = load_kept_model(tiny_run.store.path, model, "digits")
            assert kept.meta["repeat"] == 0 and kept.classes == [str(c) for c in range(10)]
            mine = predictions[(predictions.model == model) & (predictions["repeat"] == 0)]
            stored = np.stack(mine.sort_values("sample").proba.to_numpy())
            proba = kept.predict_proba(data.test_x)
            assert np.array_equal(proba.argmax(1), stored.argmax(1)), model
            if model == "mlp":
                assert np.array_equal(proba, stored)
            else:
                assert np.abs(proba - stored).max() < 1e-6
    finally:
        torch.set_num_threads(threads)


def _files(run, folder):
    return [p for p in (Path(run.store.path) / folder).rglob("*") if p.is_file()]


def test_bench_predict_prints_the_kept_models_top_classes(tiny_run, tmp_path, capsys):
    from PIL import Image

    from bench.cli import main
    from bench.config import DatasetConfig
    from bench.registry import load_replicates

    data = load_replicates(DatasetConfig(name="digits"), 2, 0.2, 0, 2)[0]
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(data.test_x[i, 0]).save(paths[-1])
    run = str(tiny_run.store.path)
    assert main(["predict", run, "--model", "mlp", "--dataset", "digits", *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    predictions = read(tiny_run, "predictions").to_pandas()
    mine = predictions[(predictions.model == "mlp") & (predictions["repeat"] == 0)]
    expected = mine.sort_values("sample").y_pred.to_numpy()[:3]
    assert [line.split(": ")[1].split()[0] for line in lines] == [str(c) for c in expected]
    assert all(len(line.split(", ")) == 3 for line in lines)  # --top 3 by default
    assert main(["predict", run, "--model", "resnet18", "--dataset", "digits", paths[0]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kept: mlp@digits, simple_cnn@digits" in err


def test_the_kept_models_deployment_cost_is_on_the_leaderboard(tiny_run):
    """MACs, batch-1 latency, throughput and precision of each pairing's repeat-0 model; the
    other repeats' models are not kept, so not timed."""
    from bench.results.schema import DEPLOYMENT_COLUMNS

    board = read(tiny_run, "leaderboard").to_pandas().set_index("model")
    replicates = read(tiny_run, "replicates").to_pandas()
    assert (
        board.macs["mlp"] == 64 * 128 + 128 * 128 + 128 * 10
    )  # 64-128-128-10 (bias adds are not counted)
    assert board.macs["simple_cnn"] > board.macs["mlp"]
    for model, row in board.iterrows():
        assert 0 < row.latency_ms <= row.latency_p95_ms and row.throughput > 0, model
        assert (row.inference_precision, row.inference_device) == ("fp32", "cpu")
        assert pd.isna(row.peak_memory_mb)  # CUDA only
    later = replicates[replicates["repeat"] > 0]
    assert later[[c for c in DEPLOYMENT_COLUMNS]].isna().all().all()
    first = replicates[replicates["repeat"] == 0].set_index("model")
    assert (first.latency_ms == board.latency_ms.loc[first.index]).all()
