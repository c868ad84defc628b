"""Checks of a parsed definition that the schema cannot make alone: registry names, the search
spaces against the declared hyperparameters (names, ranges, choices), and pydantic's errors
turned into messages that name the file, the key and the fix."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from bench.config.schema import BenchmarkConfig, ParamSpec, SearchSpace
from bench.errors import BenchError, ConfigError, closest
from bench.hparams import TRAINING_PARAMS, Hyperparameter
from bench.registry import DATASETS, MODELS
from bench.results.names import part_name


def check_names(config: BenchmarkConfig, source: str) -> None:
    """Expand model patterns in place, then check datasets, spaces and per-model entries."""
    _expand_models(config, source)
    keys = _check_datasets(config, source)
    _check_space(config.search_space, declared(), source, "search_space")
    _check_model_entries(config, source)
    for key, space in config.overrides.items():
        model, _ = _override_target(key, keys, source)
        _check_space(space, declared(model or None), source, f"overrides.{key}")
    if config.search.sampler == "grid":
        _check_grid(config, source)


def declared(model: str | None = None) -> dict[str, Hyperparameter]:
    """The training loop's declarations and the model's (None: every registered model's)."""
    out = dict(TRAINING_PARAMS)
    for name in [model] if model else MODELS.names():
        for key, param in MODELS.get(name).hparams.items():
            out.setdefault(key, param)
    return out


def _expand_models(config: BenchmarkConfig, source: str) -> None:
    expanded: list[str] = []
    for i, pattern in enumerate(config.models):
        try:
            expanded += [m for m in MODELS.expand(pattern) if m not in expanded]
        except BenchError as exc:
            raise ConfigError(f"{source}: models[{i}]: {exc}") from None
    config.models = expanded


def _check_datasets(config: BenchmarkConfig, source: str) -> list[str]:
    """Each dataset's name and options; the datasets' keys."""
    for i, dataset in enumerate(config.datasets):
        where = f"{source}: datasets[{i}]"
        try:
            spec = DATASETS.get(dataset.name)
        except BenchError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        for option in sorted(dataset.options_set() - spec.options):
            allowed = ", ".join(sorted(spec.options)) or "none"
            raise ConfigError(
                f"{where}: dataset '{dataset.name}' takes no option '{option}' "
                f"(it takes: {allowed}); remove it"
            )
        for option in sorted(spec.required - dataset.options_set()):
            raise ConfigError(f"{where}: dataset '{dataset.name}' needs '{option}'; add it")
    _check_distinct_files(config, source)
    return [d.key for d in config.datasets]


def _check_distinct_files(config: BenchmarkConfig, source: str) -> None:
    """Each dataset gets files of its own in the run folder (named by part_name of its key:
    the name, and a tree's folder name): two entries that would share them are refused."""
    first: dict[str, int] = {}
    for i, dataset in enumerate(config.datasets):
        j = first.setdefault(part_name(dataset.key), i)
        if j == i:
            continue
        other = config.datasets[j]
        if (other.name, other.path) == (dataset.name, dataset.path):
            raise ConfigError(
                f"{source}: datasets[{i}]: the same dataset as datasets[{j}]; list it once"
            )
        raise ConfigError(
            f"{source}: datasets[{j}] ({other.path}) and datasets[{i}] ({dataset.path}) would "
            f"share the run's files named '{part_name(dataset.key)}' (a tree is named by its "
            "folder); rename one of the folders"
        )


def _check_model_entries(config: BenchmarkConfig, source: str) -> None:
    # Entries for registered models outside `models` are kept but unused, so `--models mlp`
    # can narrow a benchmark without editing its file; unknown names are typos.
    for model in config.model_budgets:
        _check_model_name(model, source, f"model_budgets.{model}")
    for model in config.model_resources:
        _check_model_name(model, source, f"model_resources.{model}")
        try:
            config.resources_for(model)
        except ValidationError as exc:  # a combination the shared resources allow, this not
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{source}: model_resources.{model}: {message}") from None


def _check_grid(config: BenchmarkConfig, source: str) -> None:
    for model, dataset in config.pairings():
        for name, spec in config.space_for(model, dataset.key).items():
            if spec.type not in ("choice", "fixed"):
                raise ConfigError(
                    f"{source}: search_space.{name}: the grid sampler takes only choice lists "
                    f"(got {spec.type}); list the values or use sampler: tpe"
                )


def _check_model_name(model: str, source: str, where: str) -> None:
    if model not in MODELS:
        raise ConfigError(
            f"{source}: {where}: unknown model"
            f"{closest(model, MODELS.names())}; use a name from `bench models`"
        )


def _override_target(key: str, datasets: list[str], source: str) -> tuple[str, str]:
    """(model, dataset) an overrides key names; either may be empty."""
    model, _, dataset = key.partition("@")
    if model:
        _check_model_name(model, source, f"overrides.{key}")
    if "@" in key and dataset not in datasets:
        raise ConfigError(
            f"{source}: overrides.{key}: no dataset '{dataset}' in this benchmark"
            f"{closest(dataset, datasets)}; use one of: {', '.join(datasets)}"
        )
    return model, dataset


def _check_space(
    space: SearchSpace, known: dict[str, Hyperparameter], source: str, where: str
) -> None:
    for name, spec in space.items():
        if name not in known:
            raise ConfigError(
                f"{source}: {where}.{name}: unknown hyperparameter{closest(name, known)} "
                f"(known: {', '.join(sorted(known))})"
            )
        param = known[name]
        _check_range(param, spec, source, where)
        allowed = list(param.choices) if param.choices is not None else None
        for value in spec.grid_values() if allowed and spec.type in ("choice", "fixed") else []:
            if value not in allowed:
                raise ConfigError(
                    f"{source}: {where}.{name}: unknown {name} '{value}'"
                    f"{closest(str(value), allowed)} (known: {', '.join(allowed)})"
                )


def _check_range(param: Hyperparameter, spec: ParamSpec, source: str, where: str) -> None:
    if param.bounds is None:
        return
    low, high = param.bounds
    if spec.type in ("choice", "fixed"):
        values = spec.grid_values()
    else:
        values = [spec.low, spec.high]
    for value in values:
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not low <= number <= high:
            raise ConfigError(
                f"{source}: {where}.{param.name}: {value!r} is outside [{low:g}, {high:g}]; "
                f"give a number in that range"
            )


def describe(error: dict[str, Any], source: str) -> str:
    """One pydantic error as a message for people: where, what, and the fix."""
    loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"])
    loc = loc.replace(".[", "[")
    if error["type"] == "extra_forbidden":
        *parent, key = error["loc"]
        known = _known_keys(BenchmarkConfig, list(parent))
        hint = closest(str(key), known) or f" (known: {', '.join(sorted(known))})"
        return f"{source}: {loc}: unknown key{hint}; remove or rename it"
    if error["type"] == "missing":
        return f"{source}: {loc}: required key is missing; add it"
    if error["type"] == "too_short" and error["loc"] in (("models",), ("datasets",)):
        return f"{source}: {loc}: the list is empty; name at least one"
    if error["type"] == "string_pattern_mismatch" and error["loc"] == ("name",):
        return (
            f"{source}: name: {error.get('input')!r} cannot name the run's folder; use "
            "letters, digits, '_', '-' and '.' (not only dots), with no '/'"
        )
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    named = isinstance(got, str) and repr(got) in message  # the message quotes it already
    shown = "" if isinstance(got, (dict, list)) or got is None or named else f" (got {got!r})"
    return f"{source}: {loc}: {message}{shown}"


def _known_keys(model: Any, loc: list[Any]) -> list[str]:
    """Field names of the config class found at `loc` (list indices and dict keys skipped)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
        else:  # list index or dict key: step into the element type
            args = [a for a in typing.get_args(_unwrap(current)) if a is not type(None)]
            current = args[-1] if args else current
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated down to the config class, if there is one."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        models = [
            a
            for a in typing.get_args(annotation)
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        return models[0] if models else annotation
    return annotation
