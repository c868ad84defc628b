"""Per-trial overhead and growth: real `bench run`s (the same Tune + Optuna search, trial
function and Parquet parts) of one model, small MLP trials on the embedded digits.

A trial's overhead is its wall time as Tune sees it (trial started -> trial complete) minus
the time its training loop spent training and evaluating (the folds' train_seconds +
eval_seconds). The amortized figure charges every second of the sweep that was not training
to the trials: (sweep wall x concurrent slots - loop seconds) / trials."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from bench.config import BenchmarkConfig, validate_benchmark
from bench.perf.figures import Figure

SECTION_OVERHEAD = "1. per-trial overhead (single-worker trials, digits, mlp)"
SECTION_GROWTH = "4. growth with the number of trials"


@dataclass
class Sweep:
    trials: int
    slots: int
    wall_seconds: float
    loop_seconds: dict[str, float] = field(default_factory=dict)  # trial id -> loop time
    trial_seconds: dict[str, float] = field(default_factory=dict)  # trial id -> Tune wall
    samples_per_second: list[float] = field(default_factory=list)  # per fold, training steps
    samples: float = 0.0  # training samples over every trial and fold
    refit_seconds: float = 0.0  # the refit's training: work, not overhead

    @property
    def throughput(self) -> float:
        """Training samples per second of sweep wall time (all trials together)."""
        return self.samples / self.wall_seconds

    @property
    def overheads(self) -> list[float]:
        return [self.trial_seconds[t] - self.loop_seconds[t] for t in self.loop_seconds]

    @property
    def amortized_overhead(self) -> float:
        work = sum(self.loop_seconds.values()) + self.refit_seconds
        return (self.wall_seconds * self.slots - work) / self.trials


def sweep_config(trials: int, epochs: int, folds: int, workdir: str) -> BenchmarkConfig:
    return validate_benchmark(
        {
            "name": f"perf-sweep-{trials}",
            "models": ["mlp"],
            "datasets": ["digits"],
            "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
            "search": {"trials": trials, "sampler": "random", "seed": 0},
            "cv": {"folds": folds, "seed": 0},
            "evaluation": {"repeats": 1},
            "budget": {"epochs": epochs, "batch_size": 64, "patience": 0},
            "output": workdir,
        },
        source="<bench perf>",
    )


def run_sweep(config: BenchmarkConfig) -> Sweep:
    """One `bench run` of a one-model definition, its trials timed by Tune on the driver."""
    from bench.driver import trial_slots
    from bench.runner import run_benchmark
    from bench.tune.clock import TrialClock

    clock = TrialClock()
    summary = run_benchmark(config, echo=lambda line: None, callbacks=(clock,))
    trials = pq.read_table(f"{summary.store.path}/trials.parquet").to_pylist()
    errors = [t["error"] for t in trials if t["status"] != "ok"]
    if errors:
        raise RuntimeError(f"a perf sweep trial failed: {errors[0]}")
    slots = trial_slots(config.resources_for(config.models[0]))
    sweep = Sweep(config.search.trials, slots, summary.seconds)
    for row in pq.read_table(f"{summary.store.path}/folds.parquet").to_pylist():
        trial = row["trial_id"]
        loop = row["train_seconds"] + row["eval_seconds"]
        sweep.loop_seconds[trial] = sweep.loop_seconds.get(trial, 0.0) + loop
        sweep.samples_per_second.append(row["samples_per_second"])
        sweep.samples += row["samples_per_second"] * row["train_seconds"]
    sweep.trial_seconds = {t: clock.wall(t) for t in sweep.loop_seconds}
    sweep.refit_seconds = sum(row["refit_seconds"] or 0.0 for row in summary.leaderboard)
    return sweep


def measure(sizes: list[int], epochs: int, folds: int, workdir: str, echo) -> list[Figure]:
    sweeps = []
    for size in sizes:
        echo(f"  sweep of {size} trials ...")
        sweeps.append(run_sweep(sweep_config(size, epochs, folds, workdir)))
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


def gpu_sharing(
    images: int, epochs: int, shared: int, workdir: str, echo, cuda: bool = True
) -> list[Figure]:
    """ResNet-18 trials through `bench run` on CIFAR-10 files written here: one trial holding
    the GPU, then `shared` trials of 1/shared GPU each (on a CPU, one CPU per trial)."""
    from pathlib import Path

    from bench.perf.gpu import BATCH, SECTION
    from bench.testing.writers import write_cifar10

    root = Path(workdir) / "cifar"
    write_cifar10(root, per_batch=max(2, images // 5), test=512)
    sweeps = {}
    for trials in (1, shared):
        echo(f"  {trials} bench trial(s) sharing the GPU ({1 / trials:.2f} each) ...")
        gpus = 1 / trials if cuda else 0.0
        sweeps[trials] = run_sweep(
            validate_benchmark(
                {
                    "name": f"perf-gpu-{trials}",
                    "models": ["resnet18"],
                    "datasets": [{"name": "cifar10", "root": str(root)}],
                    "search_space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}},
                    "search": {"trials": trials, "sampler": "random", "seed": 0},
                    "cv": {"folds": 2},
                    "evaluation": {"repeats": 1},
                    "budget": {"epochs": epochs, "batch_size": BATCH, "patience": 0},
                    "resources": {"gpus_per_worker": gpus, "cpus_per_worker": 1},
                    "output": workdir,
                },
                source="<bench perf>",
            )
        )
    one, many = sweeps[1], sweeps[shared]
    return [
        Figure(SECTION, "1 trial, whole GPU", one.throughput, "img/s", "samples / run wall"),
        Figure(
            SECTION,
            f"{shared} trials x {1 / shared:.2f} GPU",
            many.throughput,
            "img/s",
            "samples / run wall",
        ),
        Figure(
            SECTION, "sharing gain", many.throughput / one.throughput, "x", f"{shared} vs 1 trial"
        ),
    ]
