"""What the training loop is told: plain frozen dataclasses, importable without torch. Their
hyperparameter fields (names, types, defaults) are generated from the declarations in
bench/hparams.py, so a new declaration is a new field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, make_dataclass
from typing import Any

from bench.hparams import AUGMENT, TRAINING


def _active(self) -> bool:
    return self != AugmentSettings()


def _geometric(self) -> bool:
    return bool(self.rotation or self.translate or self.zoom or self.crop_scale < 1.0)


# hflip, rotation, translate, zoom, crop_scale, brightness, contrast, erasing, mixup, cutmix.
AugmentSettings = make_dataclass(
    "AugmentSettings",
    [(p.name, p.type, field(default=p.default)) for p in AUGMENT.values()],
    namespace={"active": property(_active), "geometric": property(_geometric)},
    frozen=True,
)

AugmentSettings.__module__ = __name__  # pickled by reference, like a written class

# Declared training parameters that are not loop settings: batch_size is resolved against the
# budget's, input_fit belongs to the InputAdapter.
_NOT_SETTINGS = ("batch_size", "input_fit")

# epochs and batch_size, the declared training parameters (lr, optimizer, schedule, ...), then
# the run's own: patience (0: no early stopping), seed, augment (training batches only),
# precision (auto, fp32, bf16, fp16) and channels_last (auto, on, off).
TrainSettings = make_dataclass(
    "TrainSettings",
    [
        ("epochs", int),
        ("batch_size", int),
        *[
            (p.name, p.type, field(default=p.default))
            for p in TRAINING.values()
            if p.name not in _NOT_SETTINGS
        ],
        ("patience", int, field(default=0)),
        ("seed", int, field(default=0)),
        ("augment", AugmentSettings, field(default_factory=AugmentSettings)),
        ("precision", str, field(default="auto")),
        ("channels_last", str, field(default="auto")),
        ("loader_workers", int, field(default=0)),
    ],
    frozen=True,
)
TrainSettings.__module__ = __name__


def settings_from_params(params: Mapping[str, Any], **run: Any) -> TrainSettings:
    """TrainSettings from searched values (each in its declared type; one left out takes its
    declared default) and the run's own fields (epochs, batch_size, patience, seed, ...)."""

    def value(name: str, declared: Mapping[str, Any]) -> Any:
        return declared[name].typed(params.get(name, declared[name].default))

    training = {name: value(name, TRAINING) for name in TRAINING if name not in _NOT_SETTINGS}
    augment = AugmentSettings(**{name: value(name, AUGMENT) for name in AUGMENT})
    return TrainSettings(**training, augment=augment, **run)
