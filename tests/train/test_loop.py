"""The pure-PyTorch loop on tiny real data (digits)."""

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from bench.config import DatasetConfig
from bench.data.loaders import load_digits
from bench.data.splits import fold_indices, holdout_split
from bench.metrics import get_metric
from bench.models.small import MLP
from bench.registry.models import BuiltModel, FineTuning
from bench.seeds import FOLD
from bench.train.folds import start_run
from bench.train.inputs import IndexedImages, InputAdapter, make_loader
from bench.train.loop import (
    DivergedError,
    cross_validate,
    fit_and_predict,
    train_one_epoch,
)
from bench.train.optim import make_loss, make_optimizer, make_schedule
from bench.train.settings import TrainSettings


@pytest.fixture(scope="module")
def digits():
    loaded = load_digits(DatasetConfig(name="digits"))
    return loaded.x[:600], loaded.y[:600]


ADAPT = InputAdapter(1, 8, (0.3,), (0.35,))


def f1(y, proba):
    return get_metric("f1_macro").fn(y, proba, proba.argmax(1), 10)


def build():
    return BuiltModel(MLP(64, 10, hidden_dim=64, depth=1, dropout=0.0, shrink=1.0))


def test_cross_validation_learns_and_keeps_folds_apart(digits):
    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    scores = []
    outcomes = cross_validate(
        build,
        x,
        y,
        folds,
        TrainSettings(epochs=5, batch_size=32, lr=3e-3),
        ADAPT,
        f1,
        on_epoch=lambda e, s, snapshot: scores.append((e, s)),
    )
    assert [e for e, _ in scores] == [1, 2, 3, 4, 5]
    # each epoch reports the mean over folds of every fold's best score so far (a running best:
    # what early stopping keeps), recomputed here from the folds' own histories
    for epoch, reported in scores:
        bests = [max(h.val_score for h in o.history[:epoch]) for o in outcomes]
        assert reported == pytest.approx(np.mean(bests), abs=1e-12)
    assert [s for _, s in scores] == sorted(s for _, s in scores)
    for outcome, (_, val) in zip(outcomes, folds, strict=True):
        assert np.array_equal(outcome.val_index, val)
        assert outcome.val_proba.shape == (len(val), 10)
        assert np.allclose(outcome.val_proba.sum(1), 1, atol=1e-5)
        assert f1(y[val], outcome.val_proba) > 0.8
        assert len(outcome.history) == outcome.epochs_run == 5
        assert 1 <= outcome.best_epoch <= 5


def test_restores_best_epoch_weights(digits):
    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    outcomes = cross_validate(
        build, x, y, folds, TrainSettings(epochs=4, batch_size=32, lr=3e-3), ADAPT, f1
    )
    for outcome in outcomes:
        best = max(h.val_score for h in outcome.history)
        restored = f1(y[outcome.val_index], outcome.val_proba)
        assert restored == pytest.approx(best)


def test_patience_stops_a_fold_early(digits):
    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    constant = lambda y_true, proba: 0.5  # never improves after epoch 1  # noqa: E731
    outcomes = cross_validate(
        build, x, y, folds, TrainSettings(epochs=10, batch_size=64, patience=2), ADAPT, constant
    )
    assert all(o.epochs_run == 3 and o.best_epoch == 1 for o in outcomes)


def assert_same_predictions_twice(digits, settings):
    """Two cross-validations with the same settings predict exactly alike."""
    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    a = cross_validate(build, x, y, folds, settings, ADAPT, f1)
    b = cross_validate(build, x, y, folds, settings, ADAPT, f1)
    assert all(np.array_equal(p.val_proba, q.val_proba) for p, q in zip(a, b, strict=True))


def test_same_seed_same_result(digits):
    assert_same_predictions_twice(digits, TrainSettings(epochs=2, batch_size=32, seed=3))


def test_divergence_raises_a_clear_error(digits):
    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    with pytest.raises(DivergedError, match="lower the learning rate"):
        cross_validate(
            build,
            x,
            y,
            folds,
            TrainSettings(epochs=2, batch_size=32, lr=1e30, optimizer="sgd"),
            ADAPT,
            f1,
        )


def test_refit_trains_on_everything_and_predicts_test(digits):
    x, y = digits
    train, test = holdout_split(y, 0.2, seed=0)
    outcome = fit_and_predict(
        build, x[train], y[train], x[test], TrainSettings(epochs=10, batch_size=32, lr=3e-3), ADAPT
    )
    assert outcome.test_proba.shape == (120, 10) and outcome.epochs == 10
    assert len(outcome.history) == 10
    assert f1(y[test], outcome.test_proba) > 0.8


def test_loader_yields_whole_batches_from_the_index():
    images = np.arange(10 * 4, dtype=np.uint8).reshape(10, 1, 2, 2)
    labels = np.arange(10)
    data = IndexedImages(images, labels, np.array([7, 3, 5]))
    batch_x, batch_y = next(iter(make_loader(data, batch_size=3, shuffle=False, seed=0)))
    assert batch_y.tolist() == [7, 3, 5]
    assert torch.equal(batch_x, torch.from_numpy(images[[7, 3, 5]]))


def test_input_adapter_repeats_channels_and_resizes():
    adapt = InputAdapter(3, 32, (0.5,), (0.5,))
    out = adapt(torch.full((2, 1, 8, 8), 255, dtype=torch.uint8))
    assert out.shape == (2, 3, 32, 32)
    assert torch.allclose(out, torch.ones_like(out))


def test_input_adapter_pads_or_resizes_then_crops():
    white = torch.full((1, 1, 4, 4), 255, dtype=torch.uint8)
    padded = InputAdapter(1, 8, (0.0,), (1.0,), fit="pad")(white)
    assert padded.shape == (1, 1, 8, 8)
    assert padded[0, 0, 2:6, 2:6].eq(1).all() and padded.sum() == 16  # centred, black border
    # Pretrained preprocessing: resize to 10, centre-crop 8 (torchvision's Resize+CenterCrop).
    ramp = torch.arange(4, dtype=torch.uint8).repeat(1, 1, 4, 1) * 60
    cropped = InputAdapter(1, 8, (0.0,), (1.0,), resize=10)(ramp)
    resized = torch.nn.functional.interpolate(
        ramp.float() / 255, size=(10, 10), mode="bilinear", align_corners=False
    )
    assert torch.allclose(cropped, resized[..., 1:9, 1:9])


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last_train_on_cpu(precision):
    # On CUDA these are the defaults; CPU autocast runs the same code path.
    from bench.models.small import SimpleCNN
    from bench.train.acceleration import accelerate

    torch.manual_seed(0)
    model = SimpleCNN(1, 8, 10, width=8, hidden_dim=16, dropout=0.0)
    settings = TrainSettings(
        epochs=1, batch_size=16, lr=1e-2, precision=precision, channels_last="on", grad_clip=1.0
    )
    accel = accelerate(model, settings, torch.device("cpu"))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert (accel.scaler is not None) == (precision == "fp16")
    dtypes = []
    model[0].register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    before = model[0].weight.detach().clone()
    loader = [(torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8), torch.arange(16) % 10)]
    loss, _ = train_one_epoch(
        model,
        loader,
        make_optimizer(model, settings, FineTuning()),
        torch.nn.CrossEntropyLoss(),
        ADAPT,
        torch.device("cpu"),
        grad_clip=1.0,
        accel=accel,
    )
    assert np.isfinite(loss) and not torch.equal(model[0].weight, before)
    assert dtypes == [torch.bfloat16 if precision == "bf16" else torch.float16]
    assert model[0].weight.dtype == torch.float32  # master weights stay float32


def test_auto_precision_is_float32_on_cpu():
    from bench.train.acceleration import accelerate

    accel = accelerate(build().module, TrainSettings(epochs=1, batch_size=1), torch.device("cpu"))
    assert accel.dtype is None and not accel.channels_last and accel.scaler is None


def test_a_snapshot_resumes_exactly_as_if_training_had_not_stopped(digits, tmp_path):
    """Dropout (torch's global generator), shuffling and augmentation (each fold's own) all
    continue from the snapshot: the resumed folds equal the uninterrupted ones bit for bit."""
    from bench.train.settings import AugmentSettings

    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    settings = TrainSettings(
        epochs=4,
        batch_size=32,
        lr=1e-2,
        schedule="cosine",
        warmup_epochs=1,
        seed=3,
        augment=AugmentSettings(hflip=0.5, mixup=0.2),
    )

    def dropout_mlp():
        return BuiltModel(MLP(64, 10, hidden_dim=64, depth=1, dropout=0.3, shrink=1.0))

    snapshots = {}
    whole = cross_validate(
        dropout_mlp,
        x,
        y,
        folds,
        settings,
        ADAPT,
        f1,
        on_epoch=lambda e, s, snapshot: snapshots.setdefault(e, snapshot()),
    )
    path = tmp_path / "state.pt"
    torch.save(snapshots[2], path)
    restored = torch.load(path, weights_only=True)  # tensors, numbers and strings only
    torch.manual_seed(12345)  # whatever the process did in between must not matter
    np.random.seed(54321)
    resumed = cross_validate(dropout_mlp, x, y, folds, settings, ADAPT, f1, resume_from=restored)
    for before, after in zip(whole, resumed, strict=True):
        assert [h.epoch for h in after.history] == [1, 2, 3, 4]
        assert [h.train_loss for h in after.history] == [h.train_loss for h in before.history]
        assert [h.val_score for h in after.history] == [h.val_score for h in before.history]
        assert after.best_epoch == before.best_epoch
        assert np.array_equal(after.val_proba, before.val_proba)


def test_a_finished_fold_keeps_one_copy_of_its_best_weights(digits, tmp_path):
    """A fold that stops (patience, or its last epoch) lets its gradients and optimizer state
    go and holds its best weights as its model, while the others train on: every snapshot
    shows it, and resuming from the last one predicts exactly what the run predicted."""
    x, y = digits
    folds = fold_indices(y, 3, seed=0)
    settings = TrainSettings(epochs=4, batch_size=32, lr=5e-2, patience=1, seed=1)
    snapshots = {}
    whole = cross_validate(
        build,
        x,
        y,
        folds,
        settings,
        ADAPT,
        f1,
        on_epoch=lambda e, s, snapshot: snapshots.setdefault(e, snapshot()),
    )
    for epoch, snapshot in snapshots.items():
        for state in snapshot["folds"]:
            assert (state["optimizer"]["state"] == {}) == state["stopped"], epoch
            if state["stopped"]:
                assert state["best_state"] is None
    assert not snapshots[1]["folds"][0]["stopped"]  # a fold trains on with its state
    last = snapshots[max(snapshots)]
    assert all(state["stopped"] for state in last["folds"])
    path = tmp_path / "state.pt"
    torch.save(last, path)
    resumed = cross_validate(
        build, x, y, folds, settings, ADAPT, f1, resume_from=torch.load(path, weights_only=True)
    )
    for before, after in zip(whole, resumed, strict=True):
        assert after.best_epoch == before.best_epoch
        assert np.array_equal(after.val_proba, before.val_proba)


def _same_state(a, b) -> bool:
    """Snapshots (nested dicts and lists of tensors and numbers) equal to the bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def _without_times(snapshot):
    """A snapshot less its wall-clock figures, which differ between any two runs."""
    folds = []
    for state in snapshot["folds"]:
        state = {k: v for k, v in state.items() if k not in ("train_seconds", "eval_seconds")}
        folds.append({**state, "history": [h[:5] for h in state["history"]]})
    return {**snapshot, "folds": folds}


def _dropout_mlp():
    return BuiltModel(MLP(64, 10, hidden_dim=64, depth=2, dropout=0.3, shrink=0.5))


def test_folds_resting_on_disk_train_to_the_same_bits(digits, tmp_path):
    """With a parking folder every fold waits there between its epochs (only the one
    training is in memory), and nothing differs: each epoch's snapshot, the predictions, a
    resume from a snapshot. The folder is empty once cross-validation ends."""
    x, y = digits
    folds = fold_indices(y, 3, seed=0)
    settings = TrainSettings(epochs=4, batch_size=32, lr=5e-2, patience=1, seed=3)
    parking = tmp_path / "parked"
    parking.mkdir()

    def run(snapshots, **options):
        def on_epoch(epoch, score, snapshot):
            if "parking" in options:  # every fold rests while none trains
                assert sorted(p.name for p in parking.iterdir()) == [
                    f"fold-{k}.pt" for k in range(3)
                ]
            snapshots[epoch] = snapshot()

        return cross_validate(
            _dropout_mlp, x, y, folds, settings, ADAPT, f1, on_epoch=on_epoch, **options
        )

    resident, rested = {}, {}
    whole = run(resident)
    parked = run(rested, parking=parking)
    assert list(parking.iterdir()) == []
    assert rested.keys() == resident.keys()
    for epoch in resident:
        assert _same_state(_without_times(rested[epoch]), _without_times(resident[epoch]))
    for before, after in zip(whole, parked, strict=True):
        assert after.best_epoch == before.best_epoch
        assert np.array_equal(after.val_proba, before.val_proba)
        assert [h.val_loss for h in after.history] == [h.val_loss for h in before.history]
    resumed = cross_validate(
        _dropout_mlp, x, y, folds, settings, ADAPT, f1, resume_from=rested[1], parking=parking
    )
    for before, after in zip(whole, resumed, strict=True):
        assert np.array_equal(after.val_proba, before.val_proba)
    assert list(parking.iterdir()) == []


def test_a_failure_leaves_no_parked_folds(digits, tmp_path):
    x, y = digits
    settings = TrainSettings(epochs=3, batch_size=32, lr=5e-2, seed=3)

    def failing_score(y_true, proba):
        raise RuntimeError("the score failed")

    with pytest.raises(RuntimeError, match="the score failed"):
        cross_validate(
            build,
            x,
            y,
            fold_indices(y, 3, seed=0),
            settings,
            ADAPT,
            failing_score,
            parking=tmp_path,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_resting_fold_holds_no_tensors_and_wakes_to_the_same_bits(digits, tmp_path):
    """Batch norm buffers, channels_last weights and SGD's momentum buffers: while the fold
    rests every one of its tensors is empty, and each comes back into the same object with
    the same values and strides (the optimizer still steps the model's own parameters)."""
    x, y = digits
    settings = TrainSettings(
        epochs=2, batch_size=32, lr=5e-2, optimizer="sgd", momentum=0.9, channels_last="on"
    )

    def conv_net():
        layers = [nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()]
        layers += [nn.Conv2d(4, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 10)]
        return BuiltModel(nn.Sequential(*layers))

    index = np.arange(len(y))
    run = start_run(
        0,
        (FOLD, 0),
        conv_net,
        x,
        y,
        index[:400],
        index[400:],
        settings,
        torch.device("cpu"),
        lambda m: m,
        lambda d: d,
    )
    device = torch.device("cpu")
    train_one_epoch(
        run.model, run.loader, run.optimizer, run.loss_fn, ADAPT, device, accel=run.accel
    )

    def fold_tensors():
        state = [v for s in run.optimizer.state.values() for v in s.values()]
        return [*run.model.parameters(), *run.model.buffers(), *state]

    tensors = fold_tensors()
    before = [(t.clone(), t.stride()) for t in tensors]
    assert any(t.stride() != t.contiguous().stride() for t in tensors)  # channels_last
    run.parking = tmp_path
    run.rest()
    assert all(t.numel() == 0 for t in tensors) and (tmp_path / "fold-0.pt").exists()
    run.wake()
    assert not (tmp_path / "fold-0.pt").exists()
    for tensor, (value, stride) in zip(fold_tensors(), before, strict=True):
        assert torch.equal(tensor, value) and tensor.stride() == stride
    stepped = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
    assert stepped == {id(p) for p in run.model.parameters()}


def test_a_fold_that_cannot_rest_stays_in_memory(digits, tmp_path):
    """A parking folder that refuses the file (here: it does not exist) leaves the folds in
    memory, with the same results."""
    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    settings = TrainSettings(epochs=2, batch_size=32, lr=5e-2, seed=3)
    whole = cross_validate(build, x, y, folds, settings, ADAPT, f1)
    refused = cross_validate(build, x, y, folds, settings, ADAPT, f1, parking=tmp_path / "missing")
    for before, after in zip(whole, refused, strict=True):
        assert np.array_equal(after.val_proba, before.val_proba)


def test_each_fold_is_normalized_with_its_own_training_part(digits):
    """A fold's adapter is used for that fold only: an absurd adapter on fold 1 ruins fold 1's
    predictions and leaves fold 0's exactly as they were."""
    x, y = digits
    folds = fold_indices(y, 2, seed=0)
    settings = TrainSettings(epochs=1, batch_size=32, lr=1e-2)
    same = cross_validate(build, x, y, folds, settings, [ADAPT, ADAPT], f1)
    absurd = InputAdapter(1, 8, (200.0,), (0.001,))
    mixed = cross_validate(build, x, y, folds, settings, [ADAPT, absurd], f1)
    assert np.array_equal(same[0].val_proba, mixed[0].val_proba)
    assert not np.allclose(same[1].val_proba, mixed[1].val_proba)


def lrs(settings, steps_per_epoch=10):
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, settings, FineTuning())
    schedule = make_schedule(optimizer, settings, steps_per_epoch)
    out = []
    for _ in range(settings.epochs * steps_per_epoch):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


def test_schedules_and_warmup():
    base = dict(epochs=3, batch_size=8, lr=0.1)
    assert set(lrs(TrainSettings(**base))) == {0.1}
    cosine = lrs(TrainSettings(**base, schedule="cosine", warmup_epochs=1))
    assert cosine[0] == pytest.approx(0.01)  # warmup starts at lr/10
    assert cosine[10] == pytest.approx(0.1)  # warmup over: the full lr
    assert cosine[-1] < 0.002 and cosine == sorted(cosine[:11]) + cosine[11:]
    step = lrs(TrainSettings(**base, schedule="step"))
    assert step[0] == pytest.approx(0.1) and step[15] == pytest.approx(0.01)
    assert step[-1] == pytest.approx(0.001)
    onecycle = lrs(TrainSettings(**base, schedule="onecycle"))
    assert max(onecycle) == pytest.approx(0.1, rel=1e-3) and onecycle[0] < 0.01


def test_sgd_nesterov_and_gradient_clipping():
    model = torch.nn.Linear(4, 3)
    settings = TrainSettings(
        epochs=1,
        batch_size=4,
        lr=1.0,
        optimizer="sgd",
        momentum=0.0,
        nesterov=False,
        grad_clip=1e-3,
    )
    nesterov = make_optimizer(
        model, TrainSettings(epochs=1, batch_size=4, optimizer="sgd", nesterov=True), FineTuning()
    )
    assert nesterov.param_groups[0]["nesterov"] is True
    before = [p.detach().clone() for p in model.parameters()]
    images = torch.randint(0, 256, (4, 1, 2, 2), dtype=torch.uint8)
    loader = [(images, torch.tensor([0, 1, 2, 0]))]
    adapt = InputAdapter(1, 2, (0.5,), (0.25,))
    train_one_epoch(
        torch.nn.Sequential(torch.nn.Flatten(), model),
        loader,
        make_optimizer(model, settings, FineTuning()),
        torch.nn.CrossEntropyLoss(),
        adapt,
        torch.device("cpu"),
        grad_clip=settings.grad_clip,
    )
    change = torch.sqrt(
        sum(((p - b) ** 2).sum() for p, b in zip(model.parameters(), before, strict=True))
    )
    assert 0 < change <= 1e-3 + 1e-7  # lr 1 x clipped norm


def test_balanced_class_weights():
    labels = np.array([0, 0, 0, 1])
    loss = make_loss(
        TrainSettings(epochs=1, batch_size=1, class_weight="balanced"), labels, 2, "cpu"
    )
    assert loss.weight.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])
    assert make_loss(TrainSettings(epochs=1, batch_size=1), labels, 2, "cpu").weight is None


def test_the_refit_runs_its_schedule_over_its_own_epochs(digits, monkeypatch):
    """results/README.md's rule: the refit's learning-rate schedule spans its E epochs (here a
    cosine ending at 0 on its last step), and warmup counts epochs, as in the trials."""
    import bench.train.folds as folds

    seen = []
    make = folds.make_schedule

    def recording(optimizer, settings, steps_per_epoch):
        schedule = make(optimizer, settings, steps_per_epoch)
        step = schedule.step

        def stepped(*args, **kwargs):
            seen.append((optimizer.param_groups[0]["lr"], steps_per_epoch))
            step(*args, **kwargs)

        schedule.step = stepped
        return schedule

    monkeypatch.setattr(folds, "make_schedule", recording)
    x, y = digits
    settings = TrainSettings(epochs=3, batch_size=100, lr=0.1, schedule="cosine", warmup_epochs=1)
    fit_and_predict(build, x, y, x[:10], settings, ADAPT)
    steps = seen[0][1]
    assert steps == 6 and len(seen) == 3 * steps  # 600 images / 100: the whole pool per epoch
    lrs = [lr for lr, _ in seen]
    assert lrs[0] == pytest.approx(0.01)  # warmup starts at lr/10 ...
    assert lrs[steps] == pytest.approx(0.1)  # ... and lasts exactly warmup_epochs (1) epoch
    assert lrs[-1] < 0.01 and lrs == sorted(lrs[:steps]) + lrs[steps:]  # cosine to the end


def test_deterministic_kernels_switch_on_and_back_off(digits, monkeypatch):
    """resources.deterministic: deterministic kernels and a fixed cuBLAS workspace while on;
    a reused trial actor's next pairing, without it, gets the default kernels back."""
    from bench.train.task import use_deterministic_kernels

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        use_deterministic_kernels(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert_same_predictions_twice(digits, TrainSettings(epochs=1, batch_size=64, seed=1))
    finally:
        use_deterministic_kernels(False)
    assert not torch.are_deterministic_algorithms_enabled()
