"""`bench perf`: every section in one invocation, the table printed and saved."""

from __future__ import annotations

import dataclasses
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.perf import baselines, batches, data, gpu, pairings, pipeline, sweeps
from bench.perf.figures import Figure, format_table, write_figures


@dataclass(frozen=True)
class PerfPlan:
    """How much of each section to run. --quick keeps every section, smaller."""

    sweep_sizes: tuple[int, ...] = (8, 16, 32)
    sweep_epochs: int = 2
    sweep_folds: int = 3
    quick_default: bool = False
    # Trainings replayed as one TorchTrainer each (spread over models and refits), the total
    # scaled up; 0: every one (each costs a worker-group start, 8-40 s on a small machine).
    naive_fits: int = 6
    tree_images: int = 5000
    pipeline_epochs: int = 5
    pairing_counts: tuple[int, ...] = (2, 20, 100)  # tiny pairings per run (section 6)
    # JPEG trees benchmarked at 224 px (section 8): memory, decode, cache and loader figures
    data_sizes: tuple[int, ...] = (6000, 24000)
    # `--set` keys on top of --quick's scaled-down default benchmark (section 2); the tests
    # scale it down further
    default_changes: tuple[tuple[str, Any], ...] = ()


FULL = PerfPlan()
QUICK = PerfPlan(
    sweep_epochs=1,
    sweep_folds=2,
    quick_default=True,
    naive_fits=2,
    tree_images=2000,
    pipeline_epochs=3,
    pairing_counts=(2, 6),
    data_sizes=(1000, 4000),
)


def machine() -> str:
    import os

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.node()}: {os.cpu_count()} CPUs, {device}, torch {torch.__version__}"


def gpu_section(quick: bool, workdir: str, echo) -> list[Figure]:
    """bench's trial code against a plain loop (no Ray; `python -m bench.perf.gpu` runs the
    same), then trials sharing the GPU through `bench run`. Skipped without CUDA."""
    import torch

    figures = gpu.measure(quick, echo)
    if torch.cuda.is_available():
        plan = gpu.plan_for(quick)
        figures += sweeps.gpu_sharing(plan.images, plan.epochs, plan.shared_trials, workdir, echo)
    return figures


def run_perf(
    quick: bool = False,
    output: str = "results/perf",
    echo: Callable[[str], None] = print,
    address: str | None = None,
    naive_fits: int | None = None,
    plan: PerfPlan | None = None,
) -> tuple[list[Figure], str]:
    """Measure every section; returns the figures and the Parquet file they were saved to.
    `plan` replaces the quick or full sizes (the tests run every section smaller still)."""
    from bench.driver import connect

    plan = plan or (QUICK if quick else FULL)
    if naive_fits is not None:
        plan = dataclasses.replace(plan, naive_fits=naive_fits)
    started = time.perf_counter()
    connect(address)
    workdir = tempfile.mkdtemp(prefix="bench-perf-")
    figures: list[Figure] = []
    try:
        echo("per-trial overhead and growth:")
        figures += sweeps.measure(
            list(plan.sweep_sizes), plan.sweep_epochs, plan.sweep_folds, workdir, echo
        )
        echo("sweep ratio:")
        figures += baselines.measure(
            plan.quick_default,
            workdir,
            echo,
            plan.naive_fits or None,
            dict(plan.default_changes),
        )
        echo("input pipeline:")
        figures += pipeline.measure(plan.tree_images, plan.pipeline_epochs, workdir, echo)
        echo("GPU:")
        figures += gpu_section(quick, workdir, echo)
        echo("scale in pairings:")
        figures += pairings.measure(list(plan.pairing_counts), workdir, echo)
        echo("reproducible search:")
        figures += batches.measure(quick, workdir, echo)
        echo("real-size data:")
        figures += data.measure(list(plan.data_sizes), workdir, echo)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures.sort(key=lambda f: f.section)
    path = write_figures(figures, output, machine(), "quick" if quick else "full")
    echo("")
    echo(f"bench perf ({'quick' if quick else 'full'}) on {machine()}")
    echo(format_table(figures))
    echo(f"\nsaved: {path}  ({time.perf_counter() - started:.0f} s)")
    return figures, str(path)
