"""Whether a definition may continue a run that was made with another: an extended run keeps
its finished rows and adds to them, so everything those rows were measured under must be the
same (splits, seeds, the search space, the budget, the metric); only where trials run, how
many there are and which pairings exist may change."""

from __future__ import annotations

from typing import Any

from bench.config.loading import dotted_keys
from bench.config.schema import BenchmarkConfig, DatasetConfig
from bench.errors import ConfigError
from bench.redaction import redact

# Keys that may differ: where and how the trials run, and how intervals are drawn (recomputed
# for every row when the run's files are merged again).
FREE = (
    "name",
    "output",
    "resources",
    "model_resources",
    "search.max_concurrent_trials",
    "search.retries",
    "budget.checkpoint_every",
    "evaluation.bootstrap",
)
# Keys that may grow (more trials, more repeats), never shrink.
GROWING = ("search.trials", "evaluation.repeats")
# Compared pairing by pairing below: a model or dataset added is simply run.
PER_PAIRING = ("models", "datasets", "search_space", "overrides", "model_budgets")
BUDGET_FIELDS = ("epochs", "batch_size", "patience")


def check_extension(saved: BenchmarkConfig, new: BenchmarkConfig, source: str) -> None:
    """Refuse, in one line naming the key, a `new` definition whose rows would not compare
    with those of the run made with `saved`."""
    old_flat = dotted_keys(saved.model_dump(mode="json"))
    new_flat = dotted_keys(new.model_dump(mode="json"))
    for key in sorted(old_flat.keys() | new_flat.keys()):
        if _under(key, FREE + PER_PAIRING):
            continue
        _compare(key, old_flat.get(key), new_flat.get(key), source)
    old_datasets = {d.key: d for d in saved.datasets}
    for dataset in new.datasets:
        if dataset.key in old_datasets:
            _compare_dataset(old_datasets[dataset.key], dataset, source)
    for model, dataset in new.pairings():
        if model in saved.models and dataset.key in old_datasets:
            _compare_pairing(saved, new, model, dataset.key, source)


def _compare(key: str, old: Any, new: Any, source: str, grows: bool = False) -> None:
    if (grows or key in GROWING) and old is not None and new is not None:
        if new < old:
            raise ConfigError(
                f"{source}: {key} is {new}, fewer than the run's {old}; an extended run can "
                f"only add to it: ask for {old} or more"
            )
        return
    if _as_stored(old) != _as_stored(new):
        raise ConfigError(
            f"{source}: {_change(key, old, new)}; the new rows would not compare with the "
            f"run's: put it back, or start a new run (drop --resume)"
        )


def _as_stored(value: Any) -> Any:
    """A value as config.yaml stores it (credentials in URIs masked), so a path given with its
    secret again compares equal to the run's masked one."""
    return redact(value) if isinstance(value, str) else value


def _compare_dataset(old: DatasetConfig, new: DatasetConfig, source: str) -> None:
    before = old.model_dump(mode="json")
    after = new.model_dump(mode="json")
    for option in sorted(before.keys() | after.keys()):
        _compare(f"datasets.{new.key}.{option}", before.get(option), after.get(option), source)


def _compare_pairing(
    saved: BenchmarkConfig, new: BenchmarkConfig, model: str, dataset: str, source: str
) -> None:
    """The pairing's effective space and budget (shared, overridden or its model's own)."""
    old_space = {k: v.model_dump(mode="json") for k, v in saved.space_for(model, dataset).items()}
    new_space = {k: v.model_dump(mode="json") for k, v in new.space_for(model, dataset).items()}
    for param in sorted(old_space.keys() | new_space.keys()):
        where = f"the search space of {model}@{dataset}: {param}"
        _compare(where, old_space.get(param), new_space.get(param), source)
    old_budget, new_budget = saved.budget_for(model), new.budget_for(model)
    prefix = f"model_budgets.{model}" if model in new.model_budgets else "budget"
    for field in BUDGET_FIELDS:
        key = f"{prefix}.{field}"
        _compare(key, getattr(old_budget, field), getattr(new_budget, field), source)
    key = f"model_budgets.{model}.trials" if model in new.model_budgets else "search.trials"
    _compare(key, old_budget.trials, new_budget.trials, source, grows=True)


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(f"{p}.") for p in prefixes)


def _change(key: str, old: Any, new: Any) -> str:
    if old is None:
        return f"{key} is {new}, the run left it unset"
    if new is None:
        return f"{key} is unset, the run had {old}"
    return f"{key} is {new}, the run had {old}"
