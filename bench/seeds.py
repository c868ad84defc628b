"""Seeds derived from the definition's seeds: one stream per purpose, so no two ever collide.

A plain `seed + fold` scheme collides (seed 0's fold 1 is seed 1's fold 0); NumPy's
SeedSequence hashes the whole key instead, the way NumPy recommends spawning streams."""

from __future__ import annotations

import numpy as np

# What a derived seed is for (the last key), so streams of different purposes differ too.
SPLITS, TRAINING, FOLD, REFIT, LOADER, AUGMENT, BOOTSTRAP, PROPOSAL = range(8)


def derive_seed(*keys: int) -> int:
    """A seed in [0, 2**31) (fits every consumer: sklearn, torch, NumPy) from non-negative keys.
    The key count goes last: SeedSequence ignores trailing zeros, so (s, 0) would be (s,)."""
    entropy = [*(int(k) for k in keys), len(keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def split_seed(cv_seed: int, repeat: int) -> int:
    """Repeat r's test split and folds (the same for every model of the dataset)."""
    return derive_seed(cv_seed, repeat, SPLITS)


def training_seed(seed: int, repeat: int) -> int:
    """Repeat r's training seed: model initialization, shuffling, augmentation."""
    return derive_seed(seed, repeat, TRAINING)
