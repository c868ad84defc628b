"""What reproducible search costs: one small benchmark with proposals in fixed batches
(`search.batch`, the default: the same seed gives the same search whatever the order trials
finish in) against proposals made whenever a slot frees (`search.batch: 0`)."""

from __future__ import annotations

from bench.config import BenchmarkConfig, validate_benchmark
from bench.perf.figures import Figure

SECTION = "7. reproducible search (fixed batches of proposals)"


def config(batch: int, trials: int, epochs: int, workdir: str) -> BenchmarkConfig:
    return validate_benchmark(
        {
            "name": f"perf-batch-{batch}",
            "models": ["mlp", "simple_cnn"],
            "datasets": ["digits"],
            "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
            "search": {"trials": trials, "seed": 0, "batch": batch},
            "cv": {"folds": 2, "seed": 0},
            "evaluation": {"repeats": 1},
            "budget": {"epochs": epochs, "batch_size": 64},
            "output": workdir,
        },
        source="<bench perf>",
    )


def measure(quick: bool, workdir: str, echo) -> list[Figure]:
    from bench.runner import run_benchmark

    trials, epochs = (4, 2) if quick else (12, 4)
    seconds = {}
    for batch in (0, 4):
        echo(f"  {2 * trials} trials, search.batch {batch} ...")
        summary = run_benchmark(config(batch, trials, epochs, workdir), echo=lambda line: None)
        seconds[batch] = summary.seconds
    work = f"mlp + simple_cnn on digits, {trials} trials x 2 folds x {epochs} epochs each"
    return [
        Figure(SECTION, "batch 0 (as slots free)", seconds[0], "s", work),
        Figure(SECTION, "batch 4 (default)", seconds[4], "s", "same seed, same search"),
        Figure(SECTION, "batch 4 / batch 0", seconds[4] / seconds[0], "x", "wall time"),
    ]
