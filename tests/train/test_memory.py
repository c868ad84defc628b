"""bench/train/memory.py: freed batches go back to the system instead of staying in the heap
of a long-lived trial process (glibc's behaviour, shown in a fresh process each way)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bench.train.memory import LARGE_BATCH, _glibc

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc's allocator only")

# 50 batches of 4 MB, each followed by a small long-lived object from the same heap, all freed
# again; what the process still holds, either inside a trial (before its trim) or after it.
ALLOCATE_AND_FREE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from bench.train.memory import returning_freed_memory

    def resident_mb():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 2**20

    def batches_made_and_freed():
        batches, keep = [], []
        for _ in range(50):
            batches.append(np.ones(4 << 20, np.uint8))
            keep.append(np.ones(4096))
        del batches
        return keep

    np.ones(8 << 20, np.uint8)  # one batch made and freed: glibc raises its threshold
    mode, batch_bytes = sys.argv[1], int(sys.argv[2])
    before = resident_mb()
    if mode == "plain":
        kept = batches_made_and_freed()
        print(resident_mb() - before)
    else:
        with returning_freed_memory(batch_bytes):
            kept = batches_made_and_freed()
            during = resident_mb() - before
        print(during if mode == "during" else resident_mb() - before)
    """
)


def retained_mb(mode: str, batch_bytes: int = 0) -> float:
    done = subprocess.run(
        [sys.executable, "-c", ALLOCATE_AND_FREE, mode, str(batch_bytes)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def test_freed_batches_leave_the_process_after_the_trial():
    assert retained_mb("plain") > 150  # the 200 MB of batches stay with glibc's defaults
    assert retained_mb("after", 64 << 10) < 20


def test_a_trial_on_large_images_frees_its_batches_as_it_goes():
    """Batches of a large-image trial's size get their own pages: freed at once, mid-trial."""
    assert retained_mb("during", 4 << 20) < 20
    # small images keep glibc's moving threshold (conv activations stay in the fast heap)
    assert retained_mb("during", LARGE_BATCH // 2) > 150
