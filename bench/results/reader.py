"""Read runs back: every run folder below the given paths, merged into one set of tables.

Only pyarrow and pandas: a report needs neither Ray nor torch, and never writes here."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow.fs as pafs

from bench.errors import BenchError
from bench.results.schema import TABLES
from bench.results.store import read_parquet, resolve

# Files a run folder must have, and those a report can do without (sections drop out).
REQUIRED = ("leaderboard",)
OPTIONAL = (
    "epochs",
    "trials",
    "replicates",
    "predictions",
    "label_issues",
    "duplicates",
    "audit_ranking",
)


@dataclass
class RunSet:
    """The merged tables of one or more runs (empty frames for files no run has)."""

    runs: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # table -> runs without it

    def __getitem__(self, name: str) -> pd.DataFrame:
        """The merged table `name`; empty, with its columns, where no run has it (also in a
        set built by hand from some tables only)."""
        if name not in self.tables:
            return TABLES[name].empty_table().to_pandas()
        return self.tables[name]

    def search_metric(self) -> str:
        """The metric the runs searched on (the most common one when they differ): what a
        report ranks by unless told otherwise."""
        from bench.metrics import DEFAULT_METRIC

        stored = self.tables["leaderboard"].get("metric")
        if stored is None or stored.dropna().empty:
            return DEFAULT_METRIC
        return str(stored.dropna().value_counts().index[0])


def find_runs(path: str) -> tuple[pafs.FileSystem, list[str]]:
    """Run folders at or below `path`: folders holding a leaderboard.parquet."""
    fs, base = resolve(path)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise BenchError(f"{path}: no such results folder; pass a run folder or its parent")
    selector = pafs.FileSelector(base, recursive=True)
    files = [f.path for f in fs.get_file_info(selector) if f.type == pafs.FileType.File]
    files += [
        f"{base}/{name}"
        for name in ("leaderboard.parquet", "report.html")
        if fs.get_file_info(f"{base}/{name}").type == pafs.FileType.File
    ]
    folders = {path.rsplit("/", 1)[0] for path in files if path.endswith("/leaderboard.parquet")}
    # A report folder holds a merged leaderboard.parquet too; it is output, not a run.
    reports = {path.rsplit("/", 1)[0] for path in files if path.endswith("/report.html")}
    found = [f for f in folders - reports if "/parts/" not in f + "/"]
    return fs, sorted(set(found))


def load_runs(paths: list[str]) -> RunSet:
    folders: list[tuple[pafs.FileSystem, str]] = []
    for path in paths:
        fs, runs = find_runs(path)
        if not runs:
            raise BenchError(
                f"{path}: no leaderboard.parquet below it; point at folders written by `bench run`"
            )
        folders += [(fs, run) for run in runs]
    runset = RunSet(runs=[run for _, run in folders])
    for name in REQUIRED + OPTIONAL:
        frames, missing = [], []
        for fs, run in folders:
            file = f"{run}/{name}.parquet"
            if fs.get_file_info(file).type != pafs.FileType.File:
                missing.append(run)
                continue
            frames.append(read_parquet(fs, file).to_pandas())
        runset.tables[name] = (
            pd.concat(frames, ignore_index=True)
            if frames
            else TABLES[name].empty_table().to_pandas()
        )
        runset.missing[name] = missing
    return runset
