"""`bench export --mlflow`: finished runs into MLflow, read from their folders only.

One experiment (the benchmark's name unless given), one parent run per benchmark run (tag
bench.run_id: its definition as parameters, config.yaml and environment.json as artifacts) and
one nested run per pairing (see bench.export.tracked). A run is never in an experiment twice:
exported again from the same files (tag bench.export_digest) it is left as it is; from changed
files (a resumed run) it keeps its parent run and its pairings' runs are replaced. MLflow is an
optional extra, imported only here and only when called."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from bench.errors import BenchError
from bench.export.tracked import DIGEST, KIND, TAG, TrackedBenchmarkRun, TrackedRun, read_tracked
from bench.redaction import redact
from bench.results.reader import find_runs
from bench.results.store import RunStore, part_name

INSTALL_HINT = 'bench export --mlflow needs MLflow: pip install -e ".[mlflow]"'
# MLflow 3 refuses its old `file:` store unless MLFLOW_ALLOW_FILE_STORE=true ("maintenance
# mode") and defaults to sqlite:///mlflow.db in the working folder. A SQLite file needs no
# server either, so the default is one inside mlruns/ with the artifacts beside it:
# `mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db` shows it.
DEFAULT_FOLDER = "mlruns"
DATABASE = "mlflow.db"
SQLITE = "sqlite:///"
BATCH = 100  # entities per log_batch call: MLflow takes at most 100 params or tags in one


@dataclass(frozen=True)
class Exported:
    """One benchmark run as it now stands in MLflow."""

    folder: str  # the run folder read
    run_id: str  # bench's run id
    mlflow_run_id: str  # the parent run's
    experiment: str
    tracking_uri: str
    pairings: int
    changed: bool  # False: exported before from the same files, left as it was

    def summary(self) -> str:
        what = "exported" if self.changed else "unchanged since its last export"
        return (
            f"{self.folder}: {what}: MLflow run {self.mlflow_run_id} with {self.pairings} "
            f"nested, experiment '{self.experiment}' at {redact(self.tracking_uri)}"
        )


def tracking_uri(target: str | None) -> tuple[str, str | None]:
    """(tracking URI, local folder of its SQLite file or None). A target without a scheme is
    a folder: a SQLite store inside it (default mlruns/)."""
    target = target or DEFAULT_FOLDER
    if ":" not in target:
        folder = os.path.abspath(os.path.expanduser(target))
        return f"{SQLITE}{folder}/{DATABASE}", folder
    if target.startswith(SQLITE):
        return target, os.path.dirname(os.path.abspath(target.removeprefix(SQLITE)))
    return target, None


def export_runs(
    paths: list[str], target: str | None = None, experiment: str | None = None
) -> list[Exported]:
    """Export every run folder at or below `paths` to the MLflow store `target`."""
    mlflow = _import_mlflow()
    stores = [store for path in paths for store in _run_stores(path)]
    uri, folder = tracking_uri(target)
    if folder:
        os.makedirs(folder, exist_ok=True)  # SQLite creates the file, not its folder
    try:
        client = mlflow.tracking.MlflowClient(uri)
        return [_export(client, store, uri, folder, experiment) for store in stores]
    except mlflow.exceptions.MlflowException as exc:
        message = " ".join(exc.message.split())
        raise BenchError(f"MLflow at {uri}: {message}") from None


def _import_mlflow() -> Any:
    try:
        import mlflow.exceptions
        import mlflow.tracking
    except ImportError:
        raise BenchError(INSTALL_HINT) from None
    return mlflow


def _run_stores(path: str) -> list[RunStore]:
    _, runs = find_runs(path)
    if not runs:
        raise BenchError(
            f"{path}: no leaderboard.parquet below it; point at folders written by `bench run`"
        )
    scheme = path.split("://", 1)[0] + "://" if "://" in path else ""
    return [RunStore(scheme + run) for run in runs]


def _export(
    client: Any, store: RunStore, uri: str, folder: str | None, experiment: str | None
) -> Exported:
    run = read_tracked(store)
    name = experiment or run.benchmark
    experiment_id = _experiment(client, name, folder)
    parent = _find_parent(client, experiment_id, run.run_id)
    children = _children(client, experiment_id, parent.info.run_id) if parent else []
    if (
        parent is not None
        and parent.data.tags.get(DIGEST) == run.digest
        and len(children) == len(run.pairings)
    ):
        return Exported(
            store.uri, run.run_id, parent.info.run_id, name, uri, len(children), changed=False
        )
    parent_id = _log_parent(client, experiment_id, parent, run, store)
    for old in children:  # soft-deleted: `mlflow gc` removes them and their artifacts
        client.delete_run(old)
    for pairing in run.pairings:
        tags = {**pairing.tags, "mlflow.parentRunId": parent_id}
        child = client.create_run(experiment_id, tags=tags, run_name=pairing.name)
        _log(client, child.info.run_id, pairing, store)
        client.set_terminated(child.info.run_id, "FINISHED" if pairing.ok else "FAILED")
    client.set_tag(parent_id, DIGEST, run.digest)  # last: an export cut short is done again
    client.set_terminated(parent_id, "FINISHED")
    return Exported(store.uri, run.run_id, parent_id, name, uri, len(run.pairings), changed=True)


def _experiment(client: Any, name: str, folder: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        # Beside a local SQLite file, not in MLflow's default ./mlruns of the working folder.
        location = Path(folder, "artifacts", part_name(name)).as_uri() if folder else None
        return client.create_experiment(name, artifact_location=location)
    if found.lifecycle_stage != "active":
        raise BenchError(
            f"MLflow experiment '{name}' is deleted; restore it or pass --experiment NAME"
        )
    return found.experiment_id


def _find_parent(client: Any, experiment_id: str, run_id: str) -> Any:
    """The MLflow run a benchmark run was exported to before, or None."""
    query = f"tags.`{KIND}` = 'run' AND tags.`{TAG}run_id` = '{run_id}'"
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    return found[0] if found else None


def _log_parent(
    client: Any, experiment_id: str, parent: Any, run: TrackedBenchmarkRun, store: RunStore
) -> str:
    """The benchmark run's MLflow run, new or the earlier one. A definition does not change
    once a run has started (MLflow refuses to change a parameter), so an earlier parent
    only gets the parameters it lacks."""
    if parent is None:
        parent_id = client.create_run(experiment_id, run_name=run.parent.name).info.run_id
    else:
        parent_id = parent.info.run_id
        logged = parent.data.params
        run.parent.params = {k: v for k, v in run.parent.params.items() if k not in logged}
    _log(client, parent_id, run.parent, store)
    return parent_id


def _children(client: Any, experiment_id: str, parent_id: str) -> list[str]:
    query = f"tags.`mlflow.parentRunId` = '{parent_id}'"
    found = client.search_runs([experiment_id], filter_string=query, max_results=50_000)
    return [r.info.run_id for r in found]


def _log(client: Any, run_id: str, tracked: TrackedRun, store: RunStore) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    entities: list[Any] = [Param(k, v) for k, v in tracked.params.items()]
    entities += [RunTag(k, v) for k, v in tracked.tags.items()]
    entities += [Metric(k, v, now, 0) for k, v in tracked.metrics.items()]
    entities += [
        Metric(k, v, now, step) for k, steps in tracked.history.items() for step, v in steps
    ]
    for start in range(0, len(entities), BATCH):
        batch = entities[start : start + BATCH]
        client.log_batch(
            run_id,
            metrics=[e for e in batch if isinstance(e, Metric)],
            params=[e for e in batch if isinstance(e, Param)],
            tags=[e for e in batch if isinstance(e, RunTag)],
        )
    if tracked.artifacts or tracked.copies:
        _log_artifacts(client, run_id, tracked, store)


def _log_artifacts(client: Any, run_id: str, tracked: TrackedRun, store: RunStore) -> None:
    """Generated files and the run folder's (streamed: a kept model may be large) into one
    temporary folder, logged at once."""
    with tempfile.TemporaryDirectory(prefix="bench-export-") as staging:
        for relative, data in tracked.artifacts.items():
            Path(staging, relative).parent.mkdir(parents=True, exist_ok=True)
            Path(staging, relative).write_bytes(data)
        for relative, file in tracked.copies.items():
            Path(staging, relative).parent.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(
                store.file(file),
                str(Path(staging, relative)),
                source_filesystem=store.fs,
                destination_filesystem=pafs.LocalFileSystem(),
            )
        client.log_artifacts(run_id, staging)
