"""Scale in pairings: N tiny pairings in one `bench run` each (mlp and simple_cnn x N/2 copies
of a 600-image 16x16 ImageFolder; 2 trials, 2 folds, 1 epoch): wall, wall per pairing, peak
memory used on the whole machine (sampled), the Ray worker processes started during the run
and the distinct trial actors recorded in its rows. One scheduler and one pool of trial actors
serve the whole run, so memory and processes follow the cluster, not the number of pairings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from bench.config import BenchmarkConfig, validate_benchmark
from bench.perf.figures import Figure
from bench.perf.profile import CpuSampler, MemorySampler

SECTION = "6. scale in pairings (tiny pairings, one bench run each)"
CLASSES = ("a", "b", "c")
PER_CLASS = 200  # 600 images a copy
GIB = 2**30


def write_copies(root: Path, count: int) -> list[Path]:
    """`count` identical 16x16 RGB ImageFolder trees (600 PNGs each) under root."""
    from bench.testing.writers import write_image_tree

    first = write_image_tree(root / "copy000", CLASSES, per_class=PER_CLASS, size=16, seed=0)
    copies = [first]
    for i in range(1, count):
        target = root / f"copy{i:03d}"
        if not target.exists():
            shutil.copytree(first, target)
        copies.append(target)
    return copies


def tiny_config(copies: list[Path], workdir: str) -> BenchmarkConfig:
    return validate_benchmark(
        {
            "name": f"perf-pairings-{2 * len(copies)}",
            "models": ["mlp", "simple_cnn"],
            "datasets": [
                {"name": "imagefolder", "path": str(p), "image_size": 16, "channels": 3}
                for p in copies
            ],
            "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
            "search": {"trials": 2, "seed": 0},
            "cv": {"folds": 2, "seed": 0},
            "evaluation": {"repeats": 1},  # one refit a pairing: this section is about scale
            "budget": {"epochs": 1, "batch_size": 64},
            "output": workdir,
        },
        source="<bench perf>",
    )


def run_pairings(count: int, copies: list[Path], workdir: str) -> dict[str, float]:
    """One `bench run` of `count` tiny pairings, with its machine-wide figures."""
    from bench.runner import run_benchmark

    config = tiny_config(copies[: count // 2], workdir)
    with MemorySampler() as memory, CpuSampler() as cpu:
        summary = run_benchmark(config, echo=lambda line: None)
    folds = pq.read_table(f"{summary.store.path}/folds.parquet", columns=["worker_pid"])
    failed = [r for r in summary.leaderboard if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"a tiny pairing failed: {failed[0]['error']}")
    return {
        "wall": summary.seconds,
        "peak": memory.peak / GIB,
        "start": memory.start / GIB,
        "workers": cpu.workers_started(),
        "actors": len(set(folds.column("worker_pid").to_pylist())),
    }


def measure(sizes: list[int], workdir: str, echo) -> list[Figure]:
    copies = write_copies(Path(workdir) / "tiny-trees", max(sizes) // 2)
    runs = {}
    for count in sizes:
        echo(f"  {count} tiny pairings ...")
        runs[count] = run_pairings(count, copies, workdir)
    figures = []
    for count, run in runs.items():
        figures += [
            Figure(SECTION, f"{count} pairings: wall", run["wall"], "s"),
            Figure(
                SECTION,
                f"{count} pairings: per pairing",
                run["wall"] / count,
                "s",
                "target <= 1.5 s at the largest N",
            ),
            Figure(
                SECTION,
                f"{count} pairings: peak memory",
                run["peak"],
                "GiB",
                f"whole machine, sampled; {run['start']:.2f} GiB before the run",
            ),
            Figure(
                SECTION,
                f"{count} pairings: Ray workers started",
                run["workers"],
                "processes",
                "new ray:: worker processes during the run",
            ),
            Figure(
                SECTION,
                f"{count} pairings: trial actors",
                run["actors"],
                "processes",
                "distinct worker_pid in folds.parquet",
            ),
        ]
    small, large = min(runs), max(runs)
    figures.append(
        Figure(
            SECTION,
            f"peak memory {large} vs {small}",
            runs[large]["peak"] / runs[small]["peak"],
            "x",
            "target <= 1.5",
        )
    )
    return figures
