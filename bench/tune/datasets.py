"""Datasets for the trials: decoded into the image cache by Ray tasks on the node's CPUs
before the first trial starts, then handed to trials as small ImageData objects (index arrays
and labels; the pixels stay in the cache, which each process maps). A dataset's entry leaves
the object store once its last pairing is done."""

from __future__ import annotations

import os
from collections import Counter
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


# Every method is idempotent, so a call that failed to reach the actor is simply sent again
# (max_task_retries). Ray 2.60 can fail the first call to a just-created actor with
# ActorUnavailableError ("Connection refused") when its port belonged to a worker that died
# moments before; without retries that ended a whole run (seen once in CI).
@ray.remote(num_cpus=0, max_task_retries=-1)
class DataShelf:
    """Dataset key -> ObjectRefs of its repeats' ImageData, for the trial actors to fetch.

    The refs travel inside lists so that Ray hands them over as refs (a bare ObjectRef argument
    or return value would be resolved into the whole dataset)."""

    def __init__(self) -> None:
        self.refs: dict[str, list[Any]] = {}

    def put(self, key: str, boxed_ref: list[Any]) -> None:
        self.refs[key] = boxed_ref

    def get(self, key: str) -> list[Any]:
        return self.refs[key]

    def drop(self, key: str) -> None:
        self.refs.pop(key, None)


class DatasetPool:
    """The driver's side: which datasets are loaded and how many pairings still need each."""

    def __init__(self, load: Callable[[str], Any], pairing_datasets: Iterable[str]) -> None:
        self.load = load  # dataset key -> each repeat's ImageData (splits saved with the run)
        self.users = Counter(pairing_datasets)
        self.shelf = DataShelf.remote()
        self.refs: dict[str, Any] = {}
        self.failed: dict[str, str] = {}  # dataset key -> why it could not be loaded

    def prepare(self) -> None:
        """Load every dataset the pairings need, in order, before the first trial: decoding
        (the slow part, on first use) then has the node's CPUs to itself and never holds up
        the scheduler while trials run."""
        for key in self.users:
            self.acquire(key)

    def acquire(self, key: str) -> bool:
        """Load `key` if it is not in the store yet; False (and the reason kept) if it fails."""
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
        # wait until the shelf holds it: a trial may ask for it right after this returns
        ray.get(self.shelf.put.remote(key, self.refs[key]))
        return True

    def release(self, key: str) -> None:
        """One pairing of `key` is done; after the last one its arrays leave the store."""
        self.users[key] -= 1
        if self.users[key] <= 0 and key in self.refs:
            self.shelf.drop.remote(key)
            del self.refs[key]

    def close(self) -> None:
        self.refs.clear()
        ray.kill(self.shelf)
