import pyarrow.parquet as pq
import pytest

from bench.errors import BenchError
from bench.results.schema import FOLDS, SCHEMA_VERSION, to_table
from bench.results.store import RunStore


def test_tables_follow_the_schema_and_refuse_unknown_columns():
    table = to_table("folds", [{"model": "mlp", "fold": 0, "accuracy": 0.5}])
    assert table.schema.names == FOLDS.names
    assert table.column("accuracy").to_pylist() == [0.5] and table.column("trial").null_count == 1
    with pytest.raises(ValueError, match="not in the schema"):
        to_table("folds", [{"modle": "mlp"}])


def test_writes_are_atomic_and_versioned(tmp_path):
    store = RunStore.create(str(tmp_path), "b", "run1")
    store.write_table("folds", [{"model": "mlp", "fold": 0}])
    files = sorted(p.name for p in (tmp_path / "b" / "run1").iterdir())
    assert files == ["folds.parquet"]  # no temporary file left behind
    meta = pq.read_table(tmp_path / "b" / "run1" / "folds.parquet").schema.metadata
    assert meta[b"bench.schema_version"] == str(SCHEMA_VERSION).encode()
    assert store.read_table("folds.parquet").num_rows == 1


def test_a_run_folder_is_never_reused(tmp_path):
    RunStore.create(str(tmp_path), "b", "run1")
    with pytest.raises(BenchError, match="already exists"):
        RunStore.create(str(tmp_path), "b", "run1")


def test_output_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="output folder is not writable.*set output:"):
        RunStore.create(str(blocker / "results"), "b")
