"""What a trial builds from its hyperparameters: the training loop's settings, the model and
the input adapter (no Ray import). Every name, type and default comes from the declarations
(bench/hparams.py for the loop, the model registry for each model)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bench.data.images import ImageData
from bench.hparams import TRAINING, TRAINING_PARAMS
from bench.plan import PairingPlan
from bench.registry.models import (
    MODELS,
    BuiltModel,
    Preprocessing,
    create_model,
    model_preprocessing,
)
from bench.train.inputs import InputAdapter
from bench.train.settings import TrainSettings, settings_from_params


def split_params(model: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training-loop params, model hyperparameters)."""
    model_keys = set(MODELS.get(model).hparams)
    training = {k: v for k, v in params.items() if k in TRAINING_PARAMS}
    hparams = {k: v for k, v in params.items() if k in model_keys}
    return training, hparams


def train_settings(
    plan: PairingPlan, params: Mapping[str, Any], epochs: int | None = None
) -> TrainSettings:
    training, _ = split_params(plan.model, params)
    batch_size = TRAINING["batch_size"].typed(training.get("batch_size"))
    return settings_from_params(
        training,
        epochs=epochs or plan.epochs,
        batch_size=int(batch_size or plan.batch_size),
        patience=plan.patience,
        seed=plan.seed,
        precision=plan.precision,
        channels_last=plan.channels_last,
        loader_workers=plan.loader_workers,
    )


def model_factory(
    plan: PairingPlan, data: ImageData, params: Mapping[str, Any]
) -> Callable[[], BuiltModel]:
    """A zero-argument builder of the pairing's model: the module and its FineTuning."""
    _, hparams = split_params(plan.model, params)
    channels, side = input_shape(plan.model, data, params)
    return lambda: create_model(plan.model, data.num_classes, channels, side, **hparams)


def _pretrained(model: str, params: Mapping[str, Any]) -> Preprocessing | None:
    _, hparams = split_params(model, params)
    return model_preprocessing(model, **hparams)


def input_shape(model: str, data: ImageData, params: Mapping[str, Any]) -> tuple[int, int]:
    """(channels, side) fed to the model: pretrained weights fix the side they were trained at."""
    channels, side = MODELS.get(model).input_shape(
        int(data.train_x.shape[1]), int(data.train_x.shape[2])
    )
    pretrained = _pretrained(model, params)
    return (channels, pretrained.crop) if pretrained else (channels, side)


def input_adapter(
    model: str,
    data: ImageData,
    params: Mapping[str, Any],
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> InputAdapter:
    """The pretrained weights' resize, crop and mean/std, or the dataset's own normalization:
    `stats` (mean, std) of the images the model trains on, by default the whole CV pool's."""
    channels, side = input_shape(model, data, params)
    fit = str(params.get("input_fit", TRAINING["input_fit"].default))
    pretrained = _pretrained(model, params)
    if pretrained:
        return InputAdapter.pretrained(channels, pretrained, fit)
    mean, std = stats or (data.mean, data.std)
    return InputAdapter(channels, side, mean, std, fit=fit)


def fold_adapters(model: str, data: ImageData, params: Mapping[str, Any]) -> list[InputAdapter]:
    """One adapter per fold, normalized with that fold's training part only."""
    stats = data.fold_stats or [None] * len(data.folds)
    return [input_adapter(model, data, params, fold) for fold in stats]
