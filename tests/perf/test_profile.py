"""bench perf's CPU profile: CPU seconds per kind of process, read from /proc."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.perf.profile import CpuSampler, MemorySampler, _group_of

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")


def test_titles_map_to_groups():
    assert _group_of("ray::ImplicitFunc.train") == "trial actors"
    assert _group_of("/usr/lib/ray/core/src/ray/raylet/raylet --node-id x") == "Ray daemons"
    assert _group_of("ray::IDLE") == "other"


def test_a_busy_process_is_charged_to_its_group_and_this_process_to_the_driver():
    # a process titled like a Ray trial actor (argv[0]), spinning for a second
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"
    with CpuSampler(interval=0.1) as cpu:
        done = subprocess.run(
            ["bash", "-c", f'exec -a ray::ImplicitFunc.train {sys.executable} -c "$0"', spin]
        )
        sum(i * i for i in range(3_000_000))  # the driver's own work
    assert done.returncode == 0
    groups = cpu.by_group()
    assert groups["trial actors"] >= 0.5  # sampled every 0.1 s: most of its second is seen
    assert groups["driver"] > 0
    assert cpu.workers_started() == 1  # the new ray:: process, not Ray's own agents


def test_memory_sampler_sees_a_block_that_holds_memory():
    with MemorySampler(interval=0.05) as memory:
        block = np.ones(64 * 2**20)  # 512 MiB of ones (this VM folds pages of zeros)
        time.sleep(0.3)
    del block
    assert memory.start > 0
    assert memory.peak - memory.start >= 256 * 2**20
