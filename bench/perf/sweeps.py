"""Per-trial overhead and growth: real bench sweeps (the same Tune + Optuna search, trial
function and Parquet parts as `bench run`) of small MLP trials on the embedded digits.

A trial's overhead is its wall time as Tune sees it (trial started -> trial complete) minus
the time its training loop spent training and evaluating (the folds' train_seconds +
eval_seconds). The amortized figure charges every second of the sweep that was not training
to the trials: (sweep wall x concurrent slots - loop seconds) / trials."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import tune

from bench.config import BenchmarkConfig, validate_benchmark
from bench.perf.figures import Figure
from bench.results.store import RunStore

SECTION_OVERHEAD = "1. per-trial overhead (single-worker trials, digits, mlp)"
SECTION_GROWTH = "4. growth with the number of trials"


class TrialClock(tune.Callback):
    """When Tune started and completed each trial (driver-side clock)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.completed: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.perf_counter()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed[trial.trial_id] = time.perf_counter()

    def wall(self, trial_id: str) -> float:
        return self.completed[trial_id] - self.started[trial_id]


@dataclass
class Sweep:
    trials: int
    slots: int
    wall_seconds: float
    loop_seconds: dict[str, float] = field(default_factory=dict)  # trial id -> loop time
    trial_seconds: dict[str, float] = field(default_factory=dict)  # trial id -> Tune wall
    samples_per_second: list[float] = field(default_factory=list)  # per fold, training steps
    samples: float = 0.0  # training samples over every trial and fold

    @property
    def throughput(self) -> float:
        """Training samples per second of sweep wall time (all trials together)."""
        return self.samples / self.wall_seconds

    @property
    def overheads(self) -> list[float]:
        return [self.trial_seconds[t] - self.loop_seconds[t] for t in self.loop_seconds]

    @property
    def amortized_overhead(self) -> float:
        return (self.wall_seconds * self.slots - sum(self.loop_seconds.values())) / self.trials


def sweep_config(trials: int, epochs: int, folds: int, workdir: str) -> BenchmarkConfig:
    return validate_benchmark(
        {
            "name": f"perf-sweep-{trials}",
            "models": ["mlp"],
            "datasets": ["digits"],
            "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
            "search": {"trials": trials, "sampler": "random", "seed": 0},
            "cv": {"folds": folds, "seed": 0},
            "budget": {"epochs": epochs, "batch_size": 64, "patience": 0},
            "output": workdir,
        },
        source="<bench perf>",
    )


def run_sweep(
    config: BenchmarkConfig, data_ref: Any, model: str = "mlp", dataset: str = "digits"
) -> Sweep:
    """One pairing's search, driven from this process, exactly as `bench run` drives it."""
    from bench.runner import Progress, pairing_job, trial_slots
    from bench.tune.search import SearchPlan, run_search

    store = RunStore.create(config.output, config.name)
    job = pairing_job(config, store, model, dataset, data_ref)
    clock = TrialClock()
    slots = trial_slots(job.resources)
    plan = SearchPlan(config.space_for(model, dataset), config.search, slots, (clock,))
    progress = Progress.remote({job.ctx.pairing: job.ctx.trials}, "max")
    started = time.perf_counter()
    results = run_search(job, plan, progress, [])
    wall = time.perf_counter() - started
    errors = [r.error for r in results if r.error]
    if errors:
        raise RuntimeError(f"a perf sweep trial failed: {errors[0]}")
    sweep = Sweep(config.search.trials, slots, wall)
    for path in store.list(f"parts/folds/{job.part_name}"):
        for row in store.read_table(path).to_pylist():
            trial = row["trial_id"]
            loop = row["train_seconds"] + row["eval_seconds"]
            sweep.loop_seconds[trial] = sweep.loop_seconds.get(trial, 0.0) + loop
            sweep.samples_per_second.append(row["samples_per_second"])
            sweep.samples += row["samples_per_second"] * row["train_seconds"]
    sweep.trial_seconds = {t: clock.wall(t) for t in sweep.loop_seconds}
    ray.kill(progress)
    return sweep


def measure(sizes: list[int], epochs: int, folds: int, workdir: str, echo) -> list[Figure]:
    from bench.config import DatasetConfig
    from bench.data import load_dataset

    data_ref = ray.put(load_dataset(DatasetConfig(name="digits"), folds, 0.2, 0))
    sweeps = []
    for size in sizes:
        echo(f"  sweep of {size} trials ...")
        sweeps.append(run_sweep(sweep_config(size, epochs, folds, workdir), data_ref))
    overheads = [o for s in sweeps for o in s.overheads]
    loops = [v for s in sweeps for v in s.loop_seconds.values()]
    trials = sum(s.trials for s in sweeps)
    figures = [
        Figure(
            SECTION_OVERHEAD,
            "median",
            statistics.median(overheads),
            "s/trial",
            f"Tune trial wall - training loop, {trials} trials; target <= 0.5 s",
        ),
        Figure(SECTION_OVERHEAD, "max", max(overheads), "s/trial"),
        Figure(
            SECTION_OVERHEAD,
            "amortized",
            sum(s.amortized_overhead * s.trials for s in sweeps) / trials,
            "s/trial",
            "(sweep wall x slots - loop time) / trials: every non-training second",
        ),
        Figure(SECTION_OVERHEAD, "training loop", statistics.median(loops), "s/trial", "median"),
    ]
    for s in sweeps:
        figures.append(Figure(SECTION_GROWTH, f"{s.trials} trials", s.wall_seconds, "s", "wall"))
    for s in sweeps:
        figures.append(
            Figure(
                SECTION_GROWTH,
                f"{s.trials} trials, per trial",
                s.wall_seconds / s.trials,
                "s/trial",
                f"{s.slots} at once",
            )
        )
    first, last = sweeps[0], sweeps[-1]
    figures.append(
        Figure(
            SECTION_GROWTH,
            f"per-trial cost {last.trials} vs {first.trials}",
            (last.wall_seconds / last.trials) / (first.wall_seconds / first.trials),
            "x",
            "flat (about 1 or below) means linear total",
        )
    )
    return figures
