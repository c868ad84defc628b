"""Issue 24's case, as a user meets it: a default-benchmark run of mlp and simple_cnn killed
(SIGKILL of the driver and its Ray) once N trial files are written, resumed by a relative
path, and compared with an uninterrupted twin in every table, less times, places and ids.

    python benchmarks/kill_and_resume.py [--workdir DIR] [--kill-at 11]

Prints one line per table ("equal" or what differs); exits 1 when a table differs."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.testing.rows import comparable

ARGS = ["--models", "mlp,simple_cnn", "--trials", "10", "--epochs", "4"]
ARGS += ["--set", "evaluation.repeats=1"]


def bench(args: list[str], cwd: Path, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "bench.cli", "run", *ARGS, *args]
    return subprocess.Popen(command, cwd=cwd, text=True, **popen)


def kill_at(workdir: Path, files: int) -> Path:
    """Start the run, SIGKILL its process group once `files` trial files exist; its folder."""
    log = (workdir / "first.log").open("w")
    first = bench(["--output", "B"], workdir, stdout=log, stderr=log, start_new_session=True)
    while len(list(workdir.glob("B/default/*/parts/trials/*/*.parquet"))) < files:
        if first.poll() is not None:
            raise SystemExit(f"the run ended before {files} trial files: see {log.name}")
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    subprocess.run(["ray", "stop", "--force"], capture_output=True)
    written = len(list(workdir.glob("B/default/*/parts/trials/*/*.parquet")))
    print(f"killed at {written} trial files")
    return next(workdir.glob("B/default/*")).relative_to(workdir)


def compare(resumed: Path, twin: Path) -> bool:
    same = True
    for path in sorted(twin.glob("*.parquet")):
        a = comparable(pd.read_parquet(resumed / path.name), ("resumed_from_epoch",))
        b = comparable(pd.read_parquet(path), ("resumed_from_epoch",))
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
            print(f"{path.stem:15s} {len(b):6d} rows x {len(b.columns):3d} columns  equal")
        except AssertionError as error:
            same = False
            print(f"{path.stem:15s} DIFFERS: {' '.join(str(error).split())[:200]}")
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--kill-at", type=int, default=11, help="trial files written")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="kill-and-resume-"))
    shutil.rmtree(workdir / "B", ignore_errors=True)
    shutil.rmtree(workdir / "T", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)

    run = kill_at(workdir, options.kill_at)
    print(f"+ bench run {' '.join(ARGS)} --output B --resume {run}")
    resumed = bench(["--output", "B", "--resume", str(run)], workdir, stdout=subprocess.PIPE)
    print(f"resume: exit {resumed.wait()}; {resumed.stdout.read().splitlines()[2].strip()}")
    twin = bench(["--output", "T"], workdir, stdout=subprocess.DEVNULL)
    print(f"twin: exit {twin.wait()}")
    return 0 if compare(workdir / run, next(workdir.glob("T/default/*"))) else 1


if __name__ == "__main__":
    sys.exit(main())
