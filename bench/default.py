"""Where the embedded default benchmark lives (`bench run` with no file; `bench perf`)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_BENCHMARK = "search_spaces/default.yaml"


def default_benchmark() -> Path:
    """search_spaces/default.yaml in the working directory, else the one beside the package."""
    here = Path(DEFAULT_BENCHMARK)
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / DEFAULT_BENCHMARK
