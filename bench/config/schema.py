"""The benchmark definition's schema: pydantic classes merging what to run (models x
datasets), how to search (space, sampler, trials, CV) and on what budget (epochs, resources,
output). Import it through bench.config, which loads and checks a definition."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    create_model,
    field_validator,
    model_validator,
)

from bench.errors import closest
from bench.hparams import TRAINING_PARAMS
from bench.metrics import DEFAULT_METRIC, METRIC_NAMES
from bench.registry import MODELS


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


class AuditConfig(_Strict):
    """The data audit after a run (bench.audit): likely label errors and duplicate images."""

    enabled: StrictBool = True
    # near-duplicate pairs at or under this distance (1 - cosine of the centred images)
    duplicate_distance: Annotated[float, Field(ge=0, le=1)] = 0.002
    thumbnails: Annotated[int, Field(ge=0, le=1000)] = 24  # table rows that carry pictures


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
    # Processes that gather each trial worker's training batches from the image cache, two
    # batches ahead (0: in the trial's own process). Worth 2-4 per GPU on large images.
    loader_workers: Annotated[int, Field(ge=0, le=32)] = 0

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
    # the run folder's parent (<output>/<name>/): one path component, never "." or ".."
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$")]
    models: Annotated[list[str], Field(min_length=1)]
    datasets: Annotated[list[DatasetConfig], Field(min_length=1)]
    search_space: SearchSpace = Field(default_factory=dict)
    # Changes to the shared space, keyed `model`, `@dataset` (every model on that dataset) or
    # `model@dataset`; each replaces or adds parameters, the most specific applied last.
    overrides: dict[str, SearchSpace] = Field(default_factory=dict)
    search: SearchConfig = Field(default_factory=SearchConfig)
    cv: CVConfig = Field(default_factory=CVConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
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
