"""What is not bad input still ends in one line: an exception mid-run leaves a run that
`--resume` completes and names the resume command (exit 1); a bug in any command is one line
too; --debug shows the traceback."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from bench import cli, runner
from bench.cli import main


def test_a_bug_in_a_command_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "models", broken)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("bench models failed: ZeroDivisionError: division by zero (a bug")
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "models"])


@pytest.mark.ray
@pytest.mark.slow
def test_an_exception_mid_run_leaves_a_run_that_resume_completes(
    ray_session, tmp_path, tiny_benchmark, monkeypatch, capsys
):
    """The final merge fails once (as a full disk would make it): one line naming the error
    and the resume command, exit 1, the trials saved; the resume finishes the run."""
    raw = tiny_benchmark(tmp_path, models=["mlp"], evaluation={"repeats": 1})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    real_merge, failed = runner.merge_parts, []

    def merge_fails_once(store, evaluation=None):
        if not failed:
            failed.append(True)
            raise OSError(28, "No space left on device")
        return real_merge(store, evaluation)

    monkeypatch.setattr(runner, "merge_parts", merge_fails_once)
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "the run stopped: OSError: [Errno 28] No space left on device" in err
    (run,) = (tmp_path / "results" / "tiny").iterdir()
    assert f"Resume with: bench run {path} --resume {run}" in err
    assert len(list(run.glob("parts/trials/*/*.parquet"))) == 2  # the trials are saved

    assert main(["run", str(path), "--resume", str(run)]) == 0
    board = pd.read_parquet(run / "leaderboard.parquet")
    assert board.status.tolist() == ["ok"] and board.num_trials.tolist() == [2]
