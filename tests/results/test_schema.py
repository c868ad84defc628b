"""Every table's row type: a row holds exactly its table's columns, or it is refused with the
table and the columns named (parametrized over the schema, so a new table joins by itself)."""

import math
import re

import pytest

from bench.results.schema import ROWS, TABLES, RowError, make_row, to_table

NAMES = sorted(TABLES)


def _full(table: str) -> dict:
    """Every column, in reverse order (a row's key order is free), None but the first."""
    columns = list(reversed(TABLES[table].names))
    return {**dict.fromkeys(columns), TABLES[table].names[0]: "first"}


def test_every_table_has_its_row_type():
    assert sorted(ROWS) == NAMES
    for name, row_type in ROWS.items():
        assert row_type.table == name and row_type.columns == tuple(TABLES[name].names)


@pytest.mark.parametrize("table", NAMES)
def test_a_full_row_is_written_in_the_schemas_column_order(table):
    written = to_table(table, [make_row(table, **_full(table))])
    assert written.schema.names == TABLES[table].names and written.num_rows == 1
    assert written.column(0).to_pylist() == ["first"]
    assert all(written.column(c).null_count == 1 for c in TABLES[table].names[1:])


@pytest.mark.parametrize("table", NAMES)
def test_a_row_missing_a_column_is_refused_naming_the_table_and_column(table):
    column = TABLES[table].names[-1]
    row = _full(table)
    del row[column]
    message = f"^{table} row: missing columns {re.escape(str([column]))}$"
    with pytest.raises(RowError, match=message):
        make_row(table, **row)
    with pytest.raises(RowError, match=message):
        to_table(table, [_full(table), row])


@pytest.mark.parametrize("table", NAMES)
def test_a_row_with_an_extra_column_is_refused_naming_the_table_and_column(table):
    row = {**_full(table), "modle": "mlp"}
    message = f"^{table} row: columns not in the schema \\['modle'\\]$"
    with pytest.raises(RowError, match=message):
        make_row(table, **row)
    with pytest.raises(RowError, match=message):
        to_table(table, [row])


def test_both_faults_are_named_together():
    row = {**_full("folds"), "modle": "mlp"}
    del row["model"]
    with pytest.raises(RowError, match=r"missing columns \['model'\]; columns not in the schema"):
        to_table("folds", [row])


def test_nan_stays_nan_and_none_becomes_null():
    row = {**_full("folds"), "accuracy": math.nan, "log_loss": None}
    written = to_table("folds", [row])
    assert math.isnan(written.column("accuracy")[0].as_py())
    assert written.column("log_loss").null_count == 1
