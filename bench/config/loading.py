"""Reading a benchmark definition: YAML, `--set` overrides, validation, and back to YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bench.config.checks import check_names, describe
from bench.config.schema import (
    BenchmarkConfig,
)
from bench.errors import ConfigError


def load_benchmark(path: str | Path, overrides: dict[str, Any] | None = None) -> BenchmarkConfig:
    """Read, merge CLI overrides into, and validate a benchmark definition."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such benchmark file; pass a YAML path (see search_spaces/)")
    try:
        raw = yaml.load(path.read_bytes().decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: malformed YAML ({problem}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (name, models, datasets, ...)")
    raw.setdefault("name", path.stem)
    apply_overrides(raw, overrides or {})
    return validate_benchmark(raw, source=str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, except that a key given twice in one mapping is an error
    (PyYAML keeps the last one silently: `models:` written twice ran only the second list)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, (str, int, float, bool)):
            continue  # an unhashable key is construct_mapping's to refuse
        if key in seen:
            raise yaml.constructor.ConstructorError(
                problem=f"key '{key}' appears twice in one mapping; keep one",
                problem_mark=key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    """CLI flags onto the raw mapping: keys are dotted paths such as `search.trials`; a number
    indexes a list (`datasets.0.path`)."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        node: Any = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = _child(node, key, dotted)
        if isinstance(node, list):
            node[_index(node, leaf, dotted)] = value
        elif isinstance(node, dict):
            node[leaf] = value
        else:
            raise ConfigError(f"--set {dotted}: '{leaf}' is inside a plain value; fix the key")


def dotted_keys(value: Any, prefix: str = "") -> dict[str, Any]:
    """A definition's values by dotted key (`search.trials`, `datasets.0.name`), the keys
    `apply_overrides` takes: mappings, and lists holding mappings or lists, are descended;
    other lists are values."""
    nested = isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
    if not (isinstance(value, dict) or nested):
        return {prefix: value}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    out: dict[str, Any] = {}
    for key, inner in items:
        out.update(dotted_keys(inner, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _child(node: Any, key: str, dotted: str) -> Any:
    if isinstance(node, list):
        index = _index(node, key, dotted)
        if isinstance(node[index], str):  # a dataset or model given by name only
            node[index] = {"name": node[index]}
        return node[index]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {dotted}: '{key}' is inside a plain value; fix the key")
    if node.get(key) is None:
        node[key] = {}
    return node[key]


def _index(node: list[Any], key: str, dotted: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(
            f"--set {dotted}: '{key}' is not an index of a {len(node)}-entry list; "
            f"use 0 to {len(node) - 1}"
        )
    return int(key)


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set key.path=value` flags: the value is read as YAML (numbers, lists, mappings)."""
    out: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {text}: expected KEY=VALUE such as search.trials=4")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {text}: the value is not valid YAML; quote it") from None
    return out


def validate_benchmark(raw: dict[str, Any], source: str = "<config>") -> BenchmarkConfig:
    try:
        config = BenchmarkConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc.errors()[0], source)) from None
    check_names(config, source)
    return config


def to_yaml(config: BenchmarkConfig) -> str:
    """The resolved definition (defaults filled in), loadable again by `load_benchmark`.
    Datasets keep only the options that were given: each dataset takes its own subset."""
    raw = config.model_dump(mode="json", exclude_none=True)
    raw["datasets"] = [d.model_dump(mode="json", exclude_unset=True) for d in config.datasets]
    return yaml.safe_dump(raw, sort_keys=False)
