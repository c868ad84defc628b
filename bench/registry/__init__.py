"""Registries of models and datasets: register, list by pattern, build. No torch at import time."""

from bench.registry._registry import Registry
from bench.registry.datasets import DATASETS, DatasetSpec, load_dataset, load_replicates
from bench.registry.models import MODELS, ModelSpec

__all__ = [
    "DATASETS",
    "MODELS",
    "DatasetSpec",
    "ModelSpec",
    "Registry",
    "load_dataset",
    "load_replicates",
]
