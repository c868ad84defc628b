"""Dataset loaders: digits (embedded), MNIST, CIFAR-10 (on-disk formats as torchvision keeps
them) and ImageFolder trees. Each returns uint8 NCHW arrays; errors say which files go where."""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from bench.data.cache import (
    CHUNK_IMAGES,
    ArrayChunk,
    CacheEntry,
    Echo,
    FileChunk,
    ImageSource,
    Mapper,
    cached,
    file_identity,
)
from bench.data.images import LoadedImages, to_uint8_nchw
from bench.data.remote import materialize
from bench.data.rows import ImageRows
from bench.errors import DataError, first_line

IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
}
MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


ARRAY_CHUNK = 4096  # images resized at once from an in-memory dataset, at most


@dataclass
class Decoding:
    """How a loader decodes what the cache lacks: `mapper` runs the decode chunks (threads
    here; Ray tasks across the node's CPUs in a run), `echo` shows progress; `entries`
    collects the cache entries read (how many images were decoded, and how fast)."""

    mapper: Mapper | None = None
    echo: Echo | None = None
    entries: list[CacheEntry] = field(default_factory=list)


def default_root() -> Path:
    return Path(os.environ.get("BENCH_DATA_DIR", "~/.cache/bench/datasets")).expanduser()


def _root(options: Any) -> Path:
    return materialize(options.root) if options.root else default_root()


def _from_arrays(
    options: Any,
    identity: str,
    classes: list[str],
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    decoding: Decoding | None,
) -> LoadedImages:
    """A dataset held as arrays in its own files (digits, MNIST, CIFAR-10): resized into the
    image cache chunk by chunk (in this process: a resize, no decode), then read from it."""
    x, y, test_x, test_y = arrays
    side = options.image_size or x.shape[2]
    images = x if test_x is None else np.concatenate([x, test_x])
    labels = y if test_y is None else np.concatenate([y, test_y])
    # a chunk's float copies while resizing stay near 64 MB (CIFAR-10 at 224 px: 256 images)
    step = int(np.clip((64 << 20) // (4 * images.shape[1] * side * side), 256, ARRAY_CHUNK))
    chunks = [
        ArrayChunk(start, images[start : start + step], side)
        for start in range(0, len(images), step)
    ]
    source = ImageSource(
        options.name,
        identity,
        classes,
        labels,
        len(x),
        test_x is not None,
        images.shape[1],
        side,
        chunks,
        in_process=True,
        origin=origin_of(options),
    )
    return from_cache(source, decoding)


def from_cache(source: ImageSource, decoding: Decoding | None, skip_bad: bool = False):
    """The source's rows read from its cache entry (built first where needed): the training
    pool and the official test split as views, unreadable images named or left out."""
    decoding = decoding or Decoding()
    entry = cached(source, decoding.mapper, decoding.echo)
    decoding.entries.append(entry)
    bad = entry.bad
    if bad and not skip_bad:
        shown = list(bad.values())
        listed = "; ".join(shown[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise DataError(
            f"dataset '{source.name}': {len(bad)} unreadable file(s): {listed}; remove or "
            f"replace them, or set on_bad_image: skip"
        )
    rows = np.setdiff1d(np.arange(len(entry.labels)), np.fromiter(bad, dtype=np.int64))
    pool, test = rows[rows < entry.pool], rows[rows >= entry.pool]
    if bad:  # a tree's class folders all hold image files; skipping may empty one
        _check_classes(source, entry, pool)
    loaded = LoadedImages(
        entry.classes,
        ImageRows(entry.images, pool),
        entry.labels[pool],
        sums=entry.sums[pool],
        skipped=list(bad.values()),
    )
    if entry.has_test:
        loaded.test_x, loaded.test_y = ImageRows(entry.images, test), entry.labels[test]
    return loaded


def origin_of(options: Any) -> str:
    """How a node without the entry makes its own (bench.data.rows.CachedImages): `rebuild`
    below with the dataset's definition (a config.DatasetConfig's fields); "" for options of
    another kind."""
    dump = getattr(options, "model_dump", None)
    return json.dumps({"rebuild": f"{__name__}:rebuild", "dataset": dump()}) if dump else ""


def rebuild(definition: dict[str, Any]) -> None:
    """Decode a dataset into this node's image cache (threads), from its definition."""
    LOADERS[definition["name"]](SimpleNamespace(**definition))


def _check_classes(source: ImageSource, entry: CacheEntry, pool: np.ndarray) -> None:
    """Every class keeps a readable image in the training pool (unreadable ones left out)."""
    counts = np.bincount(entry.labels[pool], minlength=len(entry.classes))
    empty = [name for name, n in zip(entry.classes, counts, strict=True) if n == 0]
    if empty:
        folder = source.notes.get("pool_root", "")
        raise DataError(
            f"dataset '{source.name}': class folder {Path(folder, empty[0])} has no readable "
            "images; add images or remove the folder"
        )


def load_digits(options: Any, decoding: Decoding | None = None) -> LoadedImages:
    import sklearn
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    # Pixel intensities are 0..16; stretch them onto the uint8 range every loader uses.
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    classes = [str(c) for c in digits.target_names]
    arrays = (to_uint8_nchw(pixels), digits.target.astype(np.int64), None, None)
    identity = f"sklearn-digits|{sklearn.__version__}"
    return _from_arrays(options, identity, classes, arrays, decoding)


def load_mnist(options: Any, decoding: Decoding | None = None) -> LoadedImages:
    from torchvision.datasets import MNIST

    root = _root(options)
    raw = root / "MNIST" / "raw"
    try:
        train = MNIST(str(root), train=True, download=bool(options.download))
        test = MNIST(str(root), train=False, download=bool(options.download))
    except Exception as exc:  # torchvision raises RuntimeError or URLError; both mean "not here"
        raise DataError(
            f"dataset 'mnist': cannot read the MNIST files in {raw} ({first_line(exc)}); "
            f"place {', '.join(MNIST_FILES)} there (or their .gz), or set download: true "
            f"on a machine with internet"
        ) from exc
    arrays = (
        to_uint8_nchw(train.data.numpy()),
        train.targets.numpy().astype(np.int64),
        to_uint8_nchw(test.data.numpy()),
        test.targets.numpy().astype(np.int64),
    )
    identity = "mnist|" + file_identity(raw, sorted(p for p in raw.iterdir() if p.is_file()))
    classes = [str(i) for i in range(10)]
    return _from_arrays(options, identity, classes, arrays, decoding)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR-10's batches are pickles; allow only the numpy pieces they are made of."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        batch = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    # Batches pickled by Python 2 have bytes keys; latin1 turns them into str.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def load_cifar10(options: Any, decoding: Decoding | None = None) -> LoadedImages:
    root = _root(options)
    folder = root / "cifar-10-batches-py"
    missing = [f for f in CIFAR10_FILES if not (folder / f).is_file()]
    if missing and options.download:
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(str(root), train=True, download=True)  # fetches and md5-checks the archive
        except Exception as exc:
            raise DataError(
                f"dataset 'cifar10': download to {root} failed ({first_line(exc)}); "
                f"fetch cifar-10-python.tar.gz and extract it there"
            ) from exc
        missing = [f for f in CIFAR10_FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"dataset 'cifar10': missing {', '.join(missing)} in {folder}; extract "
            f"cifar-10-python.tar.gz into {root}, or set download: true on a machine with internet"
        )

    def images_and_labels(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        batches = [_read_cifar_batch(folder / n) for n in names]
        x = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
        y = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
        return x.reshape(-1, 3, 32, 32), y

    x, y = images_and_labels(CIFAR10_FILES[:5])
    test_x, test_y = images_and_labels(["test_batch"])
    classes = list(_read_cifar_batch(folder / "batches.meta")["label_names"])
    identity = "cifar10|" + file_identity(folder, [folder / name for name in CIFAR10_FILES])
    arrays = (x, y, test_x, test_y)
    return _from_arrays(options, identity, classes, arrays, decoding)


def load_imagefolder(options: Any, decoding: Decoding | None = None) -> LoadedImages:
    root = materialize(options.path)
    if not root.is_dir():
        raise DataError(
            f"dataset 'imagefolder': path {root} is not a folder; set path: to your tree"
        )
    official = (root / "train").is_dir() and (root / "test").is_dir()
    pool_root = root / "train" if official else root
    classes, files, ignored = tree_files(pool_root)
    labels = [label for label, names in enumerate(files) for _ in names]
    pool = [path for names in files for path in names]
    if official:
        test_classes, test_files, test_ignored = tree_files(root / "test")
        if test_classes != classes:
            raise DataError(
                f"dataset 'imagefolder': {root}/test has classes {test_classes} but "
                f"{root}/train has {classes}; give both the same class folders"
            )
        labels += [label for label, names in enumerate(test_files) for _ in names]
        everything = pool + [path for names in test_files for path in names]
        ignored += test_ignored
    else:
        everything = pool
    side, mode = options.image_size or 64, "L" if options.channels == 1 else "RGB"
    chunks = [
        FileChunk(
            start, tuple(str(p) for p in everything[start : start + CHUNK_IMAGES]), side, mode
        )
        for start in range(0, len(everything), CHUNK_IMAGES)
    ]
    source = ImageSource(
        "imagefolder",
        f"imagefolder|{mode}|" + file_identity(root, everything),
        classes,
        np.asarray(labels, dtype=np.int64),
        len(pool),
        official,
        1 if mode == "L" else 3,
        side,
        chunks,
        files=[str(p.relative_to(root)) for p in everything],
        notes={"pool_root": str(pool_root)},
        origin=origin_of(options),
    )
    loaded = from_cache(source, decoding, skip_bad=options.on_bad_image == "skip")
    loaded.ignored = [str(p) for p in ignored]
    return loaded


def tree_files(root: Path) -> tuple[list[str], list[list[Path]], list[Path]]:
    """A class-per-folder tree's classes (sorted), each class's image files, and the files
    that are not images (left out as torchvision's ImageFolder leaves them)."""
    classes = class_folders(root)
    if len(classes) < 2:
        raise DataError(
            f"dataset 'imagefolder': {root} has {len(classes)} class folder(s); "
            f"put each class's images in its own subfolder (at least 2)"
        )
    found = [image_files(root / name) for name in classes]
    for name, (images, _) in zip(classes, found, strict=True):
        if not images:
            raise DataError(
                f"dataset 'imagefolder': class folder {root / name} has no readable images; "
                "add images or remove the folder"
            )
    return classes, [images for images, _ in found], [p for _, others in found for p in others]


def class_folders(root: Path) -> list[str]:
    """The class folders of a tree, sorted: every visible folder, symlinked ones included."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not _hidden(p.name))


def image_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(images, others) under a class folder, recursively and sorted, following symlinked
    folders once each. Others, left out as torchvision's ImageFolder leaves them: files
    without an image suffix (notes.txt, Thumbs.db), hidden files (.DS_Store, macOS's ._x.png)
    and hidden folders (.ipynb_checkpoints, counted as one)."""
    images, others, seen = [], [], set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a symlink loop, or a folder linked twice
            dirs[:] = []
            continue
        seen.add(real)
        others += [Path(top, d) for d in dirs if _hidden(d)]
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in files:
            path = Path(top, name)
            is_image = not _hidden(name) and path.suffix.lower() in IMAGE_SUFFIXES
            (images if is_image else others).append(path)
    return sorted(images), sorted(others)


def _hidden(name: str) -> bool:
    return name.startswith(".")


# Dataset name -> its loader (the registry's `load` of each dataset calls the same function).
LOADERS = {
    "digits": load_digits,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "imagefolder": load_imagefolder,
}
