"""bench/tune/datasets.py: a tree decoded into the image cache by Ray tasks (off the driver,
on the node's CPUs) gives the same entry as threads do, and the dataset pool hands trials
ImageData that carry index arrays, not pixels."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from bench.config import DatasetConfig
from bench.data.loaders import Decoding
from bench.errors import DataError
from bench.registry import load_replicates
from bench.testing.writers import write_image_tree

pytestmark = pytest.mark.ray


def test_ray_tasks_decode_the_tree_off_the_driver(ray_session, tmp_path, monkeypatch):
    import ray

    from bench.tune import datasets as pool_module

    root = write_image_tree(tmp_path / "pets", per_class=300, size=20)
    options = DatasetConfig(name="imagefolder", path=str(root), image_size=16)
    callers = []

    def recording(fn, items):  # the Ray mapper, noting which process decoded each chunk
        def decode(item):
            return fn(item), os.getpid()

        for count, pid in pool_module.ray_tasks(decode, items):
            callers.append(pid)
            yield count

    lines = []
    decoding = Decoding(mapper=recording, echo=lines.append)
    # The driver's cache folder is the workers' too: Ray started in this process inherited it.
    on_ray = load_replicates(options, 2, 0.2, 0, 1, decoding)[0]
    assert decoding.entries[0].decoded == 600 and len(callers) == 3  # 256-image chunks
    assert os.getpid() not in callers
    assert any("decoded 600 images" in line for line in lines)

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "threads-cache"))
    on_threads = load_replicates(options, 2, 0.2, 0, 1)[0]
    assert np.array_equal(np.asarray(on_ray.train_x), np.asarray(on_threads.train_x))
    assert on_ray.mean == on_threads.mean and on_ray.fold_stats == on_threads.fold_stats

    # What a trial gets through the object store: indices and labels, the pixels by path.
    travelled = ray.get(ray.put(on_ray))
    # (index arrays of the split and folds: tens of bytes an image, whatever its size)
    assert len(pickle.dumps(on_ray)) < 64 * 600 < np.asarray(on_ray.train_x).nbytes
    assert np.array_equal(np.asarray(travelled.test_x), np.asarray(on_ray.test_x))


def test_trials_find_each_dataset_s_repeats_in_the_trial_plan(ray_session):
    """No actor holds the refs: they travel inside the TrialPlan that tune.with_parameters
    puts into the object store, and a trial actor borrows them from it."""
    from bench.tune.datasets import DatasetPool
    from bench.tune.jobs import TrialPlan

    broken = "dataset bad: cannot read it"

    def load(key):
        if key == "bad":
            raise DataError(broken)
        return [f"{key}-r0", f"{key}-r1"]

    pool = DatasetPool(load, ["digits", "bad", "digits"])
    pool.prepare()
    assert pool.failed == {"bad": broken} and list(pool.refs) == ["digits"]
    plan_ref = ray_session.put(TrialPlan("store", {}, dict(pool.refs)))
    pool.close()  # the driver's own refs go; the plan still holds them

    @ray_session.remote
    def in_a_trial(plan):
        return ray_session.get(plan.dataset_ref("digits", 1))

    assert ray_session.get(in_a_trial.remote(plan_ref)) == "digits-r1"
