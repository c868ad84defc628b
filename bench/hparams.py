"""Every hyperparameter a search space may set, declared once: its type, default, range or
choices and a one-line doc. Config validation, `bench models`, the README's tables, the
training loop's settings and its optimizer and schedule factories all read these declarations.

Torch-free: an optimizer or a schedule names its factory by import path ("module:attribute"),
resolved only when a model trains. Adding one is one entry in OPTIMIZERS or SCHEDULES."""

from __future__ import annotations

import importlib
import math
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Optimizer:
    """`factory(params, lr=..., weight_decay=..., **options)`: a torch optimizer; `options`
    are the training settings it also takes, passed under their own names."""

    doc: str
    factory: str | Callable[..., Any]
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """A per-batch learning-rate schedule after the optional warmup: `shape(progress)` scales
    the base rate (progress from 0 to 1), or `factory(optimizer, total_steps, warmup_steps)`
    builds a torch scheduler of its own."""

    doc: str
    shape: Callable[[float], float] | None = None
    factory: str | Callable[..., Any] | None = None


OPTIMIZERS: dict[str, Optimizer] = {
    "adam": Optimizer("Adam", "bench.train.optim:SlicedAdam"),
    "adamw": Optimizer("Adam with decoupled weight decay", "bench.train.optim:SlicedAdamW"),
    "sgd": Optimizer("SGD with momentum", "bench.train.optim:EagerSGD", ("momentum", "nesterov")),
}

SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule("the base rate throughout", shape=lambda progress: 1.0),
    "cosine": Schedule(
        "cosine decay to 0", shape=lambda progress: 0.5 * (1 + math.cos(math.pi * progress))
    ),
    "step": Schedule(
        "x0.1 at 1/3 and 2/3 of training", shape=lambda progress: 0.1 ** int(progress * 3)
    ),
    "onecycle": Schedule(
        "up to the rate and down again in one cycle; warmup sets the rise",
        factory="bench.train.optim:one_cycle",
    ),
}


def resolve(factory: str | Callable[..., Any]) -> Callable[..., Any]:
    """A factory given as "module:attribute" imported now, or the callable itself."""
    if callable(factory):
        return factory
    module, _, attribute = factory.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Hyperparameter:
    """One searchable setting. `choices` maps each allowed name to its doc or to the entry
    behind it (an Optimizer, a Schedule); the mapping is live, so an entry added to it is
    allowed, listed and documented at once."""

    name: str
    type: type
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    choices: Mapping[str, Any] | None = None

    @property
    def bounds(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)

    def typed(self, value: Any) -> Any:
        """A searched value in this parameter's type (Optuna hands back floats and numpy
        types); None (an unset optional) stays None."""
        if value is None or self.type not in (bool, int, float):
            return value
        return self.type(value)

    def allowed(self) -> str:
        """The range or the choices, as people read them ("" when anything goes)."""
        if self.choices is not None:
            return ", ".join(self.choices)
        if self.bounds is not None:
            return f"[{self.low:g}, {self.high:g}]"
        return ""

    def choice_doc(self, name: str) -> str:
        entry = self.choices[name] if self.choices is not None else ""
        return entry if isinstance(entry, str) else getattr(entry, "doc", "")


def declare(*params: Hyperparameter) -> dict[str, Hyperparameter]:
    """Declarations keyed by name; a name declared twice is an error."""
    out: dict[str, Hyperparameter] = {}
    for param in params:
        if param.name in out:
            raise ValueError(f"hyperparameter '{param.name}' is declared twice")
        out[param.name] = param
    return out


H = Hyperparameter

# Hyperparameters of the training loop itself; model hyperparameters live with each model in
# the registry (bench/registry/models.py).
TRAINING = declare(
    H("lr", float, 1e-3, "learning rate", 1e-8, 10.0),
    H("weight_decay", float, 0.0, "L2 penalty (decoupled with adamw)", 0.0, 1.0),
    H("optimizer", str, "adam", "optimizer", choices=OPTIMIZERS),
    H("momentum", float, 0.9, "momentum (sgd)", 0.0, 1.0),
    H("label_smoothing", float, 0.0, "label smoothing of the cross-entropy", 0.0, 0.99),
    H("batch_size", int, None, "batch size; unset: the budget's batch_size", 1, 65536),
    H("nesterov", bool, False, "Nesterov momentum (sgd)"),
    H(
        "schedule",
        str,
        "constant",
        "learning-rate schedule, stepped every batch",
        choices=SCHEDULES,
    ),
    H("warmup_epochs", float, 0.0, "linear warmup from lr/10, before the schedule", 0.0, 1e4),
    H("grad_clip", float, 0.0, "max gradient norm; 0: no clipping", 0.0, math.inf),
    H(
        "class_weight",
        str,
        "none",
        "weighting of the cross-entropy",
        choices={"none": "every sample alike", "balanced": "by inverse class frequency"},
    ),
    H(
        "input_fit",
        str,
        "resize",
        "how images reach the model's side",
        choices={"resize": "stretch to the side", "pad": "centre smaller ones on black"},
    ),
)

# Augmentation of training batches; the defaults leave images untouched.
AUGMENT = declare(
    H("hflip", float, 0.0, "probability of a horizontal flip", 0.0, 1.0),
    H("rotation", float, 0.0, "degrees, drawn from ±rotation", 0.0, 180.0),
    H("translate", float, 0.0, "shift, fraction of the side, drawn from ±translate", 0.0, 1.0),
    H("zoom", float, 0.0, "scale drawn from 1 ± zoom (above 1 zooms in)", 0.0, 0.9),
    H(
        "crop_scale",
        float,
        1.0,
        "random resized crop (aspect 3/4 to 4/3): smallest area kept; 1: off",
        0.01,
        1.0,
    ),
    H("brightness", float, 0.0, "factor drawn from 1 ± brightness", 0.0, 1.0),
    H("contrast", float, 0.0, "factor drawn from 1 ± contrast", 0.0, 1.0),
    H("erasing", float, 0.0, "probability of erasing one random rectangle (cutout)", 0.0, 1.0),
    H("mixup", float, 0.0, "Beta(alpha, alpha) of mixup; 0: off", 0.0, math.inf),
    H(
        "cutmix",
        float,
        0.0,
        "Beta(alpha, alpha) of cutmix; 0: off (both on: one per batch)",
        0.0,
        math.inf,
    ),
)

# Everything the training loop takes, whatever the model.
TRAINING_PARAMS: dict[str, Hyperparameter] = {**TRAINING, **AUGMENT}


def defaults(params: Mapping[str, Hyperparameter]) -> dict[str, Any]:
    return {name: param.default for name, param in params.items()}


def summary(params: Mapping[str, Hyperparameter], indent: str = "    ", width: int = 100) -> str:
    """`name=default [range]` or `name=default {choices}` for each parameter, wrapped between
    parameters only."""
    items = []
    for param in params.values():
        allowed = param.allowed()
        shown = f"{{{allowed}}}" if param.choices is not None else allowed
        item = f"{param.name}={param.default}" + (f" {shown}" if shown else "")
        items.append(item.replace(" ", "\xa0"))  # textwrap breaks at plain spaces only
    text = textwrap.fill("; ".join(items), width, initial_indent=indent, subsequent_indent=indent)
    return text.replace("\xa0", " ")


def markdown_table(params: Mapping[str, Hyperparameter]) -> str:
    """A Markdown table of the declarations: name, default, range or choices, what."""
    rows = ["| parameter | default | range or choices | what |", "|---|---|---|---|"]
    for param in params.values():
        if param.choices is not None:
            allowed = ", ".join(
                f"`{name}`" + (f" ({param.choice_doc(name)})" if param.choice_doc(name) else "")
                for name in param.choices
            )
        else:
            allowed = param.allowed()
        rows.append(f"| `{param.name}` | `{param.default}` | {allowed} | {param.doc} |")
    return "\n".join(rows) + "\n"
