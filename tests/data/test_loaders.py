"""The loaders on files the tests write in each dataset's own on-disk format."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.config import DatasetConfig
from bench.data.loaders import load_cifar10, load_digits, load_imagefolder, load_mnist
from bench.errors import DataError
from bench.testing.writers import write_cifar10, write_image_tree, write_mnist


@pytest.fixture
def mnist_root(tmp_path):
    return write_mnist(tmp_path, train=30, test=10)


def test_mnist_reads_idx_files(mnist_root):
    loaded = load_mnist(DatasetConfig(name="mnist", root=str(mnist_root)))
    assert loaded.x.shape == (30, 1, 28, 28) and loaded.x.dtype == np.uint8
    assert loaded.test_x.shape == (10, 1, 28, 28)
    assert loaded.y.tolist() == (np.arange(30) % 10).tolist()
    raw = (mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte").read_bytes()[16:]
    assert loaded.x[0, 0].tobytes() == raw[: 28 * 28]


def test_mnist_resize_option(mnist_root):
    loaded = load_mnist(DatasetConfig(name="mnist", root=str(mnist_root), image_size=14))
    assert loaded.x.shape == (30, 1, 14, 14) and loaded.test_x.shape == (10, 1, 14, 14)


def test_mnist_missing_files_say_what_to_put_where(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(DatasetConfig(name="mnist", root=str(tmp_path)))
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message


def test_cifar10_reads_python_batches(tmp_path):
    folder = write_cifar10(tmp_path)
    loaded = load_cifar10(DatasetConfig(name="cifar10", root=str(tmp_path)))
    assert loaded.x.shape == (30, 3, 32, 32) and loaded.test_x.shape == (4, 3, 32, 32)
    assert loaded.classes[0] == "airplane" and len(loaded.classes) == 10
    with open(folder / "data_batch_1", "rb") as fh:
        first = pickle.load(fh)
    # CIFAR rows are 1024 red, then green, then blue values: exactly NCHW once reshaped
    assert np.array_equal(loaded.x[0].reshape(-1), first[b"data"][0])
    assert loaded.y[:6].tolist() == first[b"labels"]


def test_cifar10_refuses_pickles_that_are_not_plain_data(tmp_path):
    folder = write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar10(DatasetConfig(name="cifar10", root=str(tmp_path)))


def test_cifar10_missing_files_are_named(tmp_path):
    with pytest.raises(DataError, match="missing data_batch_1.*extract cifar-10-python.tar.gz"):
        load_cifar10(DatasetConfig(name="cifar10", root=str(tmp_path)))


def test_imagefolder_single_tree(tmp_path):
    write_image_tree(tmp_path / "pets")
    loaded = load_imagefolder(
        DatasetConfig(name="imagefolder", path=str(tmp_path / "pets"), image_size=10)
    )
    assert loaded.classes == ["cat", "dog"] and loaded.test_x is None
    assert loaded.x.shape == (8, 3, 10, 10) and loaded.y.tolist() == [0] * 4 + [1] * 4
    expected = np.asarray(Image.open(tmp_path / "pets" / "cat" / "0.png").convert("RGB"))
    assert np.array_equal(loaded.x[0], expected.transpose(2, 0, 1))


def test_imagefolder_train_test_and_grayscale(tmp_path):
    write_image_tree(tmp_path / "t" / "train")
    write_image_tree(tmp_path / "t" / "test", per_class=2)
    loaded = load_imagefolder(
        DatasetConfig(name="imagefolder", path=str(tmp_path / "t"), image_size=6, channels=1)
    )
    assert loaded.x.shape == (8, 1, 6, 6) and loaded.test_x.shape == (4, 1, 6, 6)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            lambda root: (root / "cat" / "bad.png").write_bytes(b"not a png"),
            r"1 unreadable file\(s\): .*cat/bad.png \(cannot decode",
        ),
        (
            lambda root: (root / "dog" / "photo.jpg").write_bytes(b""),
            r"dog/photo.jpg \(cannot decode",
        ),
        (lambda root: (root / "bird").mkdir(), "bird has no readable images"),
    ],
    ids=["corrupt", "empty-jpg", "empty-class"],
)
def test_imagefolder_bad_files_are_named(tmp_path, damage, expected):
    write_image_tree(tmp_path / "pets")
    damage(tmp_path / "pets")
    with pytest.raises(DataError, match=expected):
        load_imagefolder(DatasetConfig(name="imagefolder", path=str(tmp_path / "pets")))


def test_imagefolder_names_every_bad_file_and_the_skip_option(tmp_path):
    write_image_tree(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "pets" / "dog" / "cut.jpeg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(DataError, match="2 unreadable file.*bad.png.*cut.jpeg.*on_bad_image: skip"):
        load_imagefolder(DatasetConfig(name="imagefolder", path=str(tmp_path / "pets")))
    loaded = load_imagefolder(
        DatasetConfig(
            name="imagefolder", path=str(tmp_path / "pets"), image_size=10, on_bad_image="skip"
        )
    )
    assert loaded.x.shape == (8, 3, 10, 10)
    assert len(loaded.skipped) == 2 and any("bad.png" in s for s in loaded.skipped)


def test_imagefolder_leaves_out_files_that_are_not_images_and_counts_them(tmp_path):
    """As torchvision's ImageFolder: files without an image suffix and hidden ones (macOS's
    .DS_Store and ._ twins, Windows' Thumbs.db, notes, a labels JSON, a notebook's
    checkpoint folder) are left out, listed in `ignored`; the images load as without them."""
    root = write_image_tree(tmp_path / "pets")
    clutter = ["notes.txt", ".DS_Store", "cat/Thumbs.db", "cat/labels.json", "dog/._0.png"]
    for name in clutter:
        (root / name).write_bytes(b"\x00\x01")
    (root / "dog" / ".ipynb_checkpoints").mkdir()
    (root / "dog" / ".ipynb_checkpoints" / "0-checkpoint.png").write_bytes(b"\x00")
    (root / ".cache").mkdir()  # a hidden folder at the top is no class
    loaded = load_imagefolder(DatasetConfig(name="imagefolder", path=str(root), image_size=10))
    clean = load_imagefolder(
        DatasetConfig(name="imagefolder", path=str(write_image_tree(tmp_path / "c")), image_size=10)
    )
    assert loaded.classes == ["cat", "dog"]
    assert np.array_equal(loaded.x, clean.x) and np.array_equal(loaded.y, clean.y)
    # files beside the class folders belong to no class: not even looked at
    names = sorted(Path(p).name for p in loaded.ignored)
    assert names == sorted(["._0.png", ".ipynb_checkpoints", "Thumbs.db", "labels.json"])
    assert loaded.skipped == []


def test_imagefolder_follows_symlinked_class_and_sub_folders_once(tmp_path):
    elsewhere = write_image_tree(tmp_path / "elsewhere", ("bird",), per_class=3)
    root = write_image_tree(tmp_path / "pets")
    (root / "bird").symlink_to(elsewhere / "bird", target_is_directory=True)
    extra = write_image_tree(tmp_path / "more", ("cat",), per_class=2, seed=5)
    (root / "cat" / "more").symlink_to(extra / "cat", target_is_directory=True)
    (root / "dog" / "loop").symlink_to(root / "dog", target_is_directory=True)
    loaded = load_imagefolder(DatasetConfig(name="imagefolder", path=str(root), image_size=10))
    assert loaded.classes == ["bird", "cat", "dog"]
    assert np.bincount(loaded.y).tolist() == [3, 4 + 2, 4]  # the loop adds nothing


def test_imagefolder_missing_path(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load_imagefolder(DatasetConfig(name="imagefolder", path=str(tmp_path / "nope")))


def test_digits_are_embedded():
    loaded = load_digits(DatasetConfig(name="digits"))
    assert loaded.x.shape == (1797, 1, 8, 8) and np.asarray(loaded.x).max() == 255
    assert sorted(set(loaded.y.tolist())) == list(range(10))


def test_imagefolder_from_a_uri_is_cached_once(tmp_path, monkeypatch):
    from bench.data import remote

    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "cache"))
    write_image_tree(tmp_path / "pets")
    uri = (tmp_path / "pets").as_uri()  # file://...: the same pyarrow path as s3:// or gs://
    options = DatasetConfig(name="imagefolder", path=uri, image_size=10)
    first = load_imagefolder(options)
    local = remote.materialize(uri)
    assert local != tmp_path / "pets" and (local / ".complete").is_file()
    (local / "cat" / "0.png").unlink()  # a cached copy is reused, not fetched again
    (local / "cat" / "extra.png").write_bytes((tmp_path / "pets" / "cat" / "1.png").read_bytes())
    second = load_imagefolder(options)
    assert first.x.shape == second.x.shape == (8, 3, 10, 10)
    assert not np.array_equal(first.x[0], second.x[0])


def test_unreadable_uri_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="cannot fetch dataset from"):
        load_imagefolder(DatasetConfig(name="imagefolder", path="file:///nonexistent/pets"))
