"""Host memory that a long-lived trial process frees goes back to the system (glibc only;
elsewhere these do nothing).

glibc serves an allocation of 128 KB or more with pages of its own, returned on free, but it
raises that threshold each time such a block is freed, up to 32 MB. After the first large
image batches of a trial, batches and their copies then come from the heap, whose freed pages
the process keeps and fragments: a trial on a 224 px tree grew with the number of images it
went through (2 folds, 1 epoch, the MLP: 1.46 GB at 6,000 images, 1.88 GB at 24,000; glibc's
malloc_trim once a second still left 1.44 / 1.58 GB), and over a fold-and-refit on 24,000
images from 1.3 to 2.4 GB with no more live data.

So a trial on large images (a stored batch of LARGE_BATCH or more) fixes the threshold at one
batch's size: every block that large gets pages of its own and gives them back when freed
(1.37 / 1.38 GB for the two trials above, in the same time). A fixed threshold is not set for
small images: at 1 MB, every activation of a conv net on 8x8 digits got fresh pages and their
faults, and a default benchmark run had finished no trial after 5.5 minutes on 2 cores. After
every trial and refit the heap is trimmed too."""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
# glibc's ceiling for its moving threshold (64-bit); blocks above it always get own pages
MMAP_THRESHOLD_MAX = 32 << 20
# A stored batch this large means large images (64 RGB images at 224 px are 9.6 MB; 64 gray
# ones 3.2 MB), whose conv activations are far larger still: own pages cost them little.
LARGE_BATCH = 2 << 20


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def release_freed_memory() -> None:
    """Return the heap's free pages to the system (after a trial, before the next one)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _own_pages_from(size: int) -> None:
    """Blocks of `size` bytes or more get pages of their own (the threshold stops moving)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, int(size))


@contextlib.contextmanager
def returning_freed_memory(batch_bytes: int = 0) -> Iterator[None]:
    """Around a trial's training: with large images (`batch_bytes`, one stored training batch,
    at least LARGE_BATCH) every block of a batch's size or more has pages of its own; after it
    (also when it fails) the threshold goes back up to glibc's ceiling, where a reused trial
    process's next trial on small images finds it, and the heap is trimmed."""
    large = batch_bytes >= LARGE_BATCH
    if large:
        _own_pages_from(min(batch_bytes, MMAP_THRESHOLD_MAX))
    try:
        yield
    finally:
        if large:
            _own_pages_from(MMAP_THRESHOLD_MAX)
        release_freed_memory()
