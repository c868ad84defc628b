"""The registry contract: every registered model trains one step on every dataset shape, and
comes with a fine-tuning description the training loop can use."""

import pytest
import torch

from bench.registry import MODELS
from bench.registry.models import BuiltModel, FineTuning, create_model, model_preprocessing
from bench.train.inputs import InputAdapter
from bench.train.optim import make_optimizer
from bench.train.settings import TrainSettings

# (channels, side, classes) of digits, MNIST, CIFAR-10 and a small RGB ImageFolder.
DATASET_SHAPES = {
    "digits": (1, 8, 10),
    "mnist": (1, 28, 10),
    "cifar10": (3, 32, 10),
    "imagefolder": (3, 24, 3),
}


@pytest.mark.parametrize("shape", DATASET_SHAPES.values(), ids=DATASET_SHAPES.keys())
@pytest.mark.parametrize("name", MODELS.names())
def test_forward_backward_on_every_dataset_shape(name, shape):
    channels, side, classes = shape
    spec = MODELS.get(name)
    model_channels, model_side = spec.input_shape(channels, side)
    assert model_side >= spec.min_size
    torch.manual_seed(0)
    model, tuning = create_model(name, classes, model_channels, model_side)
    adapt = InputAdapter(model_channels, model_side, (0.5,) * channels, (0.25,) * channels)
    images = torch.randint(0, 256, (2, channels, side, side), dtype=torch.uint8)
    logits = model(adapt(images))
    assert logits.shape == (2, classes)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODELS.names())
def test_fine_tuning_description(name):
    """create_model returns the module with a FineTuning the loop can use: its head names a
    submodule, its preprocessing is what the registry reports before building, and a scaled
    backbone rate gives the head and the backbone their own parameter groups."""
    spec = MODELS.get(name)
    channels, side = spec.input_shape(3, 32)
    built = create_model(name, 5, channels, side)
    assert isinstance(built, BuiltModel) and isinstance(built.tuning, FineTuning)
    model, tuning = built
    assert tuning.preprocessing == model_preprocessing(name)
    assert tuning.unfreeze_after >= 0 and tuning.backbone_lr_scale > 0
    settings = TrainSettings(epochs=1, batch_size=2, lr=0.1)
    if tuning.head is None:
        assert len(make_optimizer(model, settings, tuning).param_groups) == 1
        return
    head = {id(p) for p in model.get_submodule(tuning.head).parameters()}
    assert head and head < {id(p) for p in model.parameters()}
    scaled = FineTuning(tuning.head, backbone_lr_scale=0.5)
    groups = make_optimizer(model, settings, scaled).param_groups
    assert [g["lr"] for g in groups] == [0.05, 0.1]
    assert {id(p) for p in groups[1]["params"]} == head


@pytest.mark.parametrize("name", MODELS.names())
def test_declared_hyperparameters_are_consistent(name):
    """Each declared default lies in its own range or choices, in its declared type."""
    for param in MODELS.get(name).hparams.values():
        assert param.name and param.doc
        assert param.typed(param.default) == param.default
        if param.bounds is not None:
            assert param.bounds[0] <= param.default <= param.bounds[1], param.name
        if param.choices is not None:
            assert param.default in param.choices, param.name


def test_models_listed_by_pattern():
    assert MODELS.names("resnet*") == ["resnet101", "resnet18", "resnet34", "resnet50"]
    assert {"mlp", "simple_cnn", "vgg16", "vgg16_bn", "efficientnet_b0", "mobilenet_v2"} <= set(
        MODELS
    )


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(ValueError, match="no hyperparameter"):
        create_model("mlp", 10, 1, 8, width=3)
