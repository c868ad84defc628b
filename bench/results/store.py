"""The Parquet store: one folder per run, files written atomically, nothing overwritten.

Paths may be local folders or any URI pyarrow's filesystems read (`s3://...`), so a cluster
run and `bench report` use the same code."""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from bench.errors import BenchError, first_line
from bench.results.names import part_name
from bench.results.schema import TABLES, check_version, to_table


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local folder or a URI; local paths are made absolute."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


RUN_MARKER = "config.yaml"  # of a run: the resolved definition, its first file
MODELS_FOLDER = "models"  # of a run: its kept models, one folder per pairing


def kept_folder(model: str, dataset: str) -> str:
    """Run-relative folder of a pairing's kept model (bench.models.kept writes it)."""
    return f"{MODELS_FOLDER}/{part_name(f'{model}@{dataset}')}"


def run_location(output: str, benchmark: str, run_id: str) -> str:
    """`<output>/<benchmark>/<run id>`: a URI keeps its scheme, a local path is made absolute."""
    if "://" in output:
        return f"{output.rstrip('/')}/{benchmark}/{run_id}"
    return join(resolve(output)[1], benchmark, run_id)


def new_run_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


class RunStore:
    """The files of one run: `<output>/<benchmark>/<run id>/`."""

    def __init__(self, uri: str) -> None:
        self.fs, self.path = resolve(uri.rstrip("/"))
        # A local folder as an absolute path: Tune, the trial actors and the printed resume
        # command must not depend on the directory the user ran bench from.
        self.uri = uri.rstrip("/") if "://" in uri else self.path

    @classmethod
    def create(cls, output: str, benchmark: str, run_id: str | None = None) -> RunStore:
        """A fresh run folder; refuses one that already exists (a run never overwrites another)."""
        run_id = run_id or new_run_id()
        fs, base = resolve(output)
        path = join(base, benchmark, run_id)
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            raise BenchError(f"{path}: run folder already exists; pick a new run id")
        try:
            fs.create_dir(path, recursive=True)
            probe = join(path, ".write-test")
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
        except OSError as exc:
            raise BenchError(
                f"{output}: output folder is not writable ({exc.strerror or exc}); "
                f"set output: (or --output) to a folder you can write"
            ) from None
        return cls(run_location(output, benchmark, run_id))

    def discard(self) -> None:
        """Remove this run's folder: only for a run stopped before it wrote anything."""
        self.fs.delete_dir(self.path)

    @property
    def run_id(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def file(self, *parts: str) -> str:
        return join(self.path, *parts)

    def url(self, *parts: str) -> str:
        """Like `file`, but keeps the URI scheme (`s3://...`) for Ray's storage_path."""
        return join(self.uri, *parts)

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.file(*parts)).type == pafs.FileType.File

    def is_run(self) -> bool:
        """Whether this folder holds a run: its config.yaml is written when the run starts
        (a report folder, or anything else a user put beside the runs, has none)."""
        return self.exists(RUN_MARKER)

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Atomic: write a temporary sibling, then rename it into place."""
        target = self.file(relative)
        parent = target.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        temporary = f"{target}.tmp-{os.getpid()}-{secrets.token_hex(3)}"
        with self.fs.open_output_stream(temporary) as out:
            out.write(data)
        self.fs.move(temporary, target)

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode())

    def write_json(self, relative: str, value: Any) -> None:
        self.write_text(relative, json.dumps(value, indent=2, sort_keys=True) + "\n")

    def read_json(self, relative: str) -> Any:
        with self.fs.open_input_stream(self.file(relative)) as stream:
            return json.loads(stream.read().decode())

    def write_table(
        self, name: str, rows: Iterable[Mapping[str, Any]], relative: str | None = None
    ) -> pa.Table:
        """Rows -> `<name>.parquet` (or `relative`) in the schema of table `name`."""
        table = to_table(name, rows)
        self.write_parquet(relative or f"{name}.parquet", table)
        return table

    def write_parquet(self, relative: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        self.write_bytes(relative, sink.getvalue().to_pybytes())

    def read_table(self, relative: str) -> pa.Table:
        return read_parquet(self.fs, self.file(relative))

    def list(self, folder: str) -> list[str]:
        """Relative paths of the files under `folder` (empty when it does not exist)."""
        selector = pafs.FileSelector(self.file(folder), allow_not_found=True, recursive=True)
        root = self.path.rstrip("/") + "/"
        return sorted(
            info.path.removeprefix(root)
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and ".tmp-" not in info.path
        )


def read_parquet(fs: pafs.FileSystem, path: str) -> pa.Table:
    try:
        table = pq.read_table(path, filesystem=fs)
    except (pa.ArrowInvalid, OSError) as exc:  # cut short, overwritten, another format
        raise BenchError(
            f"{path}: not a readable Parquet file ({first_line(exc)}); restore it, or resume "
            "the run that wrote it (bench run --resume RUN writes its tables again)"
        ) from None
    check_version(table, path)
    name = path.rsplit("/", 1)[-1].removesuffix(".parquet")
    expected = TABLES.get(name)
    if expected is not None and table.schema.names != expected.names:
        missing = sorted(set(expected.names) - set(table.schema.names))
        raise BenchError(f"{path}: columns differ from the schema (missing: {missing})")
    return table


def concat(name: str, tables: list[pa.Table]) -> pa.Table:
    """Merge part tables of one kind into one (empty table when there are none)."""
    if not tables:
        return to_table(name, [])
    return pa.concat_tables([t.cast(TABLES[name]) for t in tables]).replace_schema_metadata(
        tables[0].schema.metadata
    )
