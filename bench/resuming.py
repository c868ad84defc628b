"""Which run a `--resume` continues and with which definition: the run folder (named, or the
newest of its benchmark, found by its config.yaml), and the definition it goes on with,
checked against the run's own (bench/config/extension.py). No Ray, no torch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from bench.config import BenchmarkConfig, apply_overrides, check_extension, validate_benchmark
from bench.errors import BenchError, ConfigError
from bench.redaction import masked
from bench.results.store import RUN_MARKER, RunStore


def run_folder(location: str) -> RunStore:
    store = RunStore(location)
    if not store.is_run():
        raise BenchError(f"{location}: not a bench run folder (no config.yaml); pass a run folder")
    return store


def find_resumable(output: str, benchmark: str) -> RunStore:
    """The newest run folder of `benchmark` under `output`: the newest run id among the
    folders that hold a run (RunStore.is_run)."""
    import pyarrow.fs as pafs

    from bench.results.store import join, resolve, run_location

    fs, base = resolve(output)
    folder = join(base, benchmark)
    runs = sorted(
        info.base_name
        for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        if info.type == pafs.FileType.Directory
        and RunStore(run_location(output, benchmark, info.base_name)).is_run()
    )
    if not runs:
        raise BenchError(f"{folder}: no earlier run of '{benchmark}' to resume; drop --resume")
    return RunStore(run_location(output, benchmark, runs[-1]))


def saved_definition(store: RunStore) -> dict[str, Any]:
    with store.fs.open_input_stream(store.file(RUN_MARKER)) as stream:
        return yaml.safe_load(stream.read().decode())


def resumed_definition(
    store: RunStore,
    config: BenchmarkConfig,
    file: str | None,
    overrides: Mapping[str, Any],
) -> BenchmarkConfig:
    """The definition a resumed run continues with: `config` (the `file` named, with the
    flags), or with no file the run's own saved definition with the flags (`overrides`),
    refused in one line if its rows would not compare with the run's."""
    saved_raw = saved_definition(store)
    saved = validate_benchmark(saved_raw, source=store.file(RUN_MARKER))
    if not file:
        check_usable_datasets(saved_raw, store)
        apply_overrides(saved_raw, dict(overrides))
        config = validate_benchmark(saved_raw, source="--resume")
    check_extension(saved, config, file or "--resume")
    return config


def check_usable_datasets(saved_raw: dict[str, Any], store: RunStore) -> None:
    """A saved definition whose dataset URIs had credentials (masked in config.yaml) cannot
    load them again: the definition file has to be named."""
    for i, dataset in enumerate(saved_raw.get("datasets") or []):
        if masked(json.dumps(dataset)):
            raise ConfigError(
                f"--resume: datasets[{i}] of the run has credentials in its URI, masked in "
                f"{store.file(RUN_MARKER)}; name the definition file (bench run FILE "
                "--resume RUN), or give the credentials through the environment"
            )
