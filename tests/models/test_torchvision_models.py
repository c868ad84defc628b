"""Pretrained weights, fine-tuning strategies and heads of the torchvision backbones."""

import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from bench.config import DatasetConfig
from bench.errors import DataError
from bench.models.torchvision_models import imagenet_weights
from bench.registry import load_dataset
from bench.registry.models import FineTuning, create_model
from bench.train.inputs import InputAdapter
from bench.train.loop import train_one_epoch
from bench.train.optim import make_optimizer
from bench.train.settings import TrainSettings
from bench.train.task import input_adapter


def build(arch, classes, **hparams):
    """The module and its fine-tuning description, from the one factory."""
    return create_model(arch, classes, 3, 32, **hparams)


def one_step(built, settings):
    model, tuning = built
    loader = [
        (torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), torch.tensor([0, 1, 2, 0]))
    ]
    adapt = InputAdapter(3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    train_one_epoch(
        model,
        loader,
        make_optimizer(model, settings, tuning),
        torch.nn.CrossEntropyLoss(),
        adapt,
        torch.device("cpu"),
    )


def test_head_only_keeps_the_backbone_bit_identical():
    torch.manual_seed(0)
    built = build("resnet18", 3, strategy="head_only")
    model = built.module
    assert built.tuning == FineTuning(head="fc")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    one_step(built, TrainSettings(epochs=1, batch_size=4, lr=0.1))
    for name, parameter in model.named_parameters():
        if name.startswith("fc."):
            assert parameter.requires_grad and not torch.equal(parameter, before[name]), name
        else:
            assert not parameter.requires_grad and torch.equal(parameter, before[name]), name


def test_backbone_unfreezes_after_n_epochs_and_frozen_norms_hold_still():
    from bench.train.optim import unfreeze_if_due

    torch.manual_seed(0)
    model, tuning = build("resnet18", 3, strategy="head_only", unfreeze_after=1)
    assert tuning.unfreeze_after == 1
    settings = TrainSettings(epochs=2, batch_size=4, lr=0.1, optimizer="sgd")
    optimizer = make_optimizer(model, settings, tuning)
    # the backbone is in the optimizer from the start, at the backbone's rate
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = [
        (torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), torch.tensor([0, 1, 2, 0]))
    ]
    adapt = InputAdapter(3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    loss_fn, cpu = torch.nn.CrossEntropyLoss(), torch.device("cpu")
    for epoch in (1, 2):
        model = unfreeze_if_due(model, epoch, tuning, lambda m: m)
        train_one_epoch(model, loader, optimizer, loss_fn, adapt, cpu)
        state = model.state_dict()
        if epoch == 1:  # frozen: weights and batch-norm statistics bit-identical
            backbone = [k for k in state if not k.startswith("fc.")]
            assert all(torch.equal(state[k], before[k]) for k in backbone)
            assert not torch.equal(state["fc.weight"], before["fc.weight"])
    assert all(p.requires_grad for p in model.parameters())
    assert not torch.equal(model.conv1.weight, before["conv1.weight"])
    assert not torch.equal(model.bn1.running_mean, before["bn1.running_mean"])


def test_full_fine_tuning_changes_everything():
    torch.manual_seed(0)
    built = build("resnet18", 3, strategy="full")
    model = built.module
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    one_step(built, TrainSettings(epochs=1, batch_size=4, lr=0.1, optimizer="sgd"))
    assert not torch.equal(model.conv1.weight, before["conv1.weight"])


def test_hidden_head_and_backbone_learning_rate():
    model, tuning = build(
        "mobilenet_v2", 6, head_hidden=32, head_dropout=0.2, backbone_lr_scale=0.1
    )
    assert tuning.backbone_lr_scale == 0.1 and tuning.unfreeze_after == 0  # not head_only
    head = model.get_submodule(tuning.head)
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    assert head[3].p == 0.2 and head[-1].out_features == 6
    optimizer = make_optimizer(model, TrainSettings(epochs=1, batch_size=2, lr=1e-2), tuning)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 1e-2])
    # the head is registered once: no duplicate parameters
    assert len(list(model.parameters())) == len({id(p) for p in model.parameters()})


def test_local_state_dict_loads_weights_only(tmp_path):
    torch.manual_seed(1)
    source = build("resnet18", 10).module  # e.g. a model fine-tuned elsewhere
    path = tmp_path / "mine.pt"
    torch.save(source.state_dict(), path)
    model, tuning = build("resnet18", 4, weights=str(path))
    assert tuning.preprocessing is not None and tuning.preprocessing.crop == 224
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert model.fc.out_features == 4  # the old 10-class head was dropped, a new one sized
    with pytest.raises(DataError, match="not found"):
        build("resnet18", 4, weights=str(tmp_path / "missing.pt"))


def test_weights_of_another_architecture_or_no_weights_at_all_are_refused(tmp_path):
    """resnet34's weights once loaded into resnet18 as the few tensors that happened to fit,
    the rest left random, without a word; a file that is not a state_dict was a traceback."""
    other = tmp_path / "resnet34.pt"
    torch.save(build("resnet34", 10).module.state_dict(), other)
    with pytest.raises(DataError, match=r"model 'mobilenet_v2': weights .*resnet34.pt: \d+ of"):
        build("mobilenet_v2", 4, weights=str(other))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(other.read_bytes()[:1000])  # a download cut short
    with pytest.raises(DataError, match="cannot be read as tensors"):
        build("resnet18", 4, weights=str(broken))
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    with pytest.raises(DataError, match="holds no state_dict"):
        build("resnet18", 4, weights=str(listed))


def test_imagenet_weights_come_from_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    enum = imagenet_weights("resnet18")
    cached = tmp_path / "hub" / "checkpoints" / os.path.basename(urlparse(enum.url).path)
    cached.parent.mkdir(parents=True)
    torch.manual_seed(2)
    reference = build("resnet18", 1000).module
    state = {k: v for k, v in reference.state_dict().items()}
    torch.save(state, cached)  # the file a download would have written
    model = build("resnet18", 5, weights="imagenet").module
    assert torch.equal(model.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    assert model.fc.out_features == 5


def test_missing_imagenet_weights_offline_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(DataError) as info:
        build("resnet18", 5, weights="imagenet")
    message = str(info.value)
    assert "resnet18-" in message and str(Path(tmp_path) / "hub" / "checkpoints") in message


def test_pretrained_weights_bring_their_preprocessing():
    from bench.registry.models import MODELS  # noqa: F401

    data = load_dataset(DatasetConfig(name="digits"), folds=2, test_fraction=0.2, seed=0)
    scratch = input_adapter("resnet18", data, {})
    pretrained = input_adapter("resnet18", data, {"weights": "imagenet"})
    assert scratch.size == 32 and scratch.mean == data.mean
    transforms = imagenet_weights("resnet18").transforms()
    assert pretrained.size == transforms.crop_size[0] == 224
    assert pretrained.resize == transforms.resize_size[0] == 256
    assert pretrained.mean == tuple(transforms.mean)
    out = pretrained(torch.from_numpy(np.ascontiguousarray(data.train_x[:2])))
    assert out.shape == (2, 3, 224, 224)
