"""Augmentation of training batches: each transform does what it says, draws reproducibly,
and never touches validation or test images."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from bench.data.splits import fold_indices
from bench.registry.models import BuiltModel
from bench.train.augment import Augmenter
from bench.train.inputs import InputAdapter
from bench.train.loop import cross_validate, fit_and_predict
from bench.train.settings import AugmentSettings, TrainSettings

CPU = torch.device("cpu")


def images(n=16, side=16, channels=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, side, side, generator=generator)


def augment(seed=0, **settings):
    return Augmenter(AugmentSettings(**settings), seed, CPU)


def test_defaults_are_inactive_and_each_option_activates():
    assert not AugmentSettings().active
    for name, value in [("hflip", 0.5), ("crop_scale", 0.5), ("mixup", 0.2), ("erasing", 0.1)]:
        assert AugmentSettings(**{name: value}).active, name


def test_flip_with_probability_one_mirrors_every_image():
    x = images()
    assert torch.equal(augment(hflip=1.0).images(x), x.flip(-1))
    assert torch.equal(augment(hflip=0.0, brightness=0.0).images(x), x)


@pytest.mark.parametrize(
    "option",
    [
        {"rotation": 30.0},
        {"translate": 0.2},
        {"zoom": 0.3},
        {"crop_scale": 0.3},
        {"brightness": 0.5},
        {"contrast": 0.5},
    ],
)
def test_each_transform_changes_images_and_keeps_shape_and_range(option):
    x = images()
    out = augment(**option).images(x.clone())
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = (out - x).abs().flatten(1).amax(1) > 1e-3
    assert changed.float().mean() > 0.8  # nearly every image differs


def test_rotation_alone_is_a_pure_rotation():
    # Without zoom or crop, every image's matrix is orthogonal with determinant 1.
    theta = augment(rotation=90.0)._affine(64, CPU)
    linear = theta[:, :, :2]
    identity = torch.eye(2).expand(64, 2, 2)
    assert torch.allclose(linear @ linear.transpose(1, 2), identity, atol=1e-5)
    assert torch.allclose(torch.linalg.det(linear), torch.ones(64), atol=1e-5)


def test_crop_window_stays_inside_the_image():
    theta = augment(crop_scale=0.2)._affine(256, CPU)
    corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, -1, 1]])
    mapped = torch.einsum("nij,kj->nki", theta, corners)
    assert mapped.abs().max() <= 1.0 + 1e-5
    area = (theta[:, 0, 0] * theta[:, 1, 1]).abs()
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 1.0 + 1e-5


def test_erasing_zeroes_one_rectangle_per_chosen_image():
    x = images(n=32) + 1.0  # normalized images never exactly 0 here
    out = augment(erasing=1.0).erase(x)
    for image in out:
        zero = (image == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) and len(cols)
        box = zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # one solid rectangle
    assert torch.equal(augment(erasing=0.0).erase(x), x)


def test_mixup_blends_pairs_with_the_returned_weight():
    x, labels = images(), torch.arange(16)
    mixed, partners, share = augment(mixup=0.4).mix(x, labels)
    assert 0.0 <= share <= 1.0
    partner_rows = partners  # labels are row numbers, so partners name the mixed-in rows
    assert torch.allclose(mixed, share * x + (1 - share) * x[partner_rows], atol=1e-6)


def test_cutmix_pastes_a_box_and_weights_by_its_area():
    x, labels = images(side=32), torch.arange(16)
    for seed in range(5):
        mixed, partners, share = augment(seed=seed, cutmix=1.0).mix(x, labels)
        from_partner = (mixed == x[partners]) & (mixed != x)
        pasted = from_partner[0, 0].float().mean().item()
        assert share == pytest.approx(1.0 - pasted, abs=0.02)


def test_same_seed_same_augmentation():
    x = images()
    settings = {"hflip": 0.5, "rotation": 20.0, "contrast": 0.3, "erasing": 0.5}
    first = augment(seed=3, **settings)
    second = augment(seed=3, **settings)
    assert torch.equal(first.erase(first.images(x)), second.erase(second.images(x)))
    other = augment(seed=4, **settings)
    assert not torch.equal(first.images(x), other.images(x))


class Spy(nn.Module):
    """Records every batch it sees, with whether it was training."""

    def __init__(self, in_features, classes, seen):
        super().__init__()
        self.linear = nn.Linear(in_features, classes)
        self.seen = seen

    def forward(self, x):
        self.seen.append((self.training, x.detach().clone()))
        return self.linear(x.flatten(1))


def test_augmentation_reaches_training_batches_only():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 1, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    adapt = InputAdapter(1, 8, (0.5,), (0.25,))
    strong = AugmentSettings(
        hflip=0.5, rotation=30, crop_scale=0.5, brightness=0.5, erasing=0.5, mixup=0.4
    )
    settings = TrainSettings(epochs=2, batch_size=8, augment=strong)
    seen = []
    folds = fold_indices(y, 2, seed=0)
    cross_validate(
        lambda: BuiltModel(Spy(64, 4, seen)), x, y, folds, settings, adapt, lambda t, p: 0.0
    )
    clean = {k: adapt(torch.from_numpy(x[val])) for k, (_, val) in enumerate(folds)}
    evaluated = [batch for training, batch in seen if not training]
    trained = [batch for training, batch in seen if training]
    assert evaluated and trained
    for batch in evaluated:  # every validation pass saw exactly the clean images
        assert any(torch.equal(batch, c) for c in clean.values())
    every_clean_row = torch.cat([adapt(torch.from_numpy(x))])
    augmented_rows = torch.cat(trained)
    untouched = [(every_clean_row == row).all((1, 2, 3)).any() for row in augmented_rows]
    assert sum(bool(u) for u in untouched) < 0.2 * len(augmented_rows)

    seen.clear()
    train, test = np.arange(30), np.arange(30, 40)
    fit_and_predict(
        lambda: BuiltModel(Spy(64, 4, seen)), x[train], y[train], x[test], settings, adapt
    )
    tested = [batch for training, batch in seen if not training]
    assert len(tested) == 1 and torch.equal(tested[0], adapt(torch.from_numpy(x[test])))


def test_mixed_batches_are_scored_against_both_label_sets():
    # With mixup the loss is share * CE(labels) + (1 - share) * CE(partners): a model that
    # predicts uniformly scores log(classes) either way, so the mean loss is exactly that.
    class Uniform(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(4))

        def forward(self, x):
            return self.bias.expand(len(x), 4) * 0.0

    from bench.train.loop import train_one_epoch

    x = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)
    loader = [(x, torch.arange(16) % 4)]
    model = Uniform()
    loss, seen = train_one_epoch(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        InputAdapter(1, 8, (0.5,), (0.25,)),
        CPU,
        augment=augment(mixup=1.0),
    )
    assert seen == 16 and loss == pytest.approx(math.log(4), rel=1e-5)
