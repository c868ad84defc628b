"""The image cache (bench/data/cache.py): decoded once, reused, rebuilt when a file changes,
resumed after a killed build, shared by concurrent runs, and bad images named, never a
traceback. Real trees of real image files, real processes."""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.config import DatasetConfig
from bench.data.cache import threads
from bench.data.loaders import Decoding, load_imagefolder
from bench.data.rows import CachedImages, ImageRows
from bench.errors import DataError
from bench.registry import load_replicates
from bench.testing.writers import write_image_tree


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "image-cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(folder))
    return folder


def tree_options(root: Path, **changes) -> DatasetConfig:
    return DatasetConfig(name="imagefolder", path=str(root), **{"image_size": 12, **changes})


def load(root: Path, **changes):
    """(loaded images, images decoded to get them)."""
    decoding = Decoding(mapper=threads)
    loaded = load_imagefolder(tree_options(root, **changes), decoding)
    return loaded, sum(entry.decoded for entry in decoding.entries)


def test_a_second_load_decodes_nothing_and_reads_the_same_pixels(tmp_path, cache_dir):
    root = write_image_tree(tmp_path / "pets", per_class=20, size=16)
    first, decoded = load(root)
    assert decoded == 40
    again, decoded_again = load(root)
    assert decoded_again == 0
    assert np.array_equal(np.asarray(first.x), np.asarray(again.x))
    assert np.array_equal(first.y, again.y)
    # what a file decodes to, through PIL directly
    expected = Image.open(root / "cat" / "0.png").convert("RGB").resize((12, 12), Image.BILINEAR)
    assert np.array_equal(first.x[0], np.asarray(expected).transpose(2, 0, 1))
    # one entry, finished: no partial build or chunk records left behind
    entries = sorted(p.name for p in cache_dir.iterdir() if p.is_dir())
    assert len(entries) == 1 and not entries[0].endswith(".partial")


def test_a_changed_added_or_removed_file_rebuilds_the_entry(tmp_path, cache_dir):
    root = write_image_tree(tmp_path / "pets", per_class=6, size=16)
    before, _ = load(root)
    changed = root / "dog" / "2.png"
    Image.fromarray(np.full((16, 16, 3), 7, dtype=np.uint8)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    after, decoded = load(root)
    assert decoded == 12  # rebuilt
    row = 6 + sorted(p.name for p in (root / "dog").iterdir()).index("2.png")
    assert np.all(after.x[row] == 7) and not np.all(before.x[row] == 7)
    (root / "cat" / "0.png").unlink()
    fewer, decoded = load(root)
    assert decoded == 11 and len(fewer.y) == 11
    # another side or channel count is another entry, the first ones kept for reuse
    _, decoded = load(root, channels=1)
    assert decoded == 11
    assert load(root)[1] == 0


def test_views_pickle_as_a_path_not_as_pixels(tmp_path, cache_dir):
    root = write_image_tree(tmp_path / "pets", per_class=50, size=32)
    data = load_replicates(tree_options(root, image_size=32), 2, 0.2, 0, 1)[0]
    assert isinstance(data.train_x, ImageRows) and isinstance(data.train_x.base, CachedImages)
    pixels = np.asarray(data.train_x).nbytes
    assert len(pickle.dumps(data)) < pixels / 10
    back = pickle.loads(pickle.dumps(data))
    assert np.array_equal(np.asarray(back.train_x), np.asarray(data.train_x))
    assert np.array_equal(np.asarray(back.test_x), np.asarray(data.test_x))


def test_cached_normalization_statistics_equal_a_pass_over_the_pixels(tmp_path, cache_dir):
    from bench.data.images import channel_stats

    root = write_image_tree(tmp_path / "pets", per_class=30, size=16)
    data = load_replicates(tree_options(root), 3, 0.2, 0, 1)[0]
    np.testing.assert_allclose(data.mean, channel_stats(np.asarray(data.train_x))[0])
    train, _ = data.folds[1]
    np.testing.assert_allclose(data.fold_stats[1][1], channel_stats(data.train_x[train])[1])


def _huge_png(path: Path, side: int = 14000) -> None:
    """A PNG whose header says side x side pixels (more than PIL's decompression-bomb limit):
    PIL refuses it on open, before reading any pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    )


def test_corrupt_truncated_and_huge_images_are_named_in_one_line_or_skipped(tmp_path, cache_dir):
    root = write_image_tree(tmp_path / "pets", per_class=5, size=16)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    photo.save(root / "cat" / "whole.jpg")
    (root / "cat" / "cut.jpg").write_bytes((root / "cat" / "whole.jpg").read_bytes()[:300])
    (root / "dog" / "junk.png").write_bytes(b"not a png at all")
    _huge_png(root / "dog" / "poster.png")
    with pytest.raises(DataError) as refused:
        load(root)
    message = str(refused.value)
    assert "\n" not in message and "3 unreadable file(s)" in message
    for name in ("cut.jpg", "junk.png", "poster.png"):
        assert name in message
    assert "too large to decode safely" in message and "on_bad_image: skip" in message
    loaded, decoded = load(root, on_bad_image="skip")
    assert decoded == 0  # the failed run's decode was kept: bad files are facts of the tree
    assert len(loaded.y) == 5 + 1 + 5 and len(loaded.skipped) == 3
    assert any("poster.png" in s and "too large" in s for s in loaded.skipped)


def test_a_class_whose_images_are_all_unreadable_is_named(tmp_path, cache_dir):
    root = write_image_tree(tmp_path / "pets", per_class=3, size=16)
    for path in (root / "dog").iterdir():
        path.write_bytes(b"broken")
    with pytest.raises(DataError, match=r"class folder .*dog has no readable images"):
        load(root, on_bad_image="skip")


def test_too_little_disk_for_the_entry_is_refused_in_one_line(tmp_path, cache_dir, monkeypatch):
    import shutil
    from collections import namedtuple

    root = write_image_tree(tmp_path / "pets", per_class=3, size=16)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(DataError, match=r"need 0.0 GB in the image cache .*BENCH_CACHE_DIR"):
        load(root)


BUILD_SLOWLY = textwrap.dedent(
    """
    import sys, time
    import bench.data.loaders as loaders
    from bench.config import DatasetConfig
    from bench.data.loaders import Decoding, load_imagefolder

    loaders.CHUNK_IMAGES = 4

    def one_at_a_time(fn, items):  # a chunk every 0.3 s, announced when recorded
        for item in items:
            yield fn(item)
            print("chunk", flush=True)
            time.sleep(float(sys.argv[2]))

    decoding = Decoding(mapper=one_at_a_time)
    options = DatasetConfig(name="imagefolder", path=sys.argv[1], image_size=12)
    load_imagefolder(options, decoding)
    print("decoded", decoding.entries[0].decoded, flush=True)
    """
)


def _builder(root: Path, cache: Path, pause: float) -> subprocess.Popen:
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-c", BUILD_SLOWLY, str(root), str(pause)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_killed_build_resumes_from_its_finished_chunks(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr("bench.data.loaders.CHUNK_IMAGES", 4)  # as in the killed build
    root = write_image_tree(tmp_path / "pets", per_class=16, size=16)
    builder = _builder(root, cache_dir, 0.3)
    for _ in range(3):
        assert builder.stdout.readline().strip() == "chunk"
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    assert not any(p.name.endswith(("meta.json",)) for p in cache_dir.rglob("*"))
    resumed, decoded = load(root)
    assert 0 < decoded <= 32 - 3 * 4  # at least the 3 recorded chunks were kept
    clean = tmp_path / "clean-cache"
    os.environ["BENCH_CACHE_DIR"] = str(clean)
    fresh, decoded_fresh = load(root)
    assert decoded_fresh == 32
    assert np.array_equal(np.asarray(resumed.x), np.asarray(fresh.x))
    assert np.array_equal(resumed.y, fresh.y)


def test_two_runs_building_one_entry_take_turns_and_share_it(tmp_path, cache_dir):
    root = write_image_tree(tmp_path / "pets", per_class=8, size=16)
    runs = [_builder(root, cache_dir, 0.05) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    decoded = sorted(int(out.strip().splitlines()[-1].split()[-1]) for out in outputs)
    assert decoded == [0, 16]  # one decoded every image, the other waited and reused them
    loaded, again = load(root)
    assert again == 0 and len(loaded.y) == 16


def test_training_from_cache_rows_equals_training_from_an_array(tmp_path, cache_dir):
    """The loop reads the cache's rows through their index: same batches, same model."""
    import torch

    from bench.train.inputs import IndexedImages, make_loader

    root = write_image_tree(tmp_path / "pets", per_class=20, size=16)
    data = load_replicates(tree_options(root), 2, 0.25, 0, 1)[0]
    in_memory = np.asarray(data.train_x)
    train, _ = data.folds[0]
    batches = [
        list(make_loader(IndexedImages(images, data.train_y, train), 8, True, 3, workers))
        for images, workers in ((data.train_x, 0), (in_memory, 0), (data.train_x, 2))
    ]
    assert len(batches[0]) == len(batches[1]) == len(batches[2]) > 1
    # from the cache or from memory, gathered here or by 2 loader processes: the same batches
    for (x, y), (x2, y2), (x3, y3) in zip(*batches, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert torch.equal(x, x3) and torch.equal(y, y3)


READ_ON_ANOTHER_NODE = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    data = pickle.loads(open(sys.argv[1], "rb").read())
    np.save(sys.argv[2], np.asarray(data.train_x))
    """
)


def test_a_node_without_the_entry_decodes_its_own_from_the_dataset_files(tmp_path, cache_dir):
    """As on a cluster node whose BENCH_CACHE_DIR is its own disk: the dataset arrives as a
    path it lacks, and the node decodes the same entry from the files (same key), once."""
    import shutil

    root = write_image_tree(tmp_path / "pets", per_class=10, size=16)
    data = load_replicates(tree_options(root), 2, 0.2, 0, 1)[0]
    (tmp_path / "data.pkl").write_bytes(pickle.dumps(data))
    expected = np.asarray(data.train_x)
    driver_entry = Path(data.train_x.base.folder)
    shutil.rmtree(driver_entry)  # gone from the driver's cache too: only the files remain
    # the other node's cache is its own folder, not the driver's path
    node_cache = tmp_path / "node-cache"
    env = {**os.environ, "BENCH_CACHE_DIR": str(node_cache)}
    script = [sys.executable, "-c", READ_ON_ANOTHER_NODE, str(tmp_path / "data.pkl")]
    subprocess.run([*script, str(tmp_path / "x.npy")], env=env, check=True)
    assert (node_cache / driver_entry.name / "meta.json").is_file()
    assert not driver_entry.exists()
    assert np.array_equal(np.load(tmp_path / "x.npy"), expected)
    # the files changed since: this node cannot make the same entry, and says so in one line
    shutil.rmtree(node_cache)
    (root / "cat" / "0.png").unlink()
    failed = subprocess.run(
        [*script, str(tmp_path / "y.npy")], env=env, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "is missing on this node" in failed.stderr
    assert "its dataset's files give another one here" in failed.stderr
