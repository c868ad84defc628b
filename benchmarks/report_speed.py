"""How long `bench report` takes on a large results set: 50 pairings, 2,000 trials.

    python benchmarks/report_speed.py [--folder /tmp/bench-report-speed]

Writes a synthetic run (5 datasets x 10 models x 40 trials, 3 folds, 10 classes, 3 repeats
of 500 test images) in the real schema, then times load + tables (with the paired tests and
bootstrap intervals against each dataset's best) + plots + HTML and prints the figures."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

from bench.report.build import build_report
from bench.testing.synthetic import write_synthetic_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    folder = args.folder or tempfile.mkdtemp(prefix="bench-report-speed-")
    started = time.perf_counter()
    datasets = [f"data{i}" for i in range(5)]
    models = [f"model{j}" for j in range(10)]
    write_synthetic_run(
        folder,
        "speed",
        datasets,
        models,
        trials=40,
        folds=3,
        epochs=10,
        classes=10,
        test_samples=500,
        repeats=3,
        seed=0,
        resamples=200,  # the leaderboard's own intervals: their precision is not timed here
    )
    written = time.perf_counter() - started
    started = time.perf_counter()
    files = build_report([folder], out=f"{folder}/report")
    seconds = time.perf_counter() - started
    print(f"pairings: {len(datasets) * len(models)}  trials: {len(datasets) * len(models) * 40}")
    print(f"synthetic results written in {written:.1f} s")
    print(
        f"report rebuilt in {seconds:.2f} s -> {files.html} "
        f"({files.html.stat().st_size / 1e6:.1f} MB)"
    )
    if not args.folder:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
