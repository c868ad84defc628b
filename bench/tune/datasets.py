"""Datasets for the trials: decoded into the image cache by Ray tasks on the node's CPUs
before the first trial starts, then handed to trials as small ImageData objects (index arrays
and labels; the pixels stay in the cache, which each process maps)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from bench.errors import BenchError


def ray_tasks(fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
    """A bench.data.cache mapper: one Ray task (1 CPU) per decode chunk, results as they
    finish. The tasks run on this node, where the cache is, unless BENCH_CACHE_SHARED=1 says
    the cache folder (BENCH_CACHE_DIR) and the data are on storage every node sees: then they
    spread over the cluster's CPUs."""
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 2}
    if os.environ.get("BENCH_CACHE_SHARED", "") not in ("1", "true", "yes"):
        here = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=False)
    task = ray.remote(**options)(fn)
    pending = [task.remote(item) for item in items]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


class DatasetPool:
    """The driver's side: each dataset's repeats put into the object store once, before the
    first trial, as small ImageData objects (index arrays and labels; the pixels stay in the
    image cache). The trials find their refs in the run's TrialPlan, so no process of its own
    has to hold them (an actor for that cost 64 MB), and they stay until the run ends: tens of
    bytes an image."""

    def __init__(self, load: Callable[[str], Any], pairing_datasets: Iterable[str]) -> None:
        self.load = load  # dataset key -> each repeat's ImageData (splits saved with the run)
        self.keys = list(dict.fromkeys(pairing_datasets))
        self.refs: dict[str, list[Any]] = {}  # dataset key -> ObjectRefs of its repeats
        self.failed: dict[str, str] = {}  # dataset key -> why it could not be loaded

    def prepare(self) -> None:
        """Load every dataset the pairings need, in order, before the first trial: decoding
        (the slow part, on first use) then has the node's CPUs to itself and never holds up
        the scheduler while trials run; and the TrialPlan, made next, carries every ref."""
        for key in self.keys:
            self.acquire(key)

    def acquire(self, key: str) -> bool:
        """Whether `key` is loaded (loading it if it was not); False, with the reason kept,
        if it could not be."""
        if key in self.refs:
            return True
        if key in self.failed:
            return False
        try:
            repeats = self.load(key)
        except BenchError as exc:
            self.failed[key] = str(exc)
            return False
        self.refs[key] = [ray.put(data) for data in repeats]
        return True

    def close(self) -> None:
        self.refs.clear()
