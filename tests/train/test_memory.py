"""bench/train/memory.py: freed batches go back to the system instead of staying in the heap
of a long-lived trial process (glibc's behaviour, shown in a fresh process each way)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bench.train.memory import _glibc

ALLOCATE_AND_FREE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from bench.train.memory import release_freed_memory

    def resident_mb():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 2**20

    np.ones(8 << 20, np.uint8)  # one batch made and freed: glibc raises its threshold
    before = resident_mb()
    batches, keep = [], []
    for _ in range(50):  # 50 batches of 4 MB, each followed by a small long-lived object
        batches.append(np.ones(4 << 20, np.uint8))
        keep.append(np.ones(4096))  # 32 KB: from the same heap
    del batches
    if sys.argv[1] == "bench":
        release_freed_memory()
    print(resident_mb() - before)
    """
)


def retained_mb(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", ALLOCATE_AND_FREE, mode], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


@pytest.mark.skipif(_glibc() is None, reason="glibc's allocator only")
def test_freed_batches_leave_the_process_instead_of_its_heap():
    assert retained_mb("plain") > 150  # the 200 MB of batches stay with glibc's defaults
    assert retained_mb("bench") < 20
