"""Memory and time of the audit's near-duplicate search at a real dataset's size: QUERIES test
images against N images (random signatures: the cost does not depend on the pixels).

    python benchmarks/duplicate_search.py [N] [QUERIES]    # default 100000 4096

Prints the search's peak Python-allocated memory (tracemalloc; the signatures themselves are
allocated before and not counted), its time and the pairs found (none, on random data)."""

import sys
import time
import tracemalloc

import numpy as np

from bench.audit import duplicates


def main() -> None:
    images = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    queries = np.arange(int(sys.argv[2]) if len(sys.argv) > 2 else 4096)
    rng = np.random.default_rng(0)
    found = duplicates.Signatures(
        [i.to_bytes(8, "little") for i in range(images)],
        duplicates._unit(rng.random((images, duplicates.COARSE**2), dtype=np.float32)),
        rng.random((images, duplicates.FINE, duplicates.FINE), dtype=np.float32),
    )
    tracemalloc.start()
    started = time.perf_counter()
    pairs = duplicates.find_duplicates(found, queries)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    print(
        f"{len(queries):,} queries x {images:,} images: peak {peak / 1e6:,.0f} MB, "
        f"{seconds:.1f} s, {len(pairs)} pairs"
    )


if __name__ == "__main__":
    main()
