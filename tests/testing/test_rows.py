import pytest

from bench.results.schema import TABLES, RowError
from bench.testing.rows import sparse_row


def test_a_sparse_row_names_every_column_and_nulls_the_rest():
    row = sparse_row("folds", model="mlp", fold=0)
    assert set(row) == set(TABLES["folds"].names)
    assert row["model"] == "mlp" and row["fold"] == 0 and row["trial"] is None


def test_a_sparse_row_still_refuses_an_unknown_column():
    with pytest.raises(RowError, match=r"folds row: columns not in the schema \['modle'\]"):
        sparse_row("folds", modle="mlp")
