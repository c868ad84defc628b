"""The benchmark definition: one validated object merging what to run (models x datasets),
how to search (space, sampler, trials, CV) and on what budget (epochs, resources, output).

schema.py holds the pydantic models, checks.py the checks against the registries and the
declared hyperparameters, loading.py reading YAML and `--set` overrides. Errors name the file,
the key and the fix, with the closest known name suggested."""

from bench.config.extension import check_extension
from bench.config.loading import (
    apply_overrides,
    dotted_keys,
    load_benchmark,
    parse_assignments,
    to_yaml,
    validate_benchmark,
)
from bench.config.schema import (
    AshaConfig,
    BenchmarkConfig,
    Budget,
    BudgetConfig,
    CVConfig,
    DatasetConfig,
    EvaluationConfig,
    ModelBudget,
    ModelResources,
    ParamSpec,
    ResourcesConfig,
    SearchConfig,
    SearchSpace,
)

__all__ = [
    "AshaConfig",
    "BenchmarkConfig",
    "Budget",
    "BudgetConfig",
    "CVConfig",
    "DatasetConfig",
    "EvaluationConfig",
    "ModelBudget",
    "ModelResources",
    "ParamSpec",
    "ResourcesConfig",
    "SearchConfig",
    "SearchSpace",
    "apply_overrides",
    "check_extension",
    "dotted_keys",
    "load_benchmark",
    "parse_assignments",
    "to_yaml",
    "validate_benchmark",
]
