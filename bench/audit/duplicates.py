"""Duplicate images: exact (the same decoded pixels) and near (the same picture after noise, a
re-encode, a change of brightness or a shift of a pixel or two).

Near pairs in two steps, so the cost grows with the images times a few candidates rather than
with every pair: each queried image's 30 nearest images by a coarse signature (8x8 grey, mean
removed, unit length: blind to brightness and contrast, little moved by a small shift), then
each candidate's distance at 32x32 after a 3x3 blur (which takes most of the noise and little
of the picture), the smallest over shifts of up to 2 pixels. The distance is 1 - the cosine
similarity of the two centred images where they overlap. On scikit-learn's digits at 32 px:
0.0003 (median; 0.0008 at most in 300 tries) between an image and a copy shifted by a pixel
with noise of 6 grey levels; 0.0039 at the least between two of the 1,797 digits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

COARSE = 8  # side of the signature that picks candidates
FINE = 32  # side at which candidates are compared
CANDIDATES = 30  # nearest images by the coarse signature compared at FINE
SHIFT = 2  # largest shift, in FINE pixels, tried when comparing
MAX_DISTANCE = 0.002  # near pairs at or under this distance are reported
CHUNK = 256  # images converted at a time (a 224 px RGB chunk is 38 MB)
# Coarse similarities computed at once (queries x images; 64 MB of float32): the queries of a
# block shrink as the dataset grows, so the search's memory does not grow with it squared.
SIMILARITY_BLOCK = 2**24


@dataclass(frozen=True)
class Pair:
    a: int  # image index, a < b
    b: int
    kind: str  # "exact" or "near"
    distance: float


@dataclass
class Signatures:
    hashes: list[bytes]
    coarse: np.ndarray  # (N, COARSE * COARSE) float32, unit rows
    fine: np.ndarray  # (N, FINE, FINE) float32 grey


def signatures(images_parts: list) -> Signatures:
    """Hashes and signatures of the images of every part (uint8 NCHW arrays or cache rows),
    in order, as one set. Each block's signatures go straight into arrays sized for all the
    images: joining per-block lists at the end held the fine signatures twice while it joined
    them (0.41 GB more at 100,000 images; the audit's peak there fell by 0.12 GB, the search's
    similarity blocks being the next highest)."""
    total = sum(len(images) for images in images_parts)
    found = Signatures(
        hashes=[],
        coarse=np.empty((total, COARSE * COARSE), np.float32),
        fine=np.empty((total, FINE, FINE), np.float32),
    )
    for start, block in _blocks(images_parts):
        rows = slice(start, start + len(block))
        found.hashes += [_digest(image) for image in block]
        grey = _grey(block)
        found.coarse[rows] = _unit(_resized(grey, COARSE).reshape(len(block), -1))
        found.fine[rows] = _blurred(_resized(grey, FINE))
    return found


def find_duplicates(
    found: Signatures, queries: np.ndarray, max_distance: float = MAX_DISTANCE
) -> list[Pair]:
    """Every exact pair and every near pair at or under `max_distance` that has at least one
    image among `queries` (indices), each pair once, sorted by distance then index."""
    queries = np.asarray(queries, dtype=np.int64)
    pairs = {(p.a, p.b): p for p in _exact_pairs(found.hashes, set(queries.tolist()))}
    rows = max(1, SIMILARITY_BLOCK // max(len(found.coarse), 1))
    for start in range(0, len(queries), rows):
        chunk = queries[start : start + rows]
        for i, candidates in zip(chunk, _candidates(found.coarse, chunk), strict=True):
            distances = shifted_distance(found.fine[i], found.fine[candidates])
            for j, distance in zip(candidates, distances, strict=True):
                key = (int(min(i, j)), int(max(i, j)))
                if distance <= max_distance and key not in pairs:
                    pairs[key] = Pair(*key, "near", float(max(distance, 0.0)))
    return sorted(pairs.values(), key=lambda p: (p.distance, p.a, p.b))


def shifted_distance(image: np.ndarray, others: np.ndarray, shift: int = SHIFT) -> np.ndarray:
    """1 - cosine similarity of the centred images on `image`'s centre, the smallest over
    every shift of `others` by up to `shift` pixels each way."""
    side = image.shape[0]
    centre = _unit(image[shift : side - shift, shift : side - shift].reshape(1, -1))[0]
    best = np.full(len(others), np.inf)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            window = others[:, shift + dy : side - shift + dy, shift + dx : side - shift + dx]
            best = np.minimum(best, 1.0 - _unit(window.reshape(len(others), -1)) @ centre)
    return best


def _exact_pairs(hashes: list[bytes], queries: set[int]) -> Iterator[Pair]:
    groups: dict[bytes, list[int]] = {}
    for i, digest in enumerate(hashes):
        groups.setdefault(digest, []).append(i)
    for members in groups.values():
        for k, a in enumerate(members):
            for b in members[k + 1 :]:
                if a in queries or b in queries:
                    yield Pair(int(a), int(b), "exact", 0.0)


def _candidates(coarse: np.ndarray, chunk: np.ndarray) -> np.ndarray:
    """The CANDIDATES nearest other images of each image of `chunk`, by coarse signature."""
    count = min(CANDIDATES, coarse.shape[0] - 1)
    if count <= 0:
        return np.zeros((len(chunk), 0), dtype=np.int64)
    dissimilarity = np.negative(coarse[chunk] @ coarse.T, dtype=np.float32)
    dissimilarity[np.arange(len(chunk)), chunk] = np.inf  # not itself
    return np.argpartition(dissimilarity, count - 1, axis=1)[:, :count]


def _digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(image.tobytes(), digest_size=16).digest()


def _blocks(parts: list) -> Iterator[tuple[int, np.ndarray]]:
    """(the first image's position among all the parts' images, up to CHUNK images)."""
    done = 0
    for images in parts:
        for start in range(0, len(images), CHUNK):
            block = np.asarray(images[start : start + CHUNK])
            yield done, block
            done += len(block)


def _grey(block: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, 1, H, W) float32 channel means, a channel converted at a
    time (the whole block in float32 is 154 MB at 224 px); summed in channel order and
    divided once, as numpy's mean over the channel axis does, to the same bits."""
    total = block[:, :1].astype(np.float32)
    for channel in range(1, block.shape[1]):
        total += block[:, channel : channel + 1]
    return total / np.float32(block.shape[1])


def _resized(grey: np.ndarray, side: int) -> np.ndarray:
    """(N, 1, H, W) -> (N, side, side): area averages when shrinking, bilinear when growing
    (torch's interpolate "area" / "bilinear", in numpy: the audit runs in the driver, which
    imports no torch)."""
    rows, columns = _resize_weights(grey.shape[2], side), _resize_weights(grey.shape[3], side)
    return np.matmul(np.matmul(rows, grey[:, 0]), columns.T).astype(np.float32)


def _resize_weights(size: int, side: int) -> np.ndarray:
    """(side, size) weights taking `size` values to `side`: each output the mean of the inputs
    its window covers (adaptive average pooling) when shrinking; when growing, bilinear with
    half-pixel centres (align_corners=False), sources before the first pixel clamped to it."""
    weights = np.zeros((side, size), dtype=np.float32)
    if size >= side:
        for i in range(side):
            start, stop = (i * size) // side, -((-(i + 1) * size) // side)
            weights[i, start:stop] = 1.0 / (stop - start)
        return weights
    source = np.maximum((np.arange(side) + 0.5) * (size / side) - 0.5, 0.0)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    share = (source - low).astype(np.float32)
    np.add.at(weights, (np.arange(side), low), 1.0 - share)
    np.add.at(weights, (np.arange(side), high), share)
    return weights


def _blurred(images: np.ndarray) -> np.ndarray:
    """3x3 box blur of (N, side, side), edges repeated."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="edge")
    side = images.shape[1]
    total = sum(padded[:, i : i + side, j : j + side] for i in range(3) for j in range(3))
    return (total / 9.0).astype(np.float32)


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = rows - rows.mean(axis=1, keepdims=True)
    return (rows / (np.linalg.norm(rows, axis=1, keepdims=True) + 1e-6)).astype(np.float32)
