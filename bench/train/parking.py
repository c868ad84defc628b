"""Where cross-validation's resting folds wait (FoldRun.rest): a folder of the trial's own under
the image cache, on the disk that already holds the decoded images (the system's temporary
folder may be memory, a tmpfs), removed when the trial ends. Folders that trials killed on
this host left behind go when the next trial on it starts.

Folds rest only where it pays: large images on the CPU. There an epoch takes seconds or more
and a fold's weights and optimizer state are what fills memory (the MLP at 224 px: 77 MB of
weights, 154 MB of Adam's state per fold); writing and reading them back costs ~0.1 s per
100 MB. Small images train in milliseconds a batch, where that would show; on a GPU the
folds' tensors are in the GPU's memory, not the host's; a DDP worker group keeps its own."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from bench.data.rows import cache_root
from bench.train.memory import LARGE_BATCH

PARKING = "parked"  # under the image cache's folder


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
    """A fresh folder for one trial's resting folds, or None when they do not rest."""
    if not enabled:
        yield None
        return
    root = cache_root() / PARKING
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{_host()}-pid{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _host() -> str:
    return re.sub(r"[^\w.]", "_", socket.gethostname())


def _sweep(root: Path) -> None:
    """Remove the folders of this host's trials whose process is gone. (A cache shared by
    several nodes holds theirs too: each node sweeps its own.)"""
    pattern = re.compile(rf"{re.escape(_host())}-pid(\d+)-\w+")
    for entry in root.iterdir():
        found = pattern.fullmatch(entry.name)
        if found and not _alive(int(found.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True
