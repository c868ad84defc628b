"""`bench run --resume` with no folder: the newest run is found by its own config.yaml, never
by folder order alone (a report folder written beside the runs is not a run)."""

import pytest

from bench.errors import BenchError
from bench.resuming import find_resumable


def test_the_newest_run_is_found_by_its_config_not_by_folder_order(tmp_path):
    older, newer = (tmp_path / "b" / f"2026010{i}-000000-aaaa" for i in (1, 2))
    for run in (older, newer):
        run.mkdir(parents=True)
        (run / "config.yaml").write_text("name: b\n")
    (tmp_path / "b" / "report").mkdir()  # `bench report results/b` writes here
    (tmp_path / "b" / "report" / "leaderboard.parquet").write_bytes(b"")
    assert find_resumable(str(tmp_path), "b").path == str(newer)
    (newer / "config.yaml").unlink()  # a folder that never became a run
    assert find_resumable(str(tmp_path), "b").path == str(older)


def test_no_run_at_all_is_a_clear_error(tmp_path):
    (tmp_path / "b" / "report").mkdir(parents=True)
    with pytest.raises(BenchError, match="no earlier run of 'b' to resume; drop --resume"):
        find_resumable(str(tmp_path), "b")
