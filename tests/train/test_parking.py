"""bench/train/parking.py: where a trial's resting folds wait, and when they rest at all; a
trial on large images parks its folds there and leaves nothing behind."""

from __future__ import annotations

import fcntl
import os
import time

import pytest

from bench.config import DatasetConfig
from bench.registry import load_replicates
from bench.train import parking
from bench.train.memory import LARGE_BATCH


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_only_large_images_on_the_cpu_rest_their_folds():
    assert parking.folds_rest(LARGE_BATCH, "cpu")
    assert not parking.folds_rest(LARGE_BATCH - 1, "cpu")  # small images: every batch counts
    assert not parking.folds_rest(LARGE_BATCH, "cuda")  # the folds are in the GPU's memory


def test_a_trial_s_folder_is_under_the_cache_and_goes_with_the_trial(cache):
    with parking.parking_folder(True) as folder:
        assert folder.parent == cache / parking.PARKING and folder.is_dir()
        (folder / "fold-0.pt").write_bytes(b"x")
    assert not folder.exists()
    with parking.parking_folder(False) as nothing:
        assert nothing is None


def test_folders_of_ended_trials_are_swept_and_live_ones_kept(cache):
    """A trial locks its folder while it lives; a folder whose lock is free and that is more
    than a minute old was a killed trial's."""
    root = cache / parking.PARKING
    ended, young, live = (root / name for name in ("trial-ended", "trial-young", "trial-live"))
    for folder in (ended, young, live):
        folder.mkdir(parents=True)
        (folder / "fold-0.pt").write_bytes(b"x")
    old = time.time() - 2 * parking.SWEEP_AFTER_SECONDS
    for folder in (ended, live):
        os.utime(folder, (old, old))
    with open(live / parking.LOCK, "w") as lock:  # as a trial in another process holds it
        fcntl.flock(lock, fcntl.LOCK_EX)
        with parking.parking_folder(True) as mine:
            assert (mine / parking.LOCK).exists()
    assert not ended.exists() and young.exists() and live.exists()


def test_an_unusable_cache_folder_means_the_folds_stay_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(blocker))
    with parking.parking_folder(True) as folder:
        assert folder is None


def test_a_trial_on_large_images_parks_its_folds(cache, monkeypatch):
    """The whole path of a trial (bench.train.task), digits standing in for large images:
    while an epoch is reported, each fold waits in the trial's folder; none is left after."""
    from bench.config import BenchmarkConfig
    from bench.plan import resolve_pairings
    from bench.train.task import cross_validate_trial

    monkeypatch.setattr(parking, "LARGE_BATCH", 1)
    config = BenchmarkConfig.model_validate(
        {
            "name": "parking",
            "models": ["mlp"],
            "datasets": ["digits"],
            "cv": {"folds": 2},
            "budget": {"epochs": 2, "batch_size": 64},
        }
    )
    plan = resolve_pairings(config, "run")[0]
    data = load_replicates(DatasetConfig(name="digits"), 2, 0.2, 0, 1)[0]
    resting = []

    def on_epoch(epoch, score, snapshot):
        resting.append(sorted(p.name for p in (cache / parking.PARKING).glob("*/fold-*")))

    outcomes = cross_validate_trial(plan, data, {}, "cpu", on_epoch)
    assert resting == [["fold-0.pt", "fold-1.pt"]] * 2
    assert len(outcomes) == 2 and all(o.val_proba.shape[1] == 10 for o in outcomes)
    assert list((cache / parking.PARKING).iterdir()) == []  # the trial's folder went
