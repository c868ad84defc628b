"""Dataset loaders: digits (embedded), MNIST, CIFAR-10 (on-disk formats as torchvision keeps
them) and ImageFolder trees. Each returns uint8 NCHW arrays; errors say which files go where."""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.images import LoadedImages, resize_uint8, to_uint8_nchw
from bench.data.remote import materialize
from bench.errors import DataError

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


def default_root() -> Path:
    return Path(os.environ.get("BENCH_DATA_DIR", "~/.cache/bench/datasets")).expanduser()


def _root(options: Any) -> Path:
    return materialize(options.root) if options.root else default_root()


def _resized(images: LoadedImages, options: Any) -> LoadedImages:
    side = getattr(options, "image_size", None)
    if side:
        images.x = resize_uint8(images.x, side)
        if images.test_x is not None:
            images.test_x = resize_uint8(images.test_x, side)
    return images


def load_digits(options: Any) -> LoadedImages:
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    # Pixel intensities are 0..16; stretch them onto the uint8 range every loader uses.
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    classes = [str(c) for c in digits.target_names]
    loaded = LoadedImages(classes, to_uint8_nchw(pixels), digits.target.astype(np.int64))
    return _resized(loaded, options)


def load_mnist(options: Any) -> LoadedImages:
    from torchvision.datasets import MNIST

    root = _root(options)
    raw = root / "MNIST" / "raw"
    try:
        train = MNIST(str(root), train=True, download=bool(options.download))
        test = MNIST(str(root), train=False, download=bool(options.download))
    except Exception as exc:  # torchvision raises RuntimeError or URLError; both mean "not here"
        raise DataError(
            f"dataset 'mnist': cannot read the MNIST files in {raw} ({_first_line(exc)}); "
            f"place {', '.join(MNIST_FILES)} there (or their .gz), or set download: true "
            f"on a machine with internet"
        ) from exc
    loaded = LoadedImages(
        [str(i) for i in range(10)],
        to_uint8_nchw(train.data.numpy()),
        train.targets.numpy().astype(np.int64),
        to_uint8_nchw(test.data.numpy()),
        test.targets.numpy().astype(np.int64),
    )
    return _resized(loaded, options)


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


def load_cifar10(options: Any) -> LoadedImages:
    root = _root(options)
    folder = root / "cifar-10-batches-py"
    missing = [f for f in CIFAR10_FILES if not (folder / f).is_file()]
    if missing and options.download:
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(str(root), train=True, download=True)  # fetches and md5-checks the archive
        except Exception as exc:
            raise DataError(
                f"dataset 'cifar10': download to {root} failed ({_first_line(exc)}); "
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
    return _resized(LoadedImages(classes, x, y, test_x, test_y), options)


def load_imagefolder(options: Any) -> LoadedImages:
    root = materialize(options.path)
    if not root.is_dir():
        raise DataError(
            f"dataset 'imagefolder': path {root} is not a folder; set path: to your tree"
        )
    reader = _TreeReader(
        options.image_size or 64,
        "L" if options.channels == 1 else "RGB",
        skip_bad=options.on_bad_image == "skip",
    )
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes, x, y = reader.read(root / "train")
        test_classes, test_x, test_y = reader.read(root / "test")
        if test_classes != classes:
            raise DataError(
                f"dataset 'imagefolder': {root}/test has classes {test_classes} but "
                f"{root}/train has {classes}; give both the same class folders"
            )
        return LoadedImages(
            classes, x, y, test_x, test_y, skipped=reader.skipped, ignored=reader.ignored
        )
    classes, x, y = reader.read(root)
    return LoadedImages(classes, x, y, skipped=reader.skipped, ignored=reader.ignored)


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


class _TreeReader:
    """Decodes a class-per-folder tree; bad files are all named at once, or skipped and kept
    in `skipped` (with the reason) when on_bad_image is `skip`."""

    def __init__(self, side: int, mode: str, skip_bad: bool) -> None:
        self.side, self.mode, self.skip_bad = side, mode, skip_bad
        self.skipped: list[str] = []
        self.ignored: list[str] = []  # not images at all: left out without a word

    def read(self, root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
        classes = class_folders(root)
        if len(classes) < 2:
            raise DataError(
                f"dataset 'imagefolder': {root} has {len(classes)} class folder(s); "
                f"put each class's images in its own subfolder (at least 2)"
            )
        found = {name: image_files(root / name) for name in classes}
        files = {name: images for name, (images, _) in found.items()}
        self.ignored += [str(p) for _, others in found.values() for p in others]
        everything = [f for name in classes for f in files[name]]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            decoded = dict(zip(everything, pool.map(self._decode, everything), strict=True))
        bad = [f"{path} ({why})" for path, (_, why) in decoded.items() if why]
        if bad and not self.skip_bad:
            shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise DataError(
                f"dataset 'imagefolder': {len(bad)} unreadable file(s): {shown}; remove or "
                f"replace them, or set on_bad_image: skip"
            )
        self.skipped += bad
        pixels, labels = [], []
        for label, name in enumerate(classes):
            good = [decoded[f][0] for f in files[name] if decoded[f][1] is None]
            if not good:
                raise DataError(
                    f"dataset 'imagefolder': class folder {root / name} has no readable images; "
                    "add images or remove the folder"
                )
            pixels += good
            labels += [label] * len(good)
        return classes, to_uint8_nchw(np.stack(pixels)), np.asarray(labels, dtype=np.int64)

    def _decode(self, path: Path) -> tuple[np.ndarray | None, str | None]:
        return decode_image(path, self.side, self.mode)


def decode_image(path: Path, side: int, mode: str) -> tuple[np.ndarray | None, str | None]:
    """(H, W[, C]) uint8 pixels of an image file in PIL `mode` (L or RGB) at side x side, and
    None; or None and why it cannot be read. ImageFolder trees and `bench predict` both
    decode this way."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert(mode).resize((side, side), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8), None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        return None, f"cannot decode: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
