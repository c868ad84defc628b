"""Derived seeds: one stream per (seed, repeat, fold, purpose), none colliding."""

import itertools

from bench.seeds import FOLD, LOADER, REFIT, derive_seed, split_seed, training_seed


def test_streams_of_different_seeds_folds_and_purposes_never_collide():
    # seed + fold collided (seed 0's fold 1 was seed 1's fold 0); hashing the whole key does not
    offsets = [(FOLD, k) for k in range(5)] + [(REFIT,)]
    keys = [
        (seed, *offset, *purpose)
        for seed in range(4)
        for offset in offsets
        for purpose in ((), (LOADER,))
    ]
    seeds = [derive_seed(*key) for key in keys]
    assert len(set(seeds)) == len(keys)
    assert derive_seed(1, 0) != derive_seed(1)  # NumPy alone drops a trailing zero
    assert all(0 <= s < 2**31 for s in seeds)


def test_repeats_get_their_own_splits_and_training_seeds_reproducibly():
    splits = [split_seed(0, r) for r in range(5)]
    training = [training_seed(0, r) for r in range(5)]
    assert len(set(splits + training)) == 10
    assert splits == [split_seed(0, r) for r in range(5)]
    assert all(a != b for a, b in itertools.combinations([split_seed(s, 0) for s in range(5)], 2))
