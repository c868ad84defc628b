"""Views of decoded images that cost no copy: ImageRows (some rows of an array, in a given
order) over CachedImages (an image cache entry's pixel file, memory-mapped read-only in each
process that reads it). Both pickle small, so a dataset travels between processes as paths and
index arrays."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import DataError

_MAPPED: dict[str, np.memmap] = {}  # one read-only mapping per entry and process


def cache_root() -> Path:
    """This process's image cache folder: BENCH_CACHE_DIR, else ~/.cache/bench/images."""
    return Path(os.environ.get("BENCH_CACHE_DIR", "~/.cache/bench/images")).expanduser()


class CachedImages:
    """The decoded images of one cache entry, memory-mapped read-only on first use. It pickles
    as its folder, shape and origin, so a dataset travels between processes (Ray's object
    store, a DataLoader's workers) as a path, and every process on a node maps the same pages.

    `origin` is the dataset's definition (JSON): a node whose cache lacks the entry (a cluster
    without shared BENCH_CACHE_DIR) decodes it there from the dataset's own files, once per
    node, rather than receiving pixels through the driver."""

    def __init__(self, folder: str, shape: tuple[int, int, int, int], origin: str = "") -> None:
        self.folder, self.shape = str(folder), tuple(int(s) for s in shape)
        self.origin = origin

    def __reduce__(self) -> tuple[Any, ...]:
        return CachedImages, (self.folder, self.shape, self.origin)

    @property
    def array(self) -> np.memmap:
        mapped = _MAPPED.get(self.folder)
        if mapped is None:
            path = Path(self._local_folder(), "pixels.u8")
            mapped = np.memmap(path, dtype=np.uint8, mode="r", shape=self.shape)
            _MAPPED[self.folder] = mapped
        return mapped

    def _local_folder(self) -> Path:
        """Where this process finds the entry: the folder it was made in (the same node, or a
        cache every node shares), else the entry of the same key in this node's own cache
        (BENCH_CACHE_DIR may differ between nodes), decoded there first if it is missing."""
        made_in = Path(self.folder)
        if (made_in / "meta.json").is_file():
            return made_in
        local = cache_root() / made_in.name  # an entry's folder name is its key
        if not (local / "meta.json").is_file():
            self._decode_here(local)
        return local

    def _decode_here(self, local: Path) -> None:
        """Build this node's copy of the entry from the dataset's files (the same key: the
        same files give the same entry), or say why it cannot be had here. The origin names
        the function that does it ("module:function") and its argument, so this module needs
        no import of the loaders (which import it)."""
        if self.origin:
            recipe = json.loads(self.origin)
            module, function = recipe["rebuild"].split(":")
            getattr(importlib.import_module(module), function)(recipe["dataset"])
        if not (local / "meta.json").is_file():
            raise DataError(
                f"image cache entry {local.name} is missing on this node ({local.parent}) and "
                "its dataset's files give another one here (changed, or not at the same "
                "path); put the data and BENCH_CACHE_DIR on storage every node sees"
            )

    def __len__(self) -> int:
        return self.shape[0]


class ImageRows:
    """Some rows of an image array (in memory, or a CachedImages), in a given order, without
    copying them: indexing reads only the rows asked for. ImageData's training pool and test
    split are such views, so splits, folds and repeats cost an index array each."""

    def __init__(self, base: np.ndarray | CachedImages, index: np.ndarray) -> None:
        self.base = base
        self.index = np.asarray(index, dtype=np.int64)

    @property
    def array(self) -> np.ndarray:
        return self.base.array if isinstance(self.base, CachedImages) else self.base

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def ndim(self) -> int:
        return 4

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):  # rows first, then numpy's indexing within them
            return self[key[0]][(slice(None), *key[1:]) if np.ndim(self.index[key[0]]) else key[1:]]
        rows = self.index[key]
        if np.ndim(rows) == 0:
            return np.asarray(self.array[int(rows)])
        return gather(self.array, rows)

    def take(self, index: np.ndarray) -> ImageRows:
        """The rows `index` picks from this view, as a view of the same base."""
        return ImageRows(self.base, self.index[np.asarray(index, dtype=np.int64)])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def gather(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """array[rows], reading a memory map in file order (sequential pages) whatever the order
    of `rows`."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    out[order] = array[rows[order]]
    return out
