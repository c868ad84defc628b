"""A pairing resolved once: each (model, dataset, repeat) of a benchmark becomes one frozen,
Ray-free `PairingPlan` holding everything its search, trials, refit and rows need besides
hyperparameters. The runner, the Tune edge, the trial and the refit read only this object, so
a setting is resolved from the definition in one place (`resolve_pairings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.config import (
    BenchmarkConfig,
    Budget,
    CVConfig,
    EvaluationConfig,
    ResourcesConfig,
    SearchConfig,
    SearchSpace,
    apply_overrides,
    validate_benchmark,
)
from bench.metrics import Objective
from bench.results.names import pairing_name
from bench.seeds import training_seed


@dataclass(frozen=True)
class PairingPlan:
    """One pairing's repeat: what it searches, on what budget and resources, scored how."""

    run_id: str
    benchmark: str
    model: str
    dataset: str  # the dataset's key in the definition
    repeat: int  # the replicate: its splits, and `seed` is its training seed
    objective: Objective
    space: SearchSpace
    budget: Budget
    resources: ResourcesConfig
    search: SearchConfig
    cv: CVConfig
    evaluation: EvaluationConfig
    seed: int  # training seed of this repeat (evaluation.training_seed and the repeat)
    checkpoint_every: int = 0  # epochs between trial checkpoints; 0: none

    @property
    def pairing(self) -> str:
        """`mlp@digits.r0`: the pairing's repeat, the unit the scheduler runs and names files by."""
        return pairing_name(self.model, self.dataset, self.repeat)

    @property
    def metric(self) -> str:
        return self.objective.metric

    @property
    def trials(self) -> int:
        return self.budget.trials

    @property
    def epochs(self) -> int:
        return self.budget.epochs

    @property
    def batch_size(self) -> int:
        return self.budget.batch_size

    @property
    def patience(self) -> int:
        return self.budget.patience

    @property
    def workers(self) -> int:
        return self.resources.workers

    @property
    def loader_workers(self) -> int:
        return self.resources.loader_workers

    @property
    def precision(self) -> str:
        return self.resources.precision

    @property
    def channels_last(self) -> str:
        """auto, on or off."""
        value = self.resources.channels_last
        return value if isinstance(value, str) else ("on" if value else "off")

    @property
    def deterministic(self) -> bool:
        return self.resources.deterministic

    @property
    def searches(self) -> bool:
        """Whether this repeat runs a search of its own; with evaluation.search once, repeats
        past 0 refit repeat 0's choice."""
        return self.repeat == 0 or self.evaluation.search == "every"

    def ids(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "benchmark": self.benchmark,
            "dataset": self.dataset,
            "model": self.model,
            "repeat": self.repeat,
        }

    def compute(self, seconds: float | None) -> dict[str, float]:
        """cpu_seconds / gpu_seconds: the resources this pairing's trials reserve, held for
        `seconds` (what a budget comparison counts, whether or not the cores were busy)."""
        r, seconds = self.resources, float(seconds or 0.0)
        return {
            "cpu_seconds": seconds * r.cpus_per_worker * r.workers,
            "gpu_seconds": seconds * r.gpus_per_worker * r.workers,
        }


def resolve_pairing(
    config: BenchmarkConfig, run_id: str, model: str, dataset: str, repeat: int = 0
) -> PairingPlan:
    """The plan of one pairing's repeat: the model's own budget and resources applied, its
    space with every override, its training seed derived from the repeat."""
    return PairingPlan(
        run_id=run_id,
        benchmark=config.name,
        model=model,
        dataset=dataset,
        repeat=repeat,
        objective=Objective(config.search.metric),
        space=config.space_for(model, dataset),
        budget=config.budget_for(model),
        resources=config.resources_for(model),
        search=config.search,
        cv=config.cv,
        evaluation=config.evaluation,
        seed=training_seed(config.evaluation.training_seed, repeat),
        checkpoint_every=config.budget.checkpoint_every,
    )


def resolve_pairings(config: BenchmarkConfig, run_id: str) -> list[PairingPlan]:
    """Every (model, dataset, repeat) of the benchmark, dataset by dataset."""
    return [
        resolve_pairing(config, run_id, model, dataset.key, repeat)
        for model, dataset in config.pairings()
        for repeat in range(config.evaluation.repeats)
    ]


def standalone_plan(
    model: str,
    dataset: str,
    overrides: Mapping[str, Any] | None = None,
    repeat: int = 0,
    run_id: str = "standalone",
) -> PairingPlan:
    """The plan of a pairing outside a run (the GPU check, the plain-PyTorch baseline, tests):
    a one-pairing definition with `overrides` as `--set` keys (`budget.epochs`, ...),
    validated like any other."""
    raw: dict[str, Any] = {"name": run_id, "models": [model], "datasets": [dataset]}
    apply_overrides(raw, dict(overrides or {}))
    config = validate_benchmark(raw, source="<plan>")
    return resolve_pairing(config, run_id, model, config.datasets[0].key, repeat)
