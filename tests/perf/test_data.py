"""bench perf's data section measures the run's process tree: every descendant counted, each
by its own name at the peak (bench/perf/data.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.perf.data import UsedMemory, tree_processes


def test_the_process_tree_counts_a_childs_memory_and_names_it():
    hold = "import numpy, time; a = numpy.ones(200 << 20, numpy.uint8); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", hold])
    try:
        deadline = time.time() + 20
        while tree_processes(os.getpid()).get(child.pid, 0) < 190 << 20:
            assert time.time() < deadline, "the child's 200 MB never showed"
            time.sleep(0.1)
        with UsedMemory(interval=0.05) as memory:
            memory.root = os.getpid()
            time.sleep(0.5)
        assert memory.tree_peak >= 200 << 20
        (name,) = [n for n in memory.tree_at_peak if n.startswith(f"{child.pid} ")]
        assert "python" in name and memory.tree_at_peak[name] >= 190 << 20
    finally:
        child.kill()
        child.wait()
