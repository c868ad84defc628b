"""A real `bench run` killed mid-search (SIGKILL) and resumed; Ctrl-C stops cleanly."""

import json
import os
import re
import shutil
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


def start(args, tmp_path, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | (extra_env or {})
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


def run_bench(args: list[str], cwd: Path, extra_env=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | (extra_env or {})
    command = [sys.executable, "-m", "bench.cli", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    """The run folder of the resumable benchmark run once, never stopped: what every stopped
    and resumed run of it must come out as."""
    folder = tmp_path_factory.mktemp("twin")
    run_bench(["run", str(write_benchmark(folder))], folder)
    return next(folder.glob("results/resumable/*"))


def assert_same_tables(run_dir: Path, reference: Path) -> None:
    for name in TABLES:
        same_except_times(
            pd.read_parquet(run_dir / f"{name}.parquet"),
            pd.read_parquet(reference / f"{name}.parquet"),
        )


def finished(parts: list[Path]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in parts])[["trial", "trial_id", "score"]]


def test_killed_run_resumes_to_the_uninterrupted_runs_tables(tmp_path, twin):
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
    resumed = run_bench(["run", str(benchmark), "--resume", relative], tmp_path)
    assert "resuming" in resumed.stdout
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert sorted(trials.trial) == list(range(TRIALS)) and set(trials.status) == {"ok"}
    # the study goes on where the killed run left it: the cut-off trial ran again under its
    # own number, so the study has no failed trial and numbers as trials.parquet does
    study = optuna.load_study(
        study_name="mlp@digits.r0",
        storage=JournalStorage(JournalFileBackend(str(run_dir / "studies.log"))),
    )
    assert {t.number: t.state.name for t in study.trials} == dict.fromkeys(
        range(TRIALS), "COMPLETE"
    )
    # finished trials kept their rows: same Tune trial id, same score, so they did not run again
    kept = trials.set_index("trial").loc[before.trial]
    assert kept.trial_id.tolist() == before.trial_id.tolist()
    assert kept.score.tolist() == pytest.approx(before.score.tolist())
    # the trial the kill cut off ran again first, from its last checkpoint, not from epoch 1
    again = trials[trials.params.map(json.loads) == cut_off]
    assert len(again) == 1 and again.resumed_from_epoch.iloc[0] >= 1
    assert again.trial.iloc[0] == len(before)  # the number it had
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert board.status.tolist() == ["ok"] and board.num_trials.tolist() == [TRIALS]
    replicates = pd.read_parquet(run_dir / "replicates.parquet")
    assert replicates["repeat"].tolist() == [0, 1] and replicates.best_trial.nunique() == 1
    assert len(list(tmp_path.glob("results/resumable/*"))) == 1  # resumed in place

    # ... and the result is the uninterrupted run's, in every table
    assert_same_tables(run_dir, twin)


# Every table of a run whose rows a seeded rerun reproduces (less times, places and ids)
TABLES = (
    "folds",
    "epochs",
    "trials",
    "predictions",
    "replicates",
    "leaderboard",
    "splits",
    "oof",
    "label_issues",
    "duplicates",
    "audit_ranking",
)


def test_a_run_killed_during_a_refit_resumes_to_the_uninterrupted_runs_tables(tmp_path, twin):
    benchmark = write_benchmark(tmp_path)
    first = start(["run", str(benchmark)], tmp_path)
    # Tune makes a refit's folder only when it ends, so the sign of a refit under way is the
    # search's last trial written: repeat 0's refit starts then and lasts about 2 s here
    # (repeat 1's after it), so a kill half a second later lands inside it
    wait_for_parts(tmp_path, TRIALS, first, timeout=300)
    time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    run_dir = next(tmp_path.glob("results/resumable/*"))
    assert len(list(run_dir.glob("parts/replicates/*"))) < 2  # a refit had not ended
    run_bench(["run", "--resume", str(run_dir)], tmp_path)
    assert_same_tables(run_dir, twin)


def test_a_run_stopped_while_merging_its_tables_resumes_to_them(tmp_path, twin):
    """The state a kill during the final merge leaves (tables are written whole, one after the
    other, through temporary files): some tables missing, one half written under its temporary
    name. A resume writes them all from the parts again."""
    run_dir = tmp_path / "results" / "resumable" / twin.name
    shutil.copytree(twin, run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["output"] = str(tmp_path / "results")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    for name in ("predictions", "replicates", "leaderboard"):
        (run_dir / f"{name}.parquet").unlink()
    half = (twin / "predictions.parquet").read_bytes()
    (run_dir / "predictions.parquet.tmp-1-abcdef").write_bytes(half[: len(half) // 2])
    run_bench(["run", "--resume", str(run_dir)], tmp_path)
    assert_same_tables(run_dir, twin)


def test_a_run_killed_while_merging_its_tables_resumes_to_them(tmp_path, twin):
    """SIGKILL of the driver (and Ray) once the merge has written its first table: the merge
    writes folds.parquet first and leaderboard.parquet last, about a quarter of a second
    apart here, so the kill lands inside it. A resume writes every table again."""
    first = start(["run", str(write_benchmark(tmp_path))], tmp_path)
    deadline = time.time() + 300
    while not list(tmp_path.glob("results/resumable/*/folds.parquet")):
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.005)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    run_dir = next(tmp_path.glob("results/resumable/*"))
    assert not (run_dir / "leaderboard.parquet").exists()  # the merge was cut off
    run_bench(["run", "--resume", str(run_dir.relative_to(tmp_path))], tmp_path)
    assert_same_tables(run_dir, twin)


def test_ctrl_c_writes_what_finished_and_a_resume_completes_it(tmp_path, twin):
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
    command = err.split("Resume with: ", 1)[1].splitlines()[0].split()  # as printed
    assert command[:2] == ["bench", "run"]
    run_bench(command[1:], tmp_path)
    assert_same_tables(run_dir, twin)


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
    for name in TABLES:
        same_except_times(
            pd.read_parquet(run_dir / f"{name}.parquet"),
            pd.read_parquet(reference / f"{name}.parquet"),
        )


def test_a_run_killed_while_its_dataset_decodes_resumes_to_the_twins_tables(tmp_path):
    """SIGKILL of the driver (and Ray) mid-decode of an ImageFolder tree: the resume decodes
    only the chunks not yet recorded and gives the tables of a run never stopped."""
    from bench.perf.data import write_photo_tree

    photos = write_photo_tree(tmp_path / "photos", 4000, side=128)
    cache = tmp_path / "cache"
    raw = {
        "name": "decoded",
        "models": ["mlp"],
        "datasets": [{"name": "imagefolder", "path": str(photos), "image_size": 32}],
        "search": {"trials": 2, "batch": 2},
        "cv": {"folds": 2},
        "evaluation": {"repeats": 1},
        "budget": {"epochs": 2},
        "output": "results",
    }
    benchmark = tmp_path / "decoded.yaml"
    benchmark.write_text(yaml.safe_dump(raw))
    env = {"BENCH_CACHE_DIR": str(cache)}
    first = start(["run", str(benchmark)], tmp_path, env)
    deadline = time.time() + 300
    while len(list(cache.glob("*.partial/chunks/*.npz"))) < 2:
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    recorded = [int(p.stem.split("-")[1]) for p in cache.glob("*.partial/chunks/*.npz")]
    assert 2 <= len(recorded) < 16  # 4000 images in chunks of 256: the decode was cut off
    run_dir = next(tmp_path.glob("results/decoded/*"))
    resumed = run_bench(["run", "--resume", str(run_dir.relative_to(tmp_path))], tmp_path, env)
    decoded = re.search(r"decoded ([\d,]+) images in", resumed.stdout).group(1)
    # only what was left undone (decode tasks already running may finish a chunk or two more
    # while the killed session's workers go down)
    assert int(decoded.replace(",", "")) <= 4000 - sum(recorded)
    run_bench(["run", str(benchmark)], tmp_path, env)  # the twin, from the finished cache
    twin = next(d for d in tmp_path.glob("results/decoded/*") if d != run_dir)
    assert_same_tables(run_dir, twin)
