"""A table's row type (a dict holding exactly the table's columns; bench.results.schema builds
one per table) and the JSON that its text cells hold."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa


class RowError(ValueError):
    """A row without exactly its table's columns: a bug in the code that built it."""


class RowType:
    """The row of one table: a dict holding exactly the table's columns (in any order).

    `ROWS["folds"](run_id=..., ...)` checks the columns and returns the dict; a missing or an
    extra column raises RowError naming them. Rows stay plain dicts: cheap for the thousands
    of prediction rows of a run, the same shape a Parquet read gives back, and a builder may
    still set a column it gave as None (a trial's compute, known only to its caller)."""

    __slots__ = ("table", "columns", "_names")

    def __init__(self, table: str, schema: pa.Schema) -> None:
        self.table = table
        self.columns: tuple[str, ...] = tuple(schema.names)
        self._names = frozenset(schema.names)

    def __call__(self, /, **fields: Any) -> dict[str, Any]:
        self.check(fields)
        return fields

    def check(self, row: Mapping[str, Any]) -> None:
        """Raise RowError unless `row` has exactly this table's columns."""
        if row.keys() != self._names:
            missing = sorted(self._names - row.keys())
            extra = sorted(row.keys() - self._names)
            problems = []
            if missing:
                problems.append(f"missing columns {missing}")
            if extra:
                problems.append(f"columns not in the schema {extra}")
            raise RowError(f"{self.table} row: {'; '.join(problems)}")

    def __repr__(self) -> str:
        return f"RowType({self.table!r})"


def dumps(value: Any) -> str:
    """JSON for params and per-class columns: stable key order, NaN stored as null."""
    return json.dumps(_nan_to_none(value), sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars and arrays
    raise TypeError(f"cannot store {type(value).__name__} in a results file")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value
