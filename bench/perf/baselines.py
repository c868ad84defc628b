"""The sweep ratio: the default benchmark's work through bench, versus the same trainings
in a plain PyTorch script (one process, one after another, all the machine's threads), versus
the naive Ray pattern (a fresh TorchTrainer for every trial and fold, and for the refit).

"The same trainings": the plain and naive runs replay the trials bench ran (their parameters
from trials.parquet, the same folds, seeds and early stopping) and the refit bench chose."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch

from bench import driver
from bench.config import BenchmarkConfig, load_benchmark
from bench.default import default_benchmark
from bench.perf.figures import Figure
from bench.perf.profile import CpuSampler
from bench.plan import resolve_pairing

SECTION = "2. sweep ratio (default benchmark's work)"


@dataclasses.dataclass(frozen=True)
class Fit:
    """One training a run performed: a trial's fold (fold index) or a refit (fold None)."""

    model: str
    dataset: str
    params: dict[str, Any]
    fold: int | None
    epochs: int = 0


def quick_default(workdir: str, changes: Mapping[str, Any] | None = None) -> BenchmarkConfig:
    """The default definition scaled down for --quick (ResNet-18 left out), with `changes`
    (`--set` keys) on top."""
    return load_benchmark(
        default_benchmark(),
        {
            "models": ["mlp", "simple_cnn"],
            "search.trials": 4,
            "budget.epochs": 5,
            "output": workdir,
            **(changes or {}),
        },
    )


def full_default(workdir: str) -> BenchmarkConfig:
    return load_benchmark(default_benchmark(), {"output": workdir})


def run_bench(config: BenchmarkConfig) -> tuple[float, list[Fit], Path]:
    """bench's own run: (wall seconds, every training it did, the run folder)."""
    from bench.runner import run_benchmark

    summary = run_benchmark(config, echo=lambda line: None)
    folder = Path(summary.store.path)
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    # every repeat's refit (the plain loop trains them all on repeat 0's data: the same work)
    board = pq.read_table(folder / "replicates.parquet").to_pylist()
    folds = config.cv.folds
    fits = [
        Fit(t["model"], t["dataset"], json.loads(t["params"]), k)
        for t in trials
        if t["status"] == "ok"
        for k in range(folds)
    ]
    fits += [
        Fit(b["model"], b["dataset"], json.loads(b["best_params"]), None, int(b["refit_epochs"]))
        for b in board
        if b["status"] == "ok"
    ]
    return summary.seconds, fits, folder


def _datasets(config: BenchmarkConfig) -> dict[str, Any]:
    from bench.registry import load_dataset

    return {
        d.key: load_dataset(d, config.cv.folds, config.cv.test_fraction, config.cv.seed)
        for d in config.datasets
    }


def _context(config: BenchmarkConfig, fit: Fit):
    return resolve_pairing(config, "perf", fit.model, fit.dataset)


def run_plain(config: BenchmarkConfig, fits: list[Fit], threads: int) -> float:
    """The same trainings in this process, one after another: the limit to measure against.
    A trial's folds train in lockstep exactly as in bench (cross_validate_trial)."""
    from bench.train.task import cross_validate_trial, refit_pairing

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        datasets = _datasets(config)
        done_trials = set()
        for fit in fits:
            plan, data = _context(config, fit), datasets[fit.dataset]
            if fit.fold is None:
                refit_pairing(plan, data, fit.params, fit.epochs)
                continue
            key = (fit.model, fit.dataset, json.dumps(fit.params, sort_keys=True))
            if key not in done_trials:  # one call trains all of a trial's folds
                done_trials.add(key)
                cross_validate_trial(plan, data, fit.params)
    finally:
        torch.set_num_threads(previous)
    return time.perf_counter() - started


def run_naive(config: BenchmarkConfig, fits: list[Fit], workdir: str) -> list[float]:
    """A fresh single-worker TorchTrainer for each fit, one after another; seconds per fit."""
    from bench.train.ray_train import DistributedJob, run_distributed

    datasets = _datasets(config)
    refs: dict[tuple[str, int | None], Any] = {}
    seconds = []
    for i, fit in enumerate(fits):
        data = datasets[fit.dataset]
        key = (fit.dataset, fit.fold)
        if key not in refs:
            one_fold = (
                data
                if fit.fold is None
                else dataclasses.replace(
                    data, folds=[data.folds[fit.fold]], fold_stats=[data.fold_stats[fit.fold]]
                )
            )
            refs[key] = driver.put(one_fold)
        mode = "refit" if fit.fold is None else "cv"
        job = DistributedJob(_context(config, fit), refs[key], fit.params, mode, fit.epochs)
        started = time.perf_counter()
        run_distributed(
            job,
            workers=1,
            cpus_per_worker=1,
            gpus_per_worker=0,
            storage_path=str(Path(workdir) / "naive"),
            name=f"naive-{i}",
            in_tune=False,
        )
        seconds.append(time.perf_counter() - started)
    return seconds


def measure(
    quick: bool,
    workdir: str,
    echo,
    naive_sample: int | None,
    changes: Mapping[str, Any] | None = None,
) -> list[Figure]:
    config = quick_default(workdir, changes) if quick else full_default(workdir)
    echo(f"  bench run of {'a scaled-down' if quick else 'the'} default benchmark ...")
    with CpuSampler() as cpu:
        bench_wall, fits, _ = run_bench(config)
    threads = int(driver.cluster_resources().get("CPU", 1))
    echo(f"  the same {len(fits)} trainings in plain PyTorch ({threads} threads) ...")
    plain_cpu = time.process_time()
    plain_wall = run_plain(config, fits, threads)
    plain_cpu = time.process_time() - plain_cpu
    sample = fits if naive_sample is None else _spread(fits, naive_sample)
    echo(f"  {len(sample)} of {len(fits)} trainings as one TorchTrainer each ...")
    naive_each = run_naive(config, sample, workdir)
    naive_wall = sum(naive_each) * len(fits) / len(sample)
    extrapolated = len(sample) < len(fits)
    trials = len({(f.model, f.dataset, json.dumps(f.params, sort_keys=True)) for f in fits})
    work = f"{trials} trials x {config.cv.folds} folds + refits, {len(config.models)} models"
    return [
        Figure(SECTION, "bench", bench_wall, "s", work),
        Figure(SECTION, "plain PyTorch, sequential", plain_wall, "s", "same trainings"),
        Figure(
            SECTION,
            "naive TorchTrainer per fit",
            naive_wall,
            "s",
            f"measured {len(sample)} of {len(fits)} fits, scaled" if extrapolated else "",
        ),
        Figure(
            SECTION,
            "naive start cost",
            float(sorted(naive_each)[len(naive_each) // 2]),
            "s/fit",
            "median wall of one TorchTrainer fit",
        ),
        Figure(
            SECTION, "bench / plain", bench_wall / plain_wall, "x", "target <= 1.0 (2-core CPU)"
        ),
        Figure(SECTION, "naive / bench", naive_wall / bench_wall, "x", "target >= 10"),
        *cpu_figures(cpu, bench_wall * threads, plain_cpu),
    ]


def cpu_figures(cpu: CpuSampler, available: float, plain_cpu: float) -> list[Figure]:
    """The profile of bench's run: CPU seconds per kind of process, against plain's."""
    if not cpu.available:
        return [Figure(SECTION, "CPU profile", math.nan, "", "skipped: no /proc here")]
    notes = {
        "trial actors": "training and refits, plus each actor's start and imports",
        "driver": "the search: Tune's controller, Optuna, dataset decoding, merging",
        "other": "idle Ray workers, anything else on the machine",
    }
    groups = cpu.by_group()
    figures = [
        Figure(SECTION, f"CPU: {group}", seconds, "CPU-s", notes.get(group, ""))
        for group, seconds in groups.items()
    ]
    figures.append(
        Figure(
            SECTION,
            "CPU: bench, all",
            sum(cpu.used().values()),
            "CPU-s",
            f"of {available:,.0f} CPU-s (wall x CPUs)",
        )
    )
    figures.append(Figure(SECTION, "CPU: plain PyTorch", plain_cpu, "CPU-s", "its process"))
    figures.append(
        Figure(
            SECTION,
            "CPU: trials + driver / plain",
            (groups["trial actors"] + groups["driver"]) / plain_cpu,
            "x",
            "training, refits and search against plain's; target <= 1.1",
        )
    )
    return figures


def _spread(fits: list[Fit], n: int) -> list[Fit]:
    """`n` fits spread over the list (every model and the refits get a share)."""
    if n >= len(fits):
        return fits
    step = len(fits) / n
    return [fits[int(i * step)] for i in range(n)]
