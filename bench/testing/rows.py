"""Rows for tests that care about a few columns."""

from __future__ import annotations

from typing import Any

from bench.results.schema import ROWS


def sparse_row(table: str, /, **fields: Any) -> dict[str, Any]:
    """A row of `table`: `fields`, and None in every other column. A run's builders never do
    this (they name every column); a test about one column need not."""
    return ROWS[table](**{**dict.fromkeys(ROWS[table].columns), **fields})
