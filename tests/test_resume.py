"""A real `bench run` killed mid-search (SIGKILL) and resumed; Ctrl-C stops cleanly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from bench.testing.rows import comparable

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TRIALS = 4  # 2 finish before the kill, 1 is cut off (and continued), 1 runs after


def write_benchmark(tmp_path: Path) -> Path:
    path = tmp_path / "resumable.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "resumable",
                "models": ["mlp"],
                "datasets": ["digits"],
                "search_space": {"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
                "search": {"trials": TRIALS, "max_concurrent_trials": 1},
                "cv": {"folds": 2},
                "evaluation": {"repeats": 2},  # repeat 1 refits repeat 0's choice on resume
                "budget": {"epochs": 40, "checkpoint_every": 1},  # a trial lasts seconds
                "output": str(tmp_path / "results"),
            }
        )
    )
    return path


def start(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
    )


def wait_for_parts(tmp_path: Path, count: int, process, timeout=240) -> list[Path]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        parts = sorted(tmp_path.glob("results/resumable/*/parts/trials/*/*.parquet"))
        if len(parts) >= count:
            return parts
        assert process.poll() is None, process.communicate()
        time.sleep(0.5)
    raise TimeoutError("no trial finished")


def wait_for_unfinished_checkpoint(tmp_path: Path, process, timeout=240) -> dict:
    """The params of a running trial that has checkpointed but not finished."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = {p.stem for p in tmp_path.glob("results/resumable/*/parts/trials/*/*.parquet")}
        for checkpoint in tmp_path.glob("results/resumable/*/tune/*/*-trial_*/checkpoint_*"):
            trial_dir = checkpoint.parent
            state = checkpoint / "cv_state.pt"
            if trial_dir.name.rsplit("-trial_", 1)[1] not in done and state.is_file():
                time.sleep(0.3)  # let the file be written whole
                return torch.load(state, weights_only=True)["params"]
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise TimeoutError("no running trial checkpointed")


def finished(parts: list[Path]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in parts])[["trial", "trial_id", "score"]]


def test_killed_run_resumes_without_rerunning_finished_trials(tmp_path):
    benchmark = write_benchmark(tmp_path)
    first = start(["run", str(benchmark)], tmp_path)
    wait_for_parts(tmp_path, 2, first)
    cut_off = wait_for_unfinished_checkpoint(tmp_path, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = finished(sorted(tmp_path.glob("results/resumable/*/parts/trials/*/*.parquet")))
    assert len(before) >= 2
    run_dir = next(tmp_path.glob("results/resumable/*"))

    # the run folder as a relative path, from the folder bench runs in (as users type it)
    relative = str(run_dir.relative_to(tmp_path))
    resumed = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(benchmark), "--resume", relative],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == trials.trial.nunique() == TRIALS and set(trials.status) == {"ok"}
    # the study goes on where the killed run left it: the cut-off trial is a failed trial of
    # the study (it never ended) and ran again under the next number
    study = optuna.load_study(
        study_name="mlp@digits.r0",
        storage=JournalStorage(JournalFileBackend(str(run_dir / "studies.log"))),
    )
    numbers = {t.number: t.state.name for t in study.trials}
    assert {n: numbers[n] for n in trials.trial} == dict.fromkeys(trials.trial, "COMPLETE")
    assert set(numbers) - set(trials.trial) == {n for n, s in numbers.items() if s == "FAIL"}
    # finished trials kept their rows: same Tune trial id, same score, so they did not run again
    kept = trials.set_index("trial").loc[before.trial]
    assert kept.trial_id.tolist() == before.trial_id.tolist()
    assert kept.score.tolist() == pytest.approx(before.score.tolist())
    # the trial the kill cut off ran again first, from its last checkpoint, not from epoch 1
    again = trials[trials.params.map(json.loads) == cut_off]
    assert len(again) == 1 and again.resumed_from_epoch.iloc[0] >= 1
    folds = pd.read_parquet(run_dir / "folds.parquet")
    assert len(folds) == TRIALS * 2 and folds.groupby("trial").size().eq(2).all()
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert board.status.tolist() == ["ok"] and board.num_trials.tolist() == [TRIALS]
    replicates = pd.read_parquet(run_dir / "replicates.parquet")
    assert replicates["repeat"].tolist() == [0, 1] and replicates.best_trial.nunique() == 1
    assert len(list(tmp_path.glob("results/resumable/*"))) == 1  # resumed in place


def test_ctrl_c_writes_what_finished_and_prints_the_resume_command(tmp_path):
    benchmark = write_benchmark(tmp_path)
    run = start(["run", str(benchmark)], tmp_path)
    wait_for_parts(tmp_path, 1, run)
    os.kill(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-3000:]
    assert "--resume" in err and "Traceback" not in err
    run_dir = next(tmp_path.glob("results/resumable/*"))
    for name in ("folds", "trials", "epochs", "leaderboard"):
        assert (run_dir / f"{name}.parquet").is_file()
    assert len(pd.read_parquet(run_dir / "folds.parquet")) >= 2


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below `root`."""
    table = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for line in table.splitlines():
        pid, ppid, *args = line.split(None, 2)
        children.setdefault(int(ppid), []).append((int(pid), args[0] if args else ""))
    found, stack = {}, [root]
    while stack:
        for pid, args in children.get(stack.pop(), []):
            found[pid] = args
            stack.append(pid)
    return found


def same_except_times(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every column but identities and timings (and where the trial resumed), exactly."""
    resumed = ("resumed_from_epoch",)
    pd.testing.assert_frame_equal(comparable(a, resumed), comparable(b, resumed), check_exact=True)


def test_a_trial_whose_worker_process_dies_is_retried_and_completes(tmp_path):
    """...from its last checkpoint, random generators included: its rows equal those of the
    same benchmark run without the kill."""
    path = tmp_path / "fragile.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "fragile",
                "models": ["mlp"],
                "datasets": ["digits"],
                "search": {"trials": 2, "max_concurrent_trials": 1, "retries": 1},
                "cv": {"folds": 2},
                "evaluation": {"repeats": 1},
                "budget": {"epochs": 30, "checkpoint_every": 1},
                "output": str(tmp_path / "results"),
            }
        )
    )
    run = start(["run", str(path)], tmp_path)
    deadline, killed = time.time() + 240, None
    while killed is None and time.time() < deadline:
        assert run.poll() is None, run.communicate()
        trials = [pid for pid, args in descendants(run.pid).items() if "ImplicitFunc" in args]
        # kill once trial 0 has saved a checkpoint, well before its 30 epochs are done
        tune = tmp_path.glob("results/fragile/*/tune/*")
        tune = next(tune, None)
        if (
            trials
            and tune
            and list(tune.glob("mlp@digits.r0-trial_00000/checkpoint_*"))
            and not (tune / "mlp@digits.r0-trial_00001").exists()
        ):
            os.kill(trials[0], signal.SIGKILL)
            killed = trials[0]
        time.sleep(0.2)
    assert killed, "never saw a trial process"
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]
    run_dir = next(tmp_path.glob("results/fragile/*"))
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert sorted(trials.trial) == [0, 1] and set(trials.status) == {"ok"}
    # the killed trial continued from its last per-epoch checkpoint, not from epoch 1
    assert trials.set_index("trial").loc[0, "resumed_from_epoch"] >= 1
    epochs = pd.read_parquet(run_dir / "epochs.parquet")
    first = epochs[(epochs.trial == 0) & (epochs.phase == "cv")]
    assert first.groupby("fold").epoch.apply(list).map(lambda e: e == list(range(1, 31))).all()

    again = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    reference = next(d for d in tmp_path.glob("results/fragile/*") if d != run_dir)
    for name in ("folds", "epochs", "trials", "predictions", "replicates"):
        same_except_times(
            pd.read_parquet(run_dir / f"{name}.parquet"),
            pd.read_parquet(reference / f"{name}.parquet"),
        )
