"""The registry contract: every registered model trains one step on every dataset shape."""

import pytest
import torch

from bench.registry import MODELS
from bench.registry.models import create_model
from bench.train.loop import InputAdapter

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
    model = create_model(name, classes, model_channels, model_side)
    adapt = InputAdapter(model_channels, model_side, (0.5,) * channels, (0.25,) * channels)
    images = torch.randint(0, 256, (2, channels, side, side), dtype=torch.uint8)
    logits = model(adapt(images))
    assert logits.shape == (2, classes)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_models_listed_by_pattern():
    assert MODELS.names("resnet*") == ["resnet101", "resnet18", "resnet34", "resnet50"]
    assert {"mlp", "simple_cnn", "vgg16", "vgg16_bn", "efficientnet_b0", "mobilenet_v2"} <= set(
        MODELS
    )


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(ValueError, match="no hyperparameter"):
        create_model("mlp", 10, 1, 8, width=3)
