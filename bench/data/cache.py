"""The image cache: every dataset decoded and resized once, into a memory-mapped uint8 file on
disk, keyed by what the pixels depend on (the source files' paths, sizes and modification
times, or the source's own identity; the side; the channels).

Trials read their batches from it through the page cache, which a node holds once for all of
its processes: a dataset's memory does not grow per trial, fold, repeat or worker, nor with the
dataset (pages not in use are dropped by the kernel as for any file). A later run, or a resume,
decodes nothing. A build killed part-way keeps the chunks it finished and resumes from them;
two runs that need the same entry take turns on a lock file, the second reusing the first's.

An entry is a folder `<name>-<key>/` under `cache_root()`:
  pixels.u8   (N, C, H, W) uint8, the training pool first, then the official test split
  labels.npy  (N,) int64
  sums.npy    (N, 2, C) float64: each image's pixel sums and sums of squares (normalization)
  meta.json   shape, classes, pool size, unreadable images (index -> why), relative file names
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.rows import CachedImages, cache_root
from bench.errors import DataError

# Bump when what a cached pixel means changes (decoding, resizing): old entries are then unused.
CACHE_FORMAT = 1
CHUNK_IMAGES = 256  # images per decode task: a few seconds of work at 224 px
PROGRESS_SECONDS = 5.0

# mapper(fn, items) -> fn(item) for every item, yielded as each finishes (in any order).
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Iterator[Any]]
Echo = Callable[[str], None]


# -- reading ---------------------------------------------------------------------------------


@dataclass
class CacheEntry:
    """A finished entry, read back: the images (mapped lazily) and what describes them."""

    folder: Path
    images: CachedImages
    labels: np.ndarray
    sums: np.ndarray
    classes: list[str]
    pool: int  # rows [0, pool) are the training pool, the rest the official test split
    has_test: bool
    bad: dict[int, str]  # row -> why it could not be decoded
    files: list[str] | None  # each row's file, relative to the source's root (trees only)
    decoded: int = 0  # images decoded to make it in this process (0: read from the cache)
    seconds: float = 0.0

    @classmethod
    def read(cls, folder: Path, origin: str = "") -> CacheEntry:
        meta = json.loads((folder / "meta.json").read_text())
        shape = tuple(meta["shape"])
        return cls(
            folder,
            CachedImages(str(folder), shape, origin),
            np.load(folder / "labels.npy"),
            np.load(folder / "sums.npy"),
            list(meta["classes"]),
            int(meta["pool"]),
            bool(meta["has_test"]),
            {int(k): v for k, v in meta["bad"].items()},
            meta.get("files"),
        )


# -- what to decode --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileChunk:
    """Image files to decode into rows [start, start + len(paths)) of an entry."""

    start: int
    paths: tuple[str, ...]
    side: int
    mode: str  # PIL mode: "L" or "RGB"

    def __len__(self) -> int:
        return len(self.paths)

    def decode(self) -> tuple[np.ndarray, dict[int, str]]:
        from bench.data.decode import decode_image

        channels = 1 if self.mode == "L" else 3
        out = np.zeros((len(self.paths), channels, self.side, self.side), dtype=np.uint8)
        bad = {}
        for i, path in enumerate(self.paths):
            pixels, why = decode_image(Path(path), self.side, self.mode)
            if why is not None:
                bad[self.start + i] = f"{path} ({why})"
                continue
            out[i] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return out, bad


@dataclass(frozen=True)
class ArrayChunk:
    """Images already in memory (uint8 NCHW, a dataset's native size), resized into rows
    [start, start + len(images)) of an entry."""

    start: int
    images: np.ndarray
    side: int

    def __len__(self) -> int:
        return len(self.images)

    def decode(self) -> tuple[np.ndarray, dict[int, str]]:
        from bench.data.images import resize_uint8

        return resize_uint8(self.images, self.side), {}


@dataclass
class ImageSource:
    """What an entry is made of: its rows' labels and chunks to decode, its classes, and the
    identity the key hashes (which must change whenever any pixel would)."""

    name: str
    identity: str
    classes: list[str]
    labels: np.ndarray  # every row's label: pool first, then the official test split
    pool: int
    has_test: bool
    channels: int
    side: int
    chunks: list[FileChunk] | list[ArrayChunk]
    files: list[str] | None = None
    # Chunks that are cheap in-process (arrays in memory) skip the mapper: no task start-up.
    in_process: bool = False
    notes: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # the dataset's definition as JSON (see CachedImages)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.labels), self.channels, self.side, self.side)

    def key(self) -> str:
        text = f"{CACHE_FORMAT}|{self.shape}|{self.identity}"
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def file_identity(root: Path, paths: Iterable[Path]) -> str:
    """Each file's path under `root`, size and modification time: a file replaced, changed,
    added or removed gives another identity (and so a rebuilt entry)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# -- building --------------------------------------------------------------------------------


def threads(fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
    """The default mapper: a thread per core (PIL and torch release the GIL while decoding)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for future in as_completed([pool.submit(fn, item) for item in items]):
            yield future.result()


def cached(source: ImageSource, mapper: Mapper | None = None, echo: Echo | None = None):
    """The finished entry of `source`, built first if no process has built it yet."""
    folder = cache_root() / f"{source.name}-{source.key()}"
    if (folder / "meta.json").is_file():
        return CacheEntry.read(folder, source.origin)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.with_name(folder.name + ".lock"), source.name, echo):
        if (folder / "meta.json").is_file():  # another run built it while this one waited
            return CacheEntry.read(folder, source.origin)
        started = time.perf_counter()
        decoded = _build(source, folder, mapper or threads, echo)
        entry = CacheEntry.read(folder, source.origin)
        entry.decoded, entry.seconds = decoded, time.perf_counter() - started
        return entry


@contextlib.contextmanager
def _locked(path: Path, name: str, echo: Echo | None) -> Iterator[None]:
    """An exclusive lock on `path` (released by the kernel if this process dies)."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if echo:
                echo(f"  dataset {name}: another process is decoding it into the cache; waiting")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(source: ImageSource, folder: Path, mapper: Mapper, echo: Echo | None) -> int:
    """Decode every chunk not finished by an earlier (killed) build into `folder`.partial,
    then finish the entry and move it into place. Returns the images decoded now."""
    partial = folder.with_name(folder.name + ".partial")
    (partial / "chunks").mkdir(parents=True, exist_ok=True)
    pixels = partial / "pixels.u8"
    size = int(np.prod(source.shape))
    if not pixels.is_file() or pixels.stat().st_size != size:
        _check_space(partial, size, source.name)
        with open(pixels, "wb") as fh:  # sparse: blocks are written as chunks finish
            fh.truncate(size)
    todo = [c for c in source.chunks if not _record(partial, c).is_file()]
    tasks = [(str(partial), source.shape, chunk) for chunk in todo]
    run = (lambda fn, items: map(fn, items)) if source.in_process else mapper
    meter = _Meter(source.name, sum(len(c) for c in todo), len(source.labels), echo)
    for count in run(write_chunk, tasks):
        meter.add(count)
    meter.done()
    _finish(source, partial)
    if folder.exists():  # left by a build that died between the rename and meta.json
        shutil.rmtree(folder)
    partial.rename(folder)
    return meter.count


def write_chunk(task: tuple[str, tuple[int, ...], FileChunk | ArrayChunk]) -> int:
    """Decode one chunk into its rows of the entry's pixel file, then record it as done (its
    pixel sums and unreadable files): a killed build resumes after the last recorded chunk.
    Runs in a thread, or in a Ray task on the node that holds the cache."""
    partial, shape, chunk = task
    images, bad = chunk.decode()
    mapped = np.memmap(Path(partial, "pixels.u8"), dtype=np.uint8, mode="r+", shape=shape)
    mapped[chunk.start : chunk.start + len(chunk)] = images
    mapped.flush()
    del mapped
    from bench.data.images import pixel_sums

    record = _record(Path(partial), chunk)
    staging = record.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(
        staging,
        sums=pixel_sums(images),
        bad_rows=np.asarray(list(bad), dtype=np.int64),
        bad_why=np.asarray(list(bad.values()) or [""], dtype=str)[: len(bad)],
    )
    os.replace(staging, record)  # atomic: a chunk is either recorded whole or not at all
    return len(chunk)


def _record(partial: Path, chunk: FileChunk | ArrayChunk) -> Path:
    """Where a decoded chunk is recorded (by its rows, so another chunking redoes it)."""
    return partial / "chunks" / f"{chunk.start}-{len(chunk)}.npz"


def _finish(source: ImageSource, partial: Path) -> None:
    sums = np.zeros((len(source.labels), 2, source.channels), dtype=np.float64)
    bad: dict[int, str] = {}
    for chunk in source.chunks:
        with np.load(_record(partial, chunk)) as record:
            sums[chunk.start : chunk.start + len(chunk)] = record["sums"]
            bad.update(zip(record["bad_rows"].tolist(), record["bad_why"].tolist(), strict=True))
    np.save(partial / "labels.npy", np.asarray(source.labels, dtype=np.int64))
    np.save(partial / "sums.npy", sums)
    meta = {
        "format": CACHE_FORMAT,
        "shape": list(source.shape),
        "classes": source.classes,
        "pool": source.pool,
        "has_test": source.has_test,
        "bad": {str(k): v for k, v in sorted(bad.items())},
        "files": source.files,
        "identity": source.identity if len(source.identity) < 200 else None,
    }
    (partial / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(partial / "chunks")


def _check_space(folder: Path, needed: int, name: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DataError(
            f"dataset {name}: its decoded images need {needed / 1e9:.1f} GB in the image cache "
            f"{folder.parent} but only {free / 1e9:.1f} GB are free; free some space, set "
            "BENCH_CACHE_DIR to a larger disk, or lower image_size"
        )


class _Meter:
    """A progress line every few seconds while a build decodes: done/total, rate, time left."""

    def __init__(self, name: str, todo: int, total: int, echo: Echo | None) -> None:
        self.name, self.todo, self.total, self.echo = name, todo, total, echo
        self.count, self.started, self.shown = 0, time.perf_counter(), time.perf_counter()
        self.resumed = total - todo

    def add(self, count: int) -> None:
        self.count += count
        now = time.perf_counter()
        if self.echo and now - self.shown >= PROGRESS_SECONDS and self.count < self.todo:
            self.shown = now
            rate = self.count / (now - self.started)
            left = (self.todo - self.count) / rate if rate else 0.0
            self.echo(
                f"  dataset {self.name}: decoded {self.resumed + self.count:,}/{self.total:,} "
                f"images ({rate:,.0f}/s, about {_clock(left)} left)"
            )

    def done(self) -> None:
        if not self.echo or not self.todo:
            return
        seconds = time.perf_counter() - self.started
        resumed = f", {self.resumed:,} kept from an interrupted build" if self.resumed else ""
        self.echo(
            f"  dataset {self.name}: decoded {self.count:,} images in {seconds:.1f} s "
            f"({self.count / max(seconds, 1e-9):,.0f}/s{resumed}) into the image cache"
        )


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
