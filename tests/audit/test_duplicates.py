"""Exact and near-duplicate images (bench.audit.duplicates), on scikit-learn's digits at 32 px."""

import numpy as np
import pytest

from bench.audit.duplicates import MAX_DISTANCE, find_duplicates, shifted_distance, signatures


@pytest.fixture(scope="module")
def digits32():
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    pixels = torch.from_numpy(load_digits().images[:, None] * (255 / 16)).float()
    images = F.interpolate(pixels, size=(32, 32), mode="bilinear").round().clamp(0, 255)
    return images.numpy().astype(np.uint8)


def shifted_noisy_copies(images, rng):
    out = []
    for image in images:
        dy, dx = rng.integers(-1, 2, 2)
        moved = np.roll(image.astype(np.float64), (dy, dx), axis=(1, 2))
        out.append(np.clip(moved + rng.normal(0, 6, moved.shape), 0, 255).round())
    return np.stack(out).astype(np.uint8)


def test_copies_are_found_and_different_digits_are_not(digits32):
    rng = np.random.default_rng(0)
    originals = rng.choice(len(digits32), 40, replace=False)
    copies = shifted_noisy_copies(digits32[originals], rng)
    exact = digits32[originals[:5]]
    found = signatures([digits32, copies, exact])
    n = len(digits32)
    queries = np.arange(n, n + len(copies) + len(exact))

    pairs = find_duplicates(found, queries)

    near = {(p.a, p.b) for p in pairs if p.kind == "near"}
    copied = {(int(o), n + k) for k, o in enumerate(originals)}
    copy_of_exact = {(n + k, n + 40 + k) for k in range(5)}  # a copy and the exact copy
    assert near == copied | copy_of_exact
    exact_pairs = {(p.a, p.b) for p in pairs if p.kind == "exact"}
    assert exact_pairs == {(int(o), n + 40 + k) for k, o in enumerate(originals[:5])}
    assert all(p.distance == 0 for p in pairs if p.kind == "exact")
    assert [p.distance for p in pairs] == sorted(p.distance for p in pairs)


def test_the_digits_themselves_hold_no_pair_under_the_default_distance(digits32):
    found = signatures([digits32])
    assert find_duplicates(found, np.arange(len(digits32))) == []
    assert MAX_DISTANCE < 0.0039  # the closest pair of digits, two writers' near-identical ones


def test_distance_ignores_brightness_and_small_shifts_but_not_other_images(digits32):
    grey = digits32[:, 0].astype(np.float32)
    image = grey[0]
    brighter_and_moved = np.roll(image * 0.7 + 40, 2, axis=1)[None]
    assert shifted_distance(image, brighter_and_moved)[0] < 1e-3
    assert shifted_distance(image, grey[1:2])[0] > 0.05


@pytest.mark.parametrize(
    ("size", "side"), [(224, 8), (224, 32), (50, 32), (28, 8), (8, 32), (3, 8)]
)
def test_signatures_resize_as_torch_does(size, side):
    """The audit resizes in numpy (the driver imports no torch) what torch's interpolate
    would: area averages when shrinking, bilinear when growing; the blur is avg_pool2d's."""
    import torch
    import torch.nn.functional as F

    from bench.audit.duplicates import _blurred, _resized

    grey = np.random.default_rng(size).uniform(0, 255, (3, 1, size, size)).astype(np.float32)
    mode = "area" if size >= side else "bilinear"
    expected = F.interpolate(torch.from_numpy(grey), size=(side, side), mode=mode)[:, 0]
    np.testing.assert_allclose(_resized(grey, side), expected.numpy(), rtol=0, atol=1e-3)
    padded = F.pad(expected[:, None], (1, 1, 1, 1), mode="replicate")
    blurred = F.avg_pool2d(padded, 3, stride=1)[:, 0].numpy()
    np.testing.assert_allclose(_blurred(expected.numpy()), blurred, rtol=0, atol=1e-3)


def test_signatures_are_the_same_in_blocks_of_any_size(digits32, monkeypatch):
    """Each block's signatures are written into rows sized for every part's images: blocks
    that straddle parts (and an empty part) land in the rows of the images they hold."""
    from bench.audit import duplicates

    rgb = np.repeat(digits32[:40], 3, axis=1)
    rgb[:, 1] //= 2  # channels that differ, so the grey mean is a real sum
    parts = [rgb[:17], rgb[17:17], rgb[17:]]
    whole = signatures([rgb])
    monkeypatch.setattr(duplicates, "CHUNK", 5)
    blocked = signatures(parts)
    assert blocked.hashes == whole.hashes
    assert np.array_equal(blocked.coarse, whole.coarse)
    assert np.array_equal(blocked.fine, whole.fine)
    assert blocked.fine.dtype == np.float32 and len(signatures([]).hashes) == 0


def test_grey_is_numpy_s_channel_mean_to_the_bit():
    from bench.audit.duplicates import _grey

    block = np.random.default_rng(1).integers(0, 256, (6, 3, 31, 29), dtype=np.uint8)
    assert np.array_equal(_grey(block), block.astype(np.float32).mean(axis=1, keepdims=True))
