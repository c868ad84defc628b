"""The `bench` command: parse, build the config, call one function. Errors meant for people
print as one line and exit 2; `--debug` shows the traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError

DEFAULT_BENCHMARK = "search_spaces/default.yaml"


def default_benchmark() -> Path:
    """search_spaces/default.yaml in the working directory, else the one beside the package."""
    here = Path(DEFAULT_BENCHMARK)
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / DEFAULT_BENCHMARK


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a benchmark definition (default: the digits one)")
    run.add_argument("benchmark", nargs="?", help=f"YAML file (default: {DEFAULT_BENCHMARK})")
    run.add_argument("--models", type=_csv, help="comma-separated names or globs")
    run.add_argument("--datasets", type=_csv, help="comma-separated dataset names")
    run.add_argument("--trials", type=int, help="trials per pairing")
    run.add_argument("--folds", type=int, help="cross-validation folds")
    run.add_argument("--epochs", type=int, help="epochs per fold")
    run.add_argument("--output", help="results folder or URI")
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or local)")

    commands.add_parser("models", help="list the registered models")
    commands.add_parser("datasets", help="list the registered datasets")
    return parser


def _run(args: argparse.Namespace) -> int:
    from bench.config import load_benchmark

    path = Path(args.benchmark) if args.benchmark else default_benchmark()
    overrides = {
        "models": args.models,
        "datasets": args.datasets,
        "search.trials": args.trials,
        "cv.folds": args.folds,
        "budget.epochs": args.epochs,
        "output": args.output,
    }
    config = load_benchmark(path, overrides)
    from bench.runner import run_benchmark  # imports Ray and torch: only once the config is good

    summary = run_benchmark(config, address=args.address)
    return 0 if any(row["status"] == "ok" for row in summary.leaderboard) else 1


def _list_models(args: argparse.Namespace) -> int:
    from bench.registry import MODELS

    for name in MODELS.names():
        spec = MODELS.get(name)
        needs = f"{spec.channels or 'any'} ch, >= {spec.min_size}px"
        print(f"{name:<18} {spec.family:<13} {needs:<18} {spec.description}")
    return 0


def _list_datasets(args: argparse.Namespace) -> int:
    from bench.registry import DATASETS

    for name in DATASETS.names():
        spec = DATASETS.get(name)
        options = ", ".join(sorted(spec.options)) or "-"
        print(f"{name:<12} options: {options:<28} {spec.description}")
    return 0


COMMANDS = {"run": _run, "models": _list_models, "datasets": _list_datasets}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        if args.debug:
            raise
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
