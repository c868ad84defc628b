import numpy as np
import pytest

from bench.config import DatasetConfig
from bench.data.splits import fold_indices, holdout_split
from bench.errors import ConfigError
from bench.registry import load_dataset

LABELS = np.repeat(np.arange(4), [10, 20, 30, 40])


def test_folds_are_stratified_disjoint_and_cover_everything():
    folds = fold_indices(LABELS, 5, seed=0)
    validation = np.concatenate([val for _, val in folds])
    assert sorted(validation.tolist()) == list(range(len(LABELS)))
    for train, val in folds:
        assert not set(train) & set(val)
        # each fold holds a fifth of every class
        assert np.bincount(LABELS[val]).tolist() == [2, 4, 6, 8]


def test_folds_are_deterministic_per_seed():
    a, b = fold_indices(LABELS, 3, seed=7), fold_indices(LABELS, 3, seed=7)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    c = fold_indices(LABELS, 3, seed=8)
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))


def test_more_folds_than_smallest_class_is_a_config_error():
    with pytest.raises(
        ConfigError, match="smallest class has 10 training samples; use folds <= 10"
    ):
        fold_indices(LABELS, 11, seed=0)


def test_holdout_is_stratified():
    train, test = holdout_split(LABELS, 0.2, seed=0)
    assert np.bincount(LABELS[test]).tolist() == [2, 4, 6, 8]
    assert len(set(train) | set(test)) == len(LABELS)


def test_load_dataset_holds_out_digits_test_split_and_attaches_folds():
    data = load_dataset(DatasetConfig(name="digits"), folds=3, test_fraction=0.2, seed=0)
    assert len(data.test_y) == 360 and len(data.train_y) == 1437 and not data.official_test
    assert len(data.folds) == 3
    assert not set(data.train_index) & set(data.test_index)
    assert len(data.mean) == 1 and 0 < data.mean[0] < 1


def test_repeats_draw_their_own_splits_and_the_fingerprint_names_them():
    """Each repeat its own stratified test split and folds; a fold's normalization comes from
    its training part only; another cv.seed (or test fraction, or repeat count) gives another
    fingerprint, the same settings the same one."""
    from bench.config import DatasetConfig
    from bench.data.images import channel_stats
    from bench.data.splits import fingerprint, split_rows
    from bench.registry import load_replicates

    def stamp(seed, repeats=2, fraction=0.2):
        data = load_replicates(DatasetConfig(name="digits"), 3, fraction, seed, repeats)
        rows = [row for d in data for row in split_rows("run", d)]
        return data, fingerprint(rows, data, fraction)

    data, first = stamp(0)
    assert [d.repeat for d in data] == [0, 1]
    assert not np.array_equal(data[0].test_index, data[1].test_index)
    for d in data:
        assert np.bincount(d.test_y).min() >= 35  # stratified: every class in every test split
        for (train, _), stats in zip(d.folds, d.fold_stats, strict=True):
            expected = channel_stats(d.train_x[train])
            np.testing.assert_allclose(stats, expected, rtol=1e-6)
        assert d.fold_stats[0] != (d.mean, d.std)
    assert stamp(0)[1] == first
    assert len({first, stamp(1)[1], stamp(0, repeats=3)[1], stamp(0, fraction=0.25)[1]}) == 4


@pytest.mark.parametrize("sizes", [[10, 10, 1], [2, 2, 2]])
def test_a_pool_with_no_stratified_test_split_is_refused_in_one_line(sizes):
    """scikit-learn's ValueError (a class of one image; fewer test images than classes) once
    ended a run in a traceback; it names the dataset and the fix now."""
    from bench.data.images import LoadedImages
    from bench.data.splits import prepare_dataset
    from bench.errors import DataError

    y = np.repeat(np.arange(len(sizes)), sizes)
    loaded = LoadedImages(["a", "b", "c"], np.zeros((len(y), 1, 4, 4), np.uint8), y)
    with pytest.raises(DataError, match="dataset 'tree': no stratified test split") as info:
        prepare_dataset("tree", loaded, 0.2, seed=0)
    assert "cv.test_fraction" in str(info.value) and "\n" not in str(info.value)
