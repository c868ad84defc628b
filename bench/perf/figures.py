"""The figures `bench perf` measures: one row each, printed as a table, saved to Parquet."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    value: float
    unit: str
    note: str = ""  # how it was measured, or the target it is held to


SCHEMA = pa.schema(
    [
        ("section", pa.string()),
        ("name", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("note", pa.string()),
        ("machine", pa.string()),
        ("mode", pa.string()),
        ("measured_at", pa.string()),
    ]
)


def format_table(figures: list[Figure]) -> str:
    width = max([len(f.name) for f in figures] + [10])
    lines = []
    section = None
    for figure in figures:
        if figure.section != section:
            section = figure.section
            lines.append(f"\n{section}")
        lines.append(
            f"  {figure.name:<{width}}  {_number(figure.value):>10} {figure.unit:<10} {figure.note}"
        )
    return "\n".join(lines).lstrip("\n")


def _number(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def write_figures(figures: list[Figure], folder: str, machine: str, mode: str) -> Path:
    """perf-<timestamp>.parquet in `folder` (written whole, then renamed into place)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = [{**asdict(f), "machine": machine, "mode": mode, "measured_at": stamp} for f in figures]
    path = Path(folder).expanduser() / f"perf-{stamp}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), partial)
    partial.rename(path)
    return path
