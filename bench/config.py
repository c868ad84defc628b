"""The benchmark definition: one validated object merging what to run (models x datasets),
how to search (space, sampler, trials, CV) and on what budget (epochs, resources, output).

Errors name the file, the key and the fix, with the closest known name suggested."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from bench.errors import BenchError, ConfigError, closest
from bench.metrics import DEFAULT_METRIC, METRIC_NAMES
from bench.registry import DATASETS, MODELS
from bench.train.settings import AUGMENT_DEFAULTS

# Hyperparameters of the training loop itself; model hyperparameters come from the registry.
TRAINING_PARAMS: dict[str, Any] = {
    "lr": 1e-3,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "momentum": 0.9,
    "label_smoothing": 0.0,
    "batch_size": None,  # None: the budget's batch_size
    "nesterov": False,  # sgd only
    "schedule": "constant",  # learning-rate schedule, stepped every batch
    "warmup_epochs": 0.0,  # linear warmup from lr/10, before the schedule
    "grad_clip": 0.0,  # max gradient norm; 0: no clipping
    "class_weight": "none",  # "balanced": cross-entropy weighted by inverse class frequency
    # How images reach the model's side: "resize" stretches, "pad" centres smaller ones.
    "input_fit": "resize",
    # Augmentation of training batches (hflip, rotation, translate, zoom, crop_scale,
    # brightness, contrast, erasing, mixup, cutmix); defaults leave images untouched.
    **AUGMENT_DEFAULTS,
}
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step", "onecycle")
# Training parameters that take one of a few names.
TRAINING_CHOICES = {
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "class_weight": ("none", "balanced"),
    "input_fit": ("resize", "pad"),
    "strategy": ("full", "head_only", "from_scratch"),  # torchvision models
}

# Ranges outside which a parameter makes no sense (probabilities, fractions, degrees).
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "hflip": (0.0, 1.0),
    "erasing": (0.0, 1.0),
    "rotation": (0.0, 180.0),
    "translate": (0.0, 1.0),
    "zoom": (0.0, 0.9),
    "crop_scale": (0.01, 1.0),
    "brightness": (0.0, 1.0),
    "contrast": (0.0, 1.0),
    "mixup": (0.0, math.inf),
    "cutmix": (0.0, math.inf),
    "label_smoothing": (0.0, 0.99),
    "dropout": (0.0, 0.99),
    "head_dropout": (0.0, 0.99),
    "shrink": (0.01, 1.0),
    "unfreeze_after": (0, math.inf),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ParamSpec(_Strict):
    """One searchable hyperparameter: a distribution, or `value` for a fixed setting."""

    type: Literal["loguniform", "uniform", "int", "choice", "fixed"]
    low: float | None = None
    high: float | None = None
    log: bool = False  # for `int`
    values: list[Any] | None = None  # for `choice`
    value: Any = None  # for `fixed`

    @model_validator(mode="after")
    def _check_bounds(self) -> ParamSpec:
        if self.type in ("loguniform", "uniform", "int"):
            if self.low is None or self.high is None:
                raise ValueError(f"{self.type} needs both low and high")
            if not (math.isfinite(self.low) and math.isfinite(self.high)):
                raise ValueError("low and high must be finite numbers")
            if self.low > self.high:
                raise ValueError(f"low ({self.low}) > high ({self.high}); swap them")
            if (self.type == "loguniform" or self.log) and self.low <= 0:
                raise ValueError(f"a log-scale range needs low > 0 (got {self.low})")
        if self.type == "choice" and not self.values:
            raise ValueError("choice needs a non-empty `values` list")
        return self

    @classmethod
    def coerce(cls, raw: Any) -> Any:
        """Shorthands: a list means `choice`, a scalar means `fixed`."""
        if isinstance(raw, list):
            return {"type": "choice", "values": raw}
        if not isinstance(raw, dict):
            return {"type": "fixed", "value": raw}
        return raw

    def grid_values(self) -> list[Any]:
        if self.type == "choice":
            return list(self.values or [])
        if self.type == "fixed":
            return [self.value]
        raise ValueError("the grid sampler takes only choice or fixed values")


SearchSpace = dict[str, ParamSpec]


def _coerce_space(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: ParamSpec.coerce(v) for k, v in raw.items()}
    return raw


class DatasetConfig(_Strict):
    name: str
    root: str | None = None
    path: str | None = None
    image_size: Annotated[int, Field(ge=1)] | None = None
    download: bool = False
    channels: Literal[1, 3] | None = None
    # ImageFolder: `error` names every unreadable file and stops; `skip` leaves them out and
    # records them in the run's skipped_images.json.
    on_bad_image: Literal["error", "skip"] = "error"

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, raw: Any) -> Any:
        return {"name": raw} if isinstance(raw, str) else raw

    def options_set(self) -> set[str]:
        return {k for k in self.model_fields_set if k != "name"}

    @property
    def key(self) -> str:
        """Short unique label for this dataset entry (the name, or name@path)."""
        return self.name if not self.path else f"{self.name}@{Path(self.path).name}"


class AshaConfig(_Strict):
    grace_period: Annotated[int, Field(ge=1)] = 1
    reduction_factor: Annotated[float, Field(gt=1)] = 2.0


class SearchConfig(_Strict):
    trials: Annotated[int, Field(ge=1)] = 8
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    seed: Annotated[int, Field(ge=0)] = 0
    metric: str = DEFAULT_METRIC
    asha: AshaConfig | None = None
    max_concurrent_trials: Annotated[int, Field(ge=0)] = 0  # 0: as many as resources allow
    # Trials proposed together: each batch is proposed from the results of every earlier batch,
    # told in trial order, so the search does not depend on which trial finishes first or on
    # how many run at once. 0: propose whenever a slot frees (fastest; not reproducible).
    batch: Annotated[int, Field(ge=0)] = 4
    # Times a trial is restarted after its process dies (a lost node, an OOM kill); a trial
    # that raises (diverged, bad data) fails the same way each time, so keep this small.
    retries: Annotated[int, Field(ge=0)] = 1

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str) -> str:
        if name not in METRIC_NAMES:
            raise ValueError(
                f"unknown metric '{name}'{closest(name, METRIC_NAMES)} "
                f"(known: {', '.join(METRIC_NAMES)})"
            )
        return name


class EvaluationConfig(_Strict):
    """How the chosen configurations are scored on held-out data."""

    # Replicates: each repeat draws its own stratified test split and k folds (the same for
    # every model of a dataset, so models are compared per repeat) and trains with its own seed.
    repeats: Annotated[int, Field(ge=1)] = 3
    # once: search on repeat 0, refit its chosen configuration on every repeat's training pool;
    # every: a whole search per repeat (nested cross-validation), repeats times the cost.
    search: Literal["once", "every"] = "once"
    # Seed of model initialization, shuffling and augmentation (search.seed seeds the sampler
    # only, cv.seed the splits): repeat r, fold k and the refit each derive their own from it.
    training_seed: Annotated[int, Field(ge=0)] = 0
    # Bootstrap resamples behind every interval (test samples within each repeat, and the
    # repeats themselves when there are several).
    bootstrap: Annotated[int, Field(ge=100)] = 1000


class CVConfig(_Strict):
    folds: Annotated[int, Field(ge=2)] = 3
    seed: Annotated[int, Field(ge=0)] = 0
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2


class BudgetConfig(_Strict):
    epochs: Annotated[int, Field(ge=1)] = 10
    batch_size: Annotated[int, Field(ge=1)] = 64
    patience: Annotated[int, Field(ge=0)] = 0  # 0: no early stopping
    # Epochs between trial checkpoints (single-worker trials): a trial whose worker dies
    # restarts from its last one. 0: no checkpoints (cheapest; a restart begins at epoch 1).
    checkpoint_every: Annotated[int, Field(ge=0)] = 0


class ModelBudget(_Strict):
    """A model's own budget where it differs from the shared one (a ResNet on a CPU needs
    fewer, shorter trials than an MLP)."""

    trials: Annotated[int, Field(ge=1)] | None = None
    epochs: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] | None = None
    patience: Annotated[int, Field(ge=0)] | None = None


@dataclass(frozen=True)
class Budget:
    """The effective budget of one model."""

    trials: int
    epochs: int
    batch_size: int
    patience: int


class ResourcesConfig(_Strict):
    workers: Annotated[int, Field(ge=1)] = 1
    cpus_per_worker: Annotated[float, Field(gt=0)] = 1
    gpus_per_worker: Annotated[float, Field(ge=0)] = 0
    # Run single-worker trials through Ray Train too (they run in the trial actor otherwise).
    use_ray_train: bool = False
    # auto: bf16 autocast on CUDA (fp16 with loss scaling on GPUs without bf16), fp32 on CPU.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # auto: channels_last memory format for convolutional models on CUDA.
    channels_last: StrictBool | Literal["auto"] = "auto"
    # On CUDA, deterministic kernels only (torch.use_deterministic_algorithms, no cuDNN
    # autotuning): same seed, same numbers on the same GPU, at a cost in speed (see README).
    # On a CPU results are already reproducible for a given thread count.
    deterministic: StrictBool = False

    @model_validator(mode="after")
    def _whole_gpus_for_ddp(self) -> ResourcesConfig:
        if self.workers > 1 and 0 < self.gpus_per_worker < 1:
            raise ValueError(
                "fractional gpus_per_worker needs workers: 1 (DDP ranks need a GPU each)"
            )
        if self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker):
            raise ValueError("gpus_per_worker above 1 must be a whole number")
        return self

    @property
    def distributed(self) -> bool:
        return self.workers > 1 or self.use_ray_train


# A model's own resources where they differ from the shared ones (two CPUs for a ResNet's
# trials while MLP trials take one; a whole GPU for a ResNet-50, a quarter for an MLP): every
# field of ResourcesConfig, optional; keys left out keep the shared value.
ModelResources = create_model(
    "ModelResources",
    __base__=_Strict,
    **{
        name: (field.rebuild_annotation() | None, None)
        for name, field in ResourcesConfig.model_fields.items()
    },
)


class BenchmarkConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    models: list[str]
    datasets: list[DatasetConfig]
    search_space: SearchSpace = Field(default_factory=dict)
    # Changes to the shared space, keyed `model`, `@dataset` (every model on that dataset) or
    # `model@dataset`; each replaces or adds parameters, the most specific applied last.
    overrides: dict[str, SearchSpace] = Field(default_factory=dict)
    search: SearchConfig = Field(default_factory=SearchConfig)
    cv: CVConfig = Field(default_factory=CVConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    model_budgets: dict[str, ModelBudget] = Field(default_factory=dict)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    model_resources: dict[str, ModelResources] = Field(default_factory=dict)
    output: str = "results"

    _coerce_search_space = field_validator("search_space", mode="before")(
        classmethod(lambda cls, v: _coerce_space(v))
    )

    @field_validator("overrides", mode="before")
    @classmethod
    def _coerce_overrides(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            return {k: _coerce_space(v) for k, v in raw.items()}
        return raw

    def space_for(self, model: str, dataset: str | None = None) -> SearchSpace:
        """The effective space of one pairing: the shared params the model understands, then
        the overrides of the model, of the dataset, of the pairing (a dataset's overrides
        hold only what this model understands)."""
        known = set(TRAINING_PARAMS) | set(MODELS.get(model).hparams)
        space = {k: v for k, v in self.search_space.items() if k in known}
        space.update(self.overrides.get(model, {}))
        if dataset is not None:
            on_dataset = self.overrides.get(f"@{dataset}", {})
            space.update({k: v for k, v in on_dataset.items() if k in known})
            space.update(self.overrides.get(f"{model}@{dataset}", {}))
        return space

    def budget_for(self, model: str) -> Budget:
        own = self.model_budgets.get(model, ModelBudget())
        return Budget(
            trials=own.trials or self.search.trials,
            epochs=own.epochs or self.budget.epochs,
            batch_size=own.batch_size or self.budget.batch_size,
            patience=self.budget.patience if own.patience is None else own.patience,
        )

    def resources_for(self, model: str) -> ResourcesConfig:
        """The shared resources with the model's own entries applied (validated on load)."""
        own = self.model_resources.get(model)
        if own is None:
            return self.resources
        changes = own.model_dump(exclude_none=True)
        return ResourcesConfig.model_validate({**self.resources.model_dump(), **changes})

    def pairings(self) -> list[tuple[str, DatasetConfig]]:
        return [(m, d) for d in self.datasets for m in self.models]


# ---------------------------------------------------------------------------------------------
# Loading and semantic checks


def load_benchmark(path: str | Path, overrides: dict[str, Any] | None = None) -> BenchmarkConfig:
    """Read, merge CLI overrides into, and validate a benchmark definition."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such benchmark file; pass a YAML path (see search_spaces/)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: malformed YAML ({problem}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (name, models, datasets, ...)")
    raw.setdefault("name", path.stem)
    apply_overrides(raw, overrides or {})
    return validate_benchmark(raw, source=str(path))


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    """CLI flags onto the raw mapping: keys are dotted paths such as `search.trials`; a number
    indexes a list (`datasets.0.path`)."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        node: Any = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = _child(node, key, dotted)
        if isinstance(node, list):
            node[_index(node, leaf, dotted)] = value
        elif isinstance(node, dict):
            node[leaf] = value
        else:
            raise ConfigError(f"--set {dotted}: '{leaf}' is inside a plain value; fix the key")


def _child(node: Any, key: str, dotted: str) -> Any:
    if isinstance(node, list):
        index = _index(node, key, dotted)
        if isinstance(node[index], str):  # a dataset or model given by name only
            node[index] = {"name": node[index]}
        return node[index]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {dotted}: '{key}' is inside a plain value; fix the key")
    if node.get(key) is None:
        node[key] = {}
    return node[key]


def _index(node: list[Any], key: str, dotted: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(
            f"--set {dotted}: '{key}' is not an index of a {len(node)}-entry list; "
            f"use 0 to {len(node) - 1}"
        )
    return int(key)


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set key.path=value` flags: the value is read as YAML (numbers, lists, mappings)."""
    out: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {text}: expected KEY=VALUE such as search.trials=4")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {text}: the value is not valid YAML; quote it") from None
    return out


def validate_benchmark(raw: dict[str, Any], source: str = "<config>") -> BenchmarkConfig:
    try:
        config = BenchmarkConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0], source)) from None
    _check_names(config, source)
    return config


def _check_names(config: BenchmarkConfig, source: str) -> None:
    expanded: list[str] = []
    for i, pattern in enumerate(config.models):
        try:
            expanded += [m for m in MODELS.expand(pattern) if m not in expanded]
        except BenchError as exc:
            raise ConfigError(f"{source}: models[{i}]: {exc}") from None
    config.models = expanded
    for i, dataset in enumerate(config.datasets):
        where = f"{source}: datasets[{i}]"
        try:
            spec = DATASETS.get(dataset.name)
        except BenchError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        for option in sorted(dataset.options_set() - spec.options):
            allowed = ", ".join(sorted(spec.options)) or "none"
            raise ConfigError(
                f"{where}: dataset '{dataset.name}' takes no option '{option}' "
                f"(it takes: {allowed}); remove it"
            )
        for option in sorted(spec.required - dataset.options_set()):
            raise ConfigError(f"{where}: dataset '{dataset.name}' needs '{option}'; add it")
    keys = [d.key for d in config.datasets]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{source}: datasets: the same dataset is listed twice; list it once")
    _check_space(
        config.search_space, set(TRAINING_PARAMS) | _all_model_hparams(), source, "search_space"
    )
    # Entries for registered models outside `models` are kept but unused, so `--models mlp`
    # can narrow a benchmark without editing its file; unknown names are typos.
    for model in config.model_budgets:
        _check_model_name(model, source, f"model_budgets.{model}")
    for model in config.model_resources:
        _check_model_name(model, source, f"model_resources.{model}")
        try:
            config.resources_for(model)
        except ValidationError as exc:  # a combination the shared resources allow, this not
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{source}: model_resources.{model}: {message}") from None
    for key, space in config.overrides.items():
        model, dataset = _override_target(key, keys, source)
        known = set(TRAINING_PARAMS) | (
            set(MODELS.get(model).hparams) if model else _all_model_hparams()
        )
        _check_space(space, known, source, f"overrides.{key}")
    if config.search.sampler == "grid":
        for model, dataset in config.pairings():
            for name, spec in config.space_for(model, dataset.key).items():
                if spec.type not in ("choice", "fixed"):
                    raise ConfigError(
                        f"{source}: search_space.{name}: the grid sampler takes only choice lists "
                        f"(got {spec.type}); list the values or use sampler: tpe"
                    )


def _check_model_name(model: str, source: str, where: str) -> None:
    if model not in MODELS:
        raise ConfigError(
            f"{source}: {where}: unknown model"
            f"{closest(model, MODELS.names())}; use a name from `bench models`"
        )


def _override_target(key: str, datasets: list[str], source: str) -> tuple[str, str]:
    """(model, dataset) an overrides key names; either may be empty."""
    model, _, dataset = key.partition("@")
    if model:
        _check_model_name(model, source, f"overrides.{key}")
    if "@" in key and dataset not in datasets:
        raise ConfigError(
            f"{source}: overrides.{key}: no dataset '{dataset}' in this benchmark"
            f"{closest(dataset, datasets)}; use one of: {', '.join(datasets)}"
        )
    return model, dataset


def _all_model_hparams() -> set[str]:
    return {h for name in MODELS.names() for h in MODELS.get(name).hparams}


def _check_space(space: SearchSpace, known: set[str], source: str, where: str) -> None:
    for name, spec in space.items():
        if name not in known:
            raise ConfigError(
                f"{source}: {where}.{name}: unknown hyperparameter{closest(name, known)} "
                f"(known: {', '.join(sorted(known))})"
            )
        _check_range(name, spec, source, where)
        allowed = TRAINING_CHOICES.get(name)
        for value in spec.grid_values() if allowed and spec.type in ("choice", "fixed") else []:
            if value not in allowed:
                raise ConfigError(
                    f"{source}: {where}.{name}: unknown {name} '{value}'"
                    f"{closest(str(value), allowed)} (known: {', '.join(allowed)})"
                )


def _check_range(name: str, spec: ParamSpec, source: str, where: str) -> None:
    if name not in PARAM_RANGES:
        return
    low, high = PARAM_RANGES[name]
    if spec.type in ("choice", "fixed"):
        values = spec.grid_values()
    else:
        values = [spec.low, spec.high]
    for value in values:
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not low <= number <= high:
            raise ConfigError(
                f"{source}: {where}.{name}: {value!r} is outside [{low:g}, {high:g}]; "
                f"give a number in that range"
            )


def _describe(error: dict[str, Any], source: str) -> str:
    loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"])
    loc = loc.replace(".[", "[")
    if error["type"] == "extra_forbidden":
        *parent, key = error["loc"]
        known = _known_keys(BenchmarkConfig, list(parent))
        hint = closest(str(key), known) or f" (known: {', '.join(sorted(known))})"
        return f"{source}: {loc}: unknown key{hint}; remove or rename it"
    if error["type"] == "missing":
        return f"{source}: {loc}: required key is missing; add it"
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"{source}: {loc}: {message}{shown}"


def _known_keys(model: Any, loc: list[Any]) -> list[str]:
    """Field names of the config class found at `loc` (list indices and dict keys skipped)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
        else:  # list index or dict key: step into the element type
            args = [a for a in typing.get_args(_unwrap(current)) if a is not type(None)]
            current = args[-1] if args else current
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated down to the config class, if there is one."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        models = [
            a
            for a in typing.get_args(annotation)
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        return models[0] if models else annotation
    return annotation


def to_yaml(config: BenchmarkConfig) -> str:
    """The resolved definition (defaults filled in), loadable again by `load_benchmark`.
    Datasets keep only the options that were given: each dataset takes its own subset."""
    raw = config.model_dump(mode="json", exclude_none=True)
    raw["datasets"] = [d.model_dump(mode="json", exclude_unset=True) for d in config.datasets]
    return yaml.safe_dump(raw, sort_keys=False)
