"""What a trial builds from its hyperparameters: the training loop's settings, the model and
the input adapter (no Ray import)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bench.config import TRAINING_PARAMS
from bench.data.images import ImageData
from bench.plan import PairingPlan
from bench.registry.models import MODELS, create_model
from bench.train.loop import InputAdapter, TrainSettings
from bench.train.settings import AUGMENT_DEFAULTS, AugmentSettings


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
    merged = {k: _typed(TRAINING_PARAMS[k], v) for k, v in {**TRAINING_PARAMS, **training}.items()}
    merged.pop("input_fit")  # the InputAdapter's business
    return TrainSettings(
        epochs=epochs or plan.epochs,
        batch_size=int(merged.pop("batch_size") or plan.batch_size),
        patience=plan.patience,
        seed=plan.seed,
        augment=AugmentSettings(**{k: merged.pop(k) for k in AUGMENT_DEFAULTS}),
        precision=plan.precision,
        channels_last=plan.channels_last,
        **merged,
    )


def _typed(default: Any, value: Any) -> Any:
    """A searched value in its parameter's type (Optuna hands back floats and numpy types)."""
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, float):
        return float(value)
    return value


def model_factory(
    plan: PairingPlan, data: ImageData, params: Mapping[str, Any]
) -> Callable[[], Any]:
    _, hparams = split_params(plan.model, params)
    channels, side = input_shape(plan.model, data, params)
    return lambda: create_model(plan.model, data.num_classes, channels, side, **hparams)


def _pretrained(model: str, params: Mapping[str, Any]):
    """(side, mean, std) of the model's pretrained weights, or None."""
    _, hparams = split_params(model, params)
    if hparams.get("strategy") == "from_scratch" or "weights" not in MODELS.get(model).hparams:
        return None
    from bench.models.torchvision_models import preprocessing

    return preprocessing(model, hparams.get("weights", "none"))


def input_shape(model: str, data: ImageData, params: Mapping[str, Any]) -> tuple[int, int]:
    """(channels, side) fed to the model: pretrained weights fix the side they were trained at."""
    channels, side = MODELS.get(model).input_shape(
        int(data.train_x.shape[1]), int(data.train_x.shape[2])
    )
    pretrained = _pretrained(model, params)
    return (channels, pretrained[1]) if pretrained else (channels, side)


def input_adapter(
    model: str,
    data: ImageData,
    params: Mapping[str, Any],
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> InputAdapter:
    """The pretrained weights' resize, crop and mean/std, or the dataset's own normalization:
    `stats` (mean, std) of the images the model trains on, by default the whole CV pool's."""
    channels, side = input_shape(model, data, params)
    fit = str(params.get("input_fit", TRAINING_PARAMS["input_fit"]))
    pretrained = _pretrained(model, params)
    if pretrained:
        resize, _, mean, std = pretrained
        return InputAdapter(channels, side, mean, std, resize=resize, fit=fit)
    mean, std = stats or (data.mean, data.std)
    return InputAdapter(channels, side, mean, std, fit=fit)


def fold_adapters(model: str, data: ImageData, params: Mapping[str, Any]) -> list[InputAdapter]:
    """One adapter per fold, normalized with that fold's training part only."""
    stats = data.fold_stats or [None] * len(data.folds)
    return [input_adapter(model, data, params, fold) for fold in stats]
