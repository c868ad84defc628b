import pyarrow.parquet as pq
import pytest

from bench.errors import BenchError
from bench.results.schema import SCHEMA_VERSION, RowError
from bench.results.store import RunStore
from bench.testing.rows import sparse_row


def test_writes_are_atomic_and_versioned(tmp_path):
    store = RunStore.create(str(tmp_path), "b", "run1")
    store.write_table("folds", [sparse_row("folds", model="mlp", fold=0)])
    files = sorted(p.name for p in (tmp_path / "b" / "run1").iterdir())
    assert files == ["folds.parquet"]  # no temporary file left behind
    meta = pq.read_table(tmp_path / "b" / "run1" / "folds.parquet").schema.metadata
    assert meta[b"bench.schema_version"] == str(SCHEMA_VERSION).encode()
    assert store.read_table("folds.parquet").num_rows == 1


def test_a_row_short_of_a_column_is_refused_not_written(tmp_path):
    store = RunStore.create(str(tmp_path), "b", "run1")
    with pytest.raises(RowError, match="folds row: missing columns"):
        store.write_table("folds", [{"model": "mlp", "fold": 0}])
    assert not store.exists("folds.parquet")


def test_a_relative_run_folder_is_held_as_an_absolute_path(tmp_path, monkeypatch):
    """Tune and the trial actors get the store's uri: a relative one broke a resume typed as
    `--resume results/b/run1` (pyarrow: URI has empty scheme)."""
    RunStore.create(str(tmp_path / "results"), "b", "run1")
    monkeypatch.chdir(tmp_path)
    store = RunStore("results/b/run1")
    assert store.uri == store.path == str(tmp_path / "results" / "b" / "run1")
    assert store.url("tune") == str(tmp_path / "results" / "b" / "run1" / "tune")
    uri = f"file://{tmp_path}/results/b/run1"  # a URI keeps its scheme (s3:// alike)
    assert RunStore(uri).uri == uri


def test_a_run_folder_is_never_reused(tmp_path):
    RunStore.create(str(tmp_path), "b", "run1")
    with pytest.raises(BenchError, match="already exists"):
        RunStore.create(str(tmp_path), "b", "run1")


def test_output_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="output folder is not writable.*set output:"):
        RunStore.create(str(blocker / "results"), "b")
