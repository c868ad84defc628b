"""The `bench` command: parse, build the config, call one function. Errors meant for people
print as one line and exit 2; `--debug` shows the traceback."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.default import DEFAULT_BENCHMARK, default_benchmark
from bench.errors import BenchError, first_line

LATEST = "latest"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Ray's notices")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a benchmark definition (default: the digits one)")
    run.add_argument("benchmark", nargs="?", help=f"YAML file (default: {DEFAULT_BENCHMARK})")
    _add_run_flags(run)
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or local)")
    run.add_argument(
        "--dashboard",
        action="store_true",
        help="start the local Ray with its dashboard (on 127.0.0.1; ~0.24 GB more memory)",
    )
    _add_resume(run, "continue or extend a run (default: the newest run of this benchmark)")

    submit = commands.add_parser("submit", help="submit a benchmark to a Ray cluster as a job")
    submit.add_argument("benchmark", help="YAML file")
    _add_run_flags(submit)
    _add_address(submit)
    submit.add_argument("--wait", action="store_true", help="follow the logs until the job ends")
    _add_resume(submit, "continue or extend a run on the cluster's storage")
    submit.add_argument(
        "--ship-source",
        action="store_true",
        help="send this bench source tree with the job (py_modules)",
    )

    jobs = commands.add_parser("jobs", help="list, inspect, follow or stop submitted jobs")
    actions = jobs.add_subparsers(dest="action", required=True)
    _add_address(actions.add_parser("list", help="every job on the cluster"))
    for action in ("status", "logs", "stop"):
        sub = actions.add_parser(action, help=f"{action} of one job")
        sub.add_argument("job_id")
        _add_address(sub)
        if action == "logs":
            sub.add_argument("--follow", action="store_true", help="keep printing until it ends")

    for name, help_text in (
        ("report", "rebuild leaderboards and report.html from results (Parquet only)"),
        ("leaderboard", "print the ranked leaderboard of results in the terminal"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("paths", nargs="+", help="run folders or folders holding runs")
        sub.add_argument(
            "--metric", help="rank by this metric (default: the one the runs searched on)"
        )
        sub.add_argument("--dataset", type=_csv, help="only these datasets (comma-separated)")
        sub.add_argument("--model", type=_csv, help="only these models (comma-separated)")
        if name == "report":
            sub.add_argument("--out", help="output folder (default: <first path>/report)")

    perf = commands.add_parser(
        "perf", help="measure bench's overhead against plain PyTorch on this machine"
    )
    perf.add_argument("--quick", action="store_true", help="every section, smaller (minutes)")
    perf.add_argument("--output", default="results/perf", help="folder for perf-*.parquet")
    perf.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or local)")
    perf.add_argument(
        "--naive-fits",
        type=int,
        help="trainings replayed as one TorchTrainer each, then scaled (0: all; "
        "default 6, --quick 2)",
    )

    audit = commands.add_parser(
        "audit", help="find likely label errors and duplicate images in a finished run's data"
    )
    audit.add_argument("run", help="a run folder (results/<benchmark>/<run id>)")

    predict = commands.add_parser(
        "predict", help="top classes of image files by a run's kept model (repeat 0's refit)"
    )
    predict.add_argument("run", help="a run folder (results/<benchmark>/<run id>)")
    predict.add_argument("--model", required=True, help="a model of that run, e.g. resnet18")
    predict.add_argument("--dataset", required=True, help="its dataset key, e.g. digits")
    predict.add_argument("--top", type=int, default=3, help="classes shown per image")
    predict.add_argument("images", nargs="+", help="image files")

    export = commands.add_parser("export", help="copy finished runs into MLflow")
    export.add_argument("paths", nargs="+", help="run folders or folders holding runs")
    export.add_argument(
        "--mlflow",
        nargs="?",
        const=True,
        metavar="TRACKING_URI",
        help="to MLflow: a tracking URI or a folder (default: mlruns/, a SQLite store with the "
        "artifacts beside it; no server needed)",
    )
    export.add_argument("--experiment", help="MLflow experiment (default: the benchmark's name)")
    commands.add_parser("models", help="list the registered models")
    commands.add_parser("datasets", help="list the registered datasets")
    return parser


RUN_FLAGS = {  # flag -> the config key it overrides
    "models": "models",
    "datasets": "datasets",
    "trials": "search.trials",
    "folds": "cv.folds",
    "epochs": "budget.epochs",
    "output": "output",
}


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=_csv, help="comma-separated names or globs")
    parser.add_argument("--datasets", type=_csv, help="comma-separated dataset names")
    parser.add_argument("--trials", type=int, help="trials per pairing")
    parser.add_argument("--folds", type=int, help="cross-validation folds")
    parser.add_argument("--epochs", type=int, help="epochs per fold")
    parser.add_argument("--output", help="results folder or URI")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="assignments",
        help="override any key of the definition, e.g. --set datasets.0.path=~/photos "
        "--set search_space.hflip=[0.0,0.5] (value read as YAML; repeatable)",
    )


def _add_resume(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--resume", nargs="?", const=LATEST, metavar="RUN_DIR", help=help_text)


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS") or "http://127.0.0.1:8265",
        help="the cluster's dashboard, http://HEAD:8265 (default: RAY_ADDRESS)",
    )


def _run_flags_as_args(args: argparse.Namespace, with_resume: bool = True) -> list[str]:
    out = []
    if with_resume and getattr(args, "resume", None):
        out += ["--resume"] + ([] if args.resume == LATEST else [args.resume])
    for flag in RUN_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            out += [f"--{flag}", ",".join(value) if isinstance(value, list) else str(value)]
    for assignment in args.assignments:
        out += ["--set", assignment]
    return out


def _overrides(args: argparse.Namespace) -> dict:
    """The run flags and --set assignments as dotted keys of the definition."""
    from bench.config import parse_assignments

    overrides = {key: getattr(args, flag) for flag, key in RUN_FLAGS.items()}
    overrides.update(parse_assignments(args.assignments))
    return overrides


def _submit(args: argparse.Namespace) -> int:
    from bench import cluster

    job_id = cluster.submit(
        Path(args.benchmark),
        args.address,
        _run_flags_as_args(args),
        overrides=_overrides(args),
        ship_source=args.ship_source,
    )
    print(job_id)
    if not args.wait:
        return 0
    status = cluster.follow(args.address, job_id)
    print(f"job {job_id}: {status}", file=sys.stderr)
    return 0 if status == "SUCCEEDED" else 1


def _jobs(args: argparse.Namespace) -> int:
    from bench import cluster

    if args.action == "list":
        for job in cluster.list_jobs(args.address):
            print(f"{job['id']:<28} {job['status']:<10} {job['entrypoint']}")
        return 0
    if args.action == "status":
        info = cluster.status(args.address, args.job_id)
        print(f"{info['id']} {info['status']} {info['message']}".rstrip())
        return 0
    if args.action == "logs":
        if args.follow:
            status = cluster.follow(args.address, args.job_id)
            return 0 if status == "SUCCEEDED" else 1
        print(cluster.logs(args.address, args.job_id), end="")
        return 0
    print("stopped" if cluster.stop(args.address, args.job_id) else "not running")
    return 0


def _run(args: argparse.Namespace) -> int:
    from bench.config import load_benchmark

    path = Path(args.benchmark) if args.benchmark else default_benchmark()
    config = load_benchmark(path, _overrides(args))
    from bench import resuming, runner  # runner imports Ray and torch: once the config is good

    resume = None
    if args.resume:
        resume = (
            resuming.find_resumable(config.output, config.name)
            if args.resume == LATEST
            else resuming.run_folder(args.resume)
        )
        config = resuming.resumed_definition(resume, config, args.benchmark, _overrides(args))
    # what the user typed, for the resume command printed if the run stops early
    typed = [str(path)] if args.benchmark else []
    source = shlex.join(typed + _run_flags_as_args(args, with_resume=False))
    try:
        summary = runner.run_benchmark(
            config,
            address=args.address,
            resume=resume,
            source=source,
            debug=args.debug,
            dashboard=args.dashboard,
        )
    except runner.Interrupted as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 130
    return 0 if any(row["status"] == "ok" for row in summary.leaderboard) else 1


def _check_metric(name: str) -> None:
    from bench.errors import closest
    from bench.metrics import METRIC_NAMES

    if name not in METRIC_NAMES:
        raise BenchError(
            f"--metric: unknown metric '{name}'{closest(name, METRIC_NAMES)} "
            f"(known: {', '.join(METRIC_NAMES)})"
        )


def _report(args: argparse.Namespace) -> int:
    from bench.report.build import build_report  # Parquet, pandas, matplotlib: no Ray, no torch

    if args.metric:
        _check_metric(args.metric)
    files = build_report(args.paths, args.metric, args.dataset, args.model, args.out)
    for path in (files.markdown, files.csv, files.parquet, files.html):
        print(path)
    for note in files.notes:  # runs not compared, budgets far apart, files missing
        print(f"note: {note}", file=sys.stderr)
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from bench.report.console import format_leaderboard
    from bench.report.tables import leaderboard, report_notes
    from bench.results.reader import load_runs

    if args.metric:
        _check_metric(args.metric)
    runs = load_runs(args.paths)
    board = leaderboard(runs, args.metric or runs.search_metric(), args.dataset, args.model)
    print(format_leaderboard(board.to_dict("records")))
    for note in report_notes(board):
        print(f"note: {note}", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from bench.audit.run import audit_saved_run

    for line in audit_saved_run(args.run):
        print(line)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from bench.models.kept import load_kept_model

    kept = load_kept_model(args.run, args.model, args.dataset)
    proba = kept.predict_proba(kept.decode(args.images))
    for path, row in zip(args.images, proba, strict=True):
        best = row.argsort()[::-1][: max(1, args.top)]
        print(f"{path}: " + ", ".join(f"{kept.classes[i]} {row[i]:.3f}" for i in best))
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.mlflow is None:
        raise BenchError("bench export: say where to: --mlflow [TRACKING_URI]")
    from bench.export import export_runs  # MLflow is imported only when it is called

    target = None if args.mlflow is True else args.mlflow  # True: --mlflow without a value
    for done in export_runs(args.paths, target, args.experiment):
        print(done.summary())
    return 0


def _list_models(args: argparse.Namespace) -> int:
    from bench.hparams import TRAINING_PARAMS, summary
    from bench.registry import MODELS

    for name in MODELS.names():
        spec = MODELS.get(name)
        needs = f"{spec.channels or 'any'} ch, >= {spec.min_size}px"
        print(f"{name:<18} {spec.family:<13} {needs:<18} {spec.description}")
        if spec.hparams:
            print(summary(spec.hparams))
    print("\nsearchable by every model (name=default, range or {choices}):")
    print(summary(TRAINING_PARAMS))
    return 0


def _list_datasets(args: argparse.Namespace) -> int:
    from bench.registry import DATASETS

    for name in DATASETS.names():
        spec = DATASETS.get(name)
        options = ", ".join(sorted(spec.options)) or "-"
        print(f"{name:<12} options: {options:<28} {spec.description}")
    return 0


def _perf(args: argparse.Namespace) -> int:
    from bench.perf.run import run_perf

    run_perf(quick=args.quick, output=args.output, address=args.address, naive_fits=args.naive_fits)
    return 0


COMMANDS = {
    "run": _run,
    "perf": _perf,
    "submit": _submit,
    "jobs": _jobs,
    "report": _report,
    "leaderboard": _leaderboard,
    "predict": _predict,
    "audit": _audit,
    "export": _export,
    "models": _list_models,
    "datasets": _list_datasets,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        if args.debug:
            raise
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line still, and where to look
        if args.debug:
            raise
        print(
            f"bench {args.command} failed: {type(exc).__name__}: {first_line(exc)} (a bug in "
            "bench, most likely: --debug shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
