"""Dataset roots given as URIs (`s3://bucket/cifar`, `gs://...`, `file://...`): copied once
into a local cache, then read like a local folder. The decoded arrays then travel through
Ray's object store, which moves them once per node and shares them among its trials."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.errors import DataError


def is_uri(location: str) -> bool:
    return "://" in location


def cache_root() -> Path:
    base = os.environ.get("BENCH_DATA_DIR", "~/.cache/bench/datasets")
    return Path(base).expanduser() / "from-uri"


def materialize(location: str) -> Path:
    """A local folder holding the data at `location` (itself, when it is a local path)."""
    if not is_uri(location):
        return Path(location).expanduser()
    import pyarrow.fs as pafs

    target = cache_root() / hashlib.sha256(location.encode()).hexdigest()[:16]
    done = target / ".complete"
    if done.is_file():
        return target
    try:
        fs, path = pafs.FileSystem.from_uri(location)
        staging = target.with_name(target.name + f".partial-{os.getpid()}")
        staging.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(
            path, str(staging), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem()
        )
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot fetch dataset from {location} ({' '.join(str(exc).split())[:200]}); check "
            f"the URI and this machine's credentials for it"
        ) from None
    if target.exists():  # another process finished first; keep its copy
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(target)
    (target / ".complete").touch()
    return target
