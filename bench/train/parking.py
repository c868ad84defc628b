"""Where cross-validation's resting folds wait (FoldRun.rest): a folder of the trial's own under
the image cache, on the disk that already holds the decoded images (the system's temporary
folder may be memory, a tmpfs), removed when the trial ends. Folders that killed trials left
behind go when the next trial starts.

Folds rest only where it pays: large images on the CPU. There an epoch takes seconds or more
and a fold's weights and optimizer state are what fills memory (the MLP at 224 px: 77 MB of
weights, 154 MB of Adam's state per fold); writing and reading them back costs ~0.1 s per
100 MB. Small images train in milliseconds a batch, where that would show; on a GPU the
folds' tensors are in the GPU's memory, not the host's; a DDP worker group keeps its own."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch

from bench.data.rows import cache_root
from bench.train.memory import LARGE_BATCH

PARKING = "parked"  # under the image cache's folder
LOCK = ".lock"  # in a trial's folder, locked while the trial lives
SWEEP_AFTER_SECONDS = 60


def folds_rest(batch_bytes: int, device: Any) -> bool:
    """Whether a trial's folds rest on disk between their epochs (see the module's doc):
    `batch_bytes`, one stored training batch."""
    return (
        batch_bytes >= LARGE_BATCH
        and torch.device(device).type == "cpu"
        and not torch.distributed.is_initialized()
    )


@contextlib.contextmanager
def parking_folder(enabled: bool) -> Iterator[Path | None]:
    """A fresh folder for one trial's resting folds, or None when they do not rest (also
    when the cache's disk refuses the folder: read-only, full; the folds then stay in
    memory). The trial holds a lock on it while it lives: a folder whose lock is free (its
    trial was killed) goes at the next trial's start, wherever that trial runs."""
    folder = _claimed_folder() if enabled else None
    if folder is None:
        yield None
        return
    path, lock = folder
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        lock.close()


def _claimed_folder() -> tuple[Path, IO[str]] | None:
    root = cache_root() / PARKING
    try:
        root.mkdir(parents=True, exist_ok=True)
        _sweep(root)
        path = Path(tempfile.mkdtemp(prefix="trial-", dir=root))
        lock = open(path / LOCK, "w")  # held until the trial ends
    except OSError:
        return None
    fcntl.flock(lock, fcntl.LOCK_EX)
    return path, lock


def _sweep(root: Path) -> None:
    """Remove the folders of trials that are gone: their lock is free (the kernel freed it
    with the process). A folder younger than a minute is left alone, as its trial may be
    between making it and locking it."""
    for entry in root.iterdir():
        try:
            if time.time() - entry.stat().st_mtime < SWEEP_AFTER_SECONDS:
                continue
            with open(entry / LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue  # held (its trial lives), or gone meanwhile
