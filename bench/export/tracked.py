"""A finished run as an experiment tracker's runs: one for the benchmark run (its definition as
parameters) and one per pairing (leaderboard row) with its best parameters, metrics, tags and
artifacts. Read from the run folder's files only; no tracker, Ray or torch is imported here
(bench/export/mlflow.py sends these to MLflow).

Which leaderboard column goes where is read from the schema's types: a number is a metric, a
string a tag, the JSON columns become parameters (best_params) and artifacts (the confusion
matrix, per-class figures)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import yaml

from bench.config import dotted_keys
from bench.metrics import METRIC_NAMES
from bench.results.schema import LEADERBOARD
from bench.results.store import MODELS_FOLDER, RunStore, kept_folder

TAG = "bench."  # prefix of bench's tags
KIND = f"{TAG}kind"  # "run" (the benchmark run) or "pairing" (its child runs)
# Columns that are numbers but not figures of the pairing: a process id, a trial's index.
NOT_METRICS = {"refit_worker_pid", "best_trial"}
# JSON columns: exported as parameters and artifacts, not as tags.
JSON_COLUMNS = {"best_params", "test_per_class", "test_confusion", "classes"}
REPEAT_PREFIX = "repeat/"  # per-repeat test metrics, one step per repeat
DIGEST = f"{TAG}export_digest"  # on the parent: the files it was exported from
# Part of the digest: raise it when what an export logs changes, so runs are exported anew.
EXPORT_FORMAT = 1
MAX_VALUE = 5000  # characters of a parameter or tag value (MLflow 3 takes 6000 and 8000)


@dataclass
class TrackedRun:
    """One tracker run: what it logs. `copies` maps an artifact path to a run-relative file
    (copied as it is, however large); `artifacts` holds generated files' bytes."""

    name: str
    ok: bool = True
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # name -> steps
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    copies: dict[str, str] = field(default_factory=dict)


@dataclass
class TrackedBenchmarkRun:
    run_id: str
    benchmark: str
    parent: TrackedRun
    pairings: list[TrackedRun]
    digest: str


def tracker_name(text: str) -> str:
    """A metric or parameter name MLflow accepts: word characters, - . : / and spaces."""
    return re.sub(r"[^\w\-.: /]", "_", text).strip("/") or "_"


def read_tracked(store: RunStore) -> TrackedBenchmarkRun:
    board = store.read_table("leaderboard.parquet").to_pylist()
    replicates = (
        store.read_table("replicates.parquet").to_pylist()
        if store.exists("replicates.parquet")
        else []
    )
    benchmark = board[0]["benchmark"] if board else store.path.rstrip("/").split("/")[-2]
    parent = TrackedRun(name=store.run_id, tags={KIND: "run", f"{TAG}run_id": store.run_id})
    parent.tags[f"{TAG}benchmark"] = benchmark
    if store.exists("config.yaml"):
        with store.fs.open_input_stream(store.file("config.yaml")) as stream:
            parent.params = flatten(yaml.safe_load(stream.read().decode()) or {})
        parent.copies["config.yaml"] = "config.yaml"
    if store.exists("environment.json"):
        commit = store.read_json("environment.json").get("git_commit")
        if commit:
            parent.tags["mlflow.source.git.commit"] = str(commit)
        parent.copies["environment.json"] = "environment.json"
    pairings = [pairing_run(store, row, replicates) for row in board]
    return TrackedBenchmarkRun(store.run_id, benchmark, parent, pairings, digest(store))


def digest(store: RunStore) -> str:
    """A hash of the files an export reads (kept models by name and size): a resumed run
    that finished more pairings gets another."""
    hashed = hashlib.sha256(f"export format {EXPORT_FORMAT}".encode())
    for name in ("leaderboard.parquet", "replicates.parquet", "config.yaml", "environment.json"):
        if store.exists(name):
            with store.fs.open_input_stream(store.file(name)) as stream:
                hashed.update(name.encode() + stream.read())
    for file in store.list(MODELS_FOLDER):
        hashed.update(f"{file}:{store.fs.get_file_info(store.file(file)).size}".encode())
    return hashed.hexdigest()


def pairing_run(store: RunStore, row: dict[str, Any], replicates: list[dict]) -> TrackedRun:
    """A leaderboard row as a child run; its replicates' test metrics as per-repeat steps."""
    name = f"{row['model']}@{row['dataset']}"
    run = TrackedRun(name=name, ok=row["status"] == "ok")
    run.tags = {KIND: "pairing", f"{TAG}pairing": name}  # and bench.run_id: a column
    for column in LEADERBOARD:
        value = row[column.name]
        if column.name in JSON_COLUMNS or value is None:
            continue
        if pa.types.is_string(column.type) and value != "":
            run.tags[f"{TAG}{column.name}"] = value[:MAX_VALUE]
        elif column.name in NOT_METRICS:
            run.tags[f"{TAG}{column.name}"] = str(value)
        elif not pa.types.is_string(column.type) and math.isfinite(value):
            run.metrics[tracker_name(column.name)] = float(value)
    if row["best_params"]:
        run.params = {
            tracker_name(k): _text(v)[:MAX_VALUE] for k, v in json.loads(row["best_params"]).items()
        }
    run.history = _repeat_history(row, replicates)
    if row["test_confusion"]:
        run.artifacts.update(_confusion(row["test_confusion"], row["classes"]))
    if row["test_per_class"]:
        run.artifacts["per_class.json"] = row["test_per_class"].encode()
    folder = kept_folder(row["model"], row["dataset"])
    for file in store.list(folder):
        run.copies[f"model/{file.removeprefix(folder + '/')}"] = file
    return run


def _repeat_history(row: dict, replicates: list[dict]) -> dict[str, list[tuple[int, float]]]:
    mine = [
        r
        for r in replicates
        if (r["run_id"], r["dataset"], r["model"]) == (row["run_id"], row["dataset"], row["model"])
    ]
    history: dict[str, list[tuple[int, float]]] = {}
    for replicate in sorted(mine, key=lambda r: r["repeat"]):
        for metric in METRIC_NAMES:
            value = replicate[f"test_{metric}"]
            if value is not None and math.isfinite(value):
                key = f"{REPEAT_PREFIX}test_{metric}"
                history.setdefault(key, []).append((replicate["repeat"], float(value)))
    return history


def _confusion(confusion_json: str, classes_json: str | None) -> dict[str, bytes]:
    """The confusion matrix (rows = true class, columns = predicted) as CSV and as the
    report's normalized heatmap."""
    from bench.report.plots import confusion_heatmap  # matplotlib: only when there is one

    matrix = json.loads(confusion_json)
    classes = json.loads(classes_json) if classes_json else [str(i) for i in range(len(matrix))]
    lines = [",".join(["true\\predicted", *map(_csv_cell, classes)])]
    lines += [
        ",".join([_csv_cell(c), *map(str, counts)])
        for c, counts in zip(classes, matrix, strict=True)
    ]
    png = confusion_heatmap(confusion_json, classes).split(",", 1)[1]
    return {
        "confusion_matrix.csv": ("\n".join(lines) + "\n").encode(),
        "confusion_matrix.png": base64.b64decode(png),
    }


def _csv_cell(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if re.search(r'[,"\n]', text) else text


def flatten(value: Any) -> dict[str, str]:
    """A definition as parameters: nested keys dotted (`search.trials`, `datasets.0.name`),
    lists of plain values as JSON."""
    return {tracker_name(k): _text(v)[:MAX_VALUE] for k, v in dotted_keys(value).items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
