"""Datasets in the object store only while a pairing needs them: decoded and put there when
a dataset's first pairing is about to run, released once its last pairing is done, so the
memory of a run follows the datasets in use rather than every dataset of the definition."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import ray

from bench.errors import BenchError


@ray.remote(num_cpus=0)
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
