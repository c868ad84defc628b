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


def test_the_shelf_resends_calls_that_failed_to_reach_it(ray_session):
    """Ray can refuse the first call to a just-created actor (its port was a dead worker's a
    moment before): the shelf's idempotent calls are retried instead of ending the run."""
    from bench.tune.datasets import DatasetPool

    pool = DatasetPool(lambda key: [key.upper()], ["digits", "digits"])
    try:
        assert pool.shelf.put._max_task_retries == -1
        assert pool.shelf.get._max_task_retries == -1
        pool.prepare()
        assert ray_session.get(ray_session.get(pool.shelf.get.remote("digits"))[0]) == "DIGITS"
    finally:
        pool.close()
