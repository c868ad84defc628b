"""Checks that need only the definition and the datasets' labels, run before Ray starts and
before a run folder exists: a run that cannot work stops in one line and leaves nothing behind.

Labels are read without decoding images (each dataset's `labels` in the registry), and each
repeat's CV pool is drawn exactly as the run will draw it (bench.data.splits)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from bench.config import BenchmarkConfig
from bench.data.splits import check_fold_count, holdout_split
from bench.environment import gpu_names, only_torch_lists_the_gpus
from bench.errors import BenchError, ConfigError
from bench.registry import DATASETS
from bench.seeds import split_seed


def check_before_start(config: BenchmarkConfig, local: bool) -> None:
    """Every check the definition alone allows; `local`: bench will start its own Ray
    instance on this machine, whose resources are known before it starts."""
    check_fold_counts(config)
    if local:
        check_resources(config, [local_resources()], local=True)


def check_fold_counts(config: BenchmarkConfig) -> None:
    """cv.folds against the smallest class of every repeat's CV pool, per dataset."""
    cv = config.cv
    for i, dataset in enumerate(config.datasets):
        read = DATASETS.get(dataset.name).labels
        found = read(dataset) if read is not None else None
        if found is None:  # files not there yet: loading the dataset will say so
            continue
        labels, official_test = found
        for repeat in range(config.evaluation.repeats):
            pool = labels
            if not official_test:
                try:
                    train, _ = holdout_split(labels, cv.test_fraction, split_seed(cv.seed, repeat))
                except ValueError as exc:  # a class too small to split at all
                    raise ConfigError(
                        f"datasets[{i}] ({dataset.key}): cannot hold out a stratified test "
                        f"split ({exc}); add images to the smallest class or drop it"
                    ) from None
                pool = labels[train]
            try:
                check_fold_count(pool, cv.folds)
            except ConfigError as exc:
                raise ConfigError(f"datasets[{i}] ({dataset.key}): {exc}") from None


def local_resources() -> dict[str, float]:
    """What a local Ray instance started here will have: this process's CPUs and the GPUs
    CUDA sees (Ray counts them the same way)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"CPU": float(cpus or 1), "GPU": float(len(gpu_names()))}


def check_resources(
    config: BenchmarkConfig, nodes: Sequence[Mapping[str, float]], local: bool
) -> str | None:
    """A trial worker that fits on no node waits forever: a GPU asked of a CPU-only cluster,
    more CPUs than any machine has. On a local instance bench starts that is an error; a
    cluster's autoscaler may still add such a node, so there it is a warning (returned)."""
    for model in config.models:
        resources, own = config.resources_for(model), config.model_resources.get(model)
        for name, unit in (("gpus_per_worker", "GPU"), ("cpus_per_worker", "CPU")):
            wanted, most = getattr(resources, name), max((n.get(unit, 0) for n in nodes), default=0)
            if wanted <= most:
                continue
            from_model = own is not None and getattr(own, name) is not None
            key = f"model_resources.{model}.{name}" if from_model else f"resources.{name}"
            has = f"at most {most:g} {unit}s per node" if most else f"no {unit}"
            problem = f"{key} is {wanted:g} but the Ray cluster has {has}"
            fix = f"--set {key}={most:g}" + (" to run on CPUs" if unit == "GPU" else "")
            if local:
                raise BenchError(f"{problem}; use {fix}")
            return f"warning: {problem}: trials wait until such a node joins; or use {fix}"
    return None


def import_torch_first(config: BenchmarkConfig, resuming: bool) -> None:
    """A driver imports no torch (~270 MB) unless the run needs it there: a dataset read
    through torchvision or resized by torch, a resumed run's checkpoints, GPUs only torch can
    list. Then it imports it now, before Ray starts: torch imported once a run's libraries
    have loaded can fail to load at all (seen in a Ray Job's driver on a two-node cluster:
    "Intel oneMKL FATAL ERROR: Cannot load libtorch_cpu.so", and the process ended)."""
    loaded_with_torch = any(DATASETS.get(d.name).needs_torch(d) for d in config.datasets)
    if resuming or loaded_with_torch or only_torch_lists_the_gpus():
        import torch  # noqa: F401
