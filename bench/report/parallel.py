"""Run independent CPU-bound report jobs (figures, bootstrap comparisons) on every core."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def parallel_map(fn: Callable[..., Any], jobs: list[tuple]) -> list[Any]:
    """[fn(*job) for job in jobs], in order, over a process pool (fork keeps it cheap)."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2:
        return [fn(*job) for job in jobs]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(fn, *zip(*jobs, strict=True)))
