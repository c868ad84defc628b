"""Shared fixtures: one real local Ray instance per test session, tiny benchmark configs."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# Tests start their own local cluster; it binds to loopback and keeps Ray's token auth on.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# torchvision's weight cache for this session only (set before Ray starts, so its workers
# see it too): tests write the "downloaded" ImageNet files there, never into a user's cache.
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="bench-tests-torch-home-")
# The image cache likewise: the tests' decoded datasets never land in (or come from) a user's.
os.environ["BENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-tests-image-cache-")
SESSION_FOLDERS = (os.environ["TORCH_HOME"], os.environ["BENCH_CACHE_DIR"])


def pytest_unconfigure(config):
    """The session's weight and image caches go with it (the weights alone are ~1 GB a run)."""
    for folder in SESSION_FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_session():
    """A 2-CPU local Ray, started once for every test that needs it."""
    import ray

    if not ray.is_initialized():
        # "local": always a fresh instance, never a cluster another test (or user) started.
        ray.init(
            address="local",
            num_cpus=2,
            dashboard_host="127.0.0.1",
            include_dashboard=False,
            logging_level="WARNING",
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_benchmark():
    """A factory of raw benchmark mappings sized for tests."""
    return make_tiny_benchmark


def make_tiny_benchmark(tmp_path, **changes) -> dict:
    """A raw benchmark mapping sized for tests: 2 trials, 2 folds, 2 epochs, 2 repeats on
    digits."""
    raw = {
        "name": "tiny",
        "models": ["mlp", "simple_cnn"],
        "datasets": ["digits"],
        "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
        "search": {"trials": 2, "seed": 0},
        "cv": {"folds": 2, "seed": 0},
        "evaluation": {"repeats": 2},
        "budget": {"epochs": 2, "batch_size": 64},
        "output": str(tmp_path / "results"),
    }
    for key, value in changes.items():
        raw[key] = value
    return raw
