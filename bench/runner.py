"""`bench run`: datasets loaded once, one concurrent search per (model, dataset) pairing,
parts merged into the run's Parquet files, the leaderboard printed."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from bench import environment
from bench.config import BenchmarkConfig, ResourcesConfig, to_yaml
from bench.data import load_dataset
from bench.errors import BenchError
from bench.metrics import get_metric
from bench.registry import MODELS
from bench.report.console import format_leaderboard
from bench.results.finalize import merge_parts
from bench.results.schema import SCHEMA_VERSION, to_table
from bench.results.store import RunStore
from bench.train.task import PairingContext
from bench.tune.search import SearchPlan, search_pairing
from bench.tune.trial import PairingJob

Print = Callable[[str], None]


def connect(address: str | None = None) -> bool:
    """Join the cluster named by `address` / RAY_ADDRESS (`auto` for one `ray start` made on
    this machine), or start a fresh local instance whose dashboard listens on loopback only.
    True when it started that local instance (no autoscaler will ever add nodes to it)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    # Worker output (Tune's and Ray's shutdown chatter) stays in Ray's session logs; the
    # console shows bench's progress, and failures are recorded in trials.parquet.
    common = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **common)
        return False
    ray.init(address="local", dashboard_host="127.0.0.1", **common)
    return True


def check_resources(
    config: BenchmarkConfig, nodes: list[dict[str, float]], local: bool
) -> str | None:
    """A trial worker that fits on no node waits forever: a GPU asked of a CPU-only cluster,
    more CPUs than any machine has. On a local instance bench started that is an error; a
    cluster's autoscaler may still add such a node, so there it is a warning (returned)."""
    for model in config.models:
        resources, own = config.resources_for(model), config.model_resources.get(model)
        for name, unit in (("gpus_per_worker", "GPU"), ("cpus_per_worker", "CPU")):
            wanted, most = getattr(resources, name), max((n.get(unit, 0) for n in nodes), default=0)
            if wanted <= most:
                continue
            from_model = own is not None and getattr(own, name) is not None
            key = f"model_resources.{model}.{name}" if from_model else f"resources.{name}"
            has = f"at most {most:g} {unit}s per node" if most else f"no {unit}"
            problem = f"{key} is {wanted:g} but the Ray cluster has {has}"
            fix = f"--set {key}={most:g}" + (" to run on CPUs" if unit == "GPU" else "")
            if local:
                raise BenchError(f"{problem}; use {fix}")
            return f"warning: {problem}: trials wait until such a node joins; or use {fix}"
    return None


@ray.remote(num_cpus=0)
class Progress:
    """Trials done and best score per pairing, for the console while the run goes on."""

    def __init__(self, totals: dict[str, int], mode: str) -> None:
        self.sign = 1 if mode == "max" else -1
        self.state = {
            p: {"done": 0, "total": n, "pruned": 0, "failed": 0, "best": None, "test": None}
            for p, n in totals.items()
        }

    def trial_done(self, pairing: str, status: str, score: float | None) -> None:
        entry = self.state[pairing]
        entry["done"] += 1
        if status in ("pruned", "failed"):
            entry[status] += 1
        elif score is not None and (
            entry["best"] is None or self.sign * score > self.sign * entry["best"]
        ):
            entry["best"] = score

    def pairing_done(self, pairing: str, status: str, test_score: float | None) -> None:
        self.state[pairing]["status"] = status
        self.state[pairing]["test"] = test_score

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return self.state


def _progress_line(pairing: str, entry: dict[str, Any], metric: str) -> str:
    extra = ", ".join(f"{entry[k]} {k}" for k in ("pruned", "failed") if entry[k])
    best = "-" if entry["best"] is None else f"{entry['best']:.4f}"
    line = f"  {pairing:<28} trials {entry['done']}/{entry['total']}"
    line += f" ({extra})" if extra else ""
    line += f"  best CV {metric} {best}"
    if entry.get("status"):
        test = "-" if entry["test"] is None else f"{entry['test']:.4f}"
        line += f"  done: {entry['status']}, test {test}"
    return line


@dataclass
class RunSummary:
    store: RunStore
    leaderboard: list[dict[str, Any]]
    seconds: float


def _split_rows(run_id: str, data: Any) -> list[dict[str, Any]]:
    """Which fold validates on each CV-pool sample, and the test rows: saved with the run."""
    fold_of = [-1] * len(data.train_y)
    for k, (_, val) in enumerate(data.folds):
        for i in val:
            fold_of[int(i)] = k
    source_train = data.train_index if data.train_index is not None else range(len(data.train_y))
    source_test = data.test_index if data.test_index is not None else [-1] * len(data.test_y)
    rows = [
        {
            "run_id": run_id,
            "dataset": data.name,
            "role": "train",
            "sample": i,
            "source_index": int(src),
            "label": int(y),
            "fold": fold_of[i],
        }
        for i, (src, y) in enumerate(zip(source_train, data.train_y, strict=True))
    ]
    rows += [
        {
            "run_id": run_id,
            "dataset": data.name,
            "role": "test",
            "sample": i,
            "source_index": int(src),
            "label": int(y),
            "fold": -1,
        }
        for i, (src, y) in enumerate(zip(source_test, data.test_y, strict=True))
    ]
    return rows


def trial_slots(r: ResourcesConfig) -> int:
    """How many trials of these resources the cluster can run at once."""
    cpus = ray.cluster_resources().get("CPU", 1)
    slots = int(cpus // (r.cpus_per_worker * r.workers)) or 1
    if r.gpus_per_worker:
        gpus = ray.cluster_resources().get("GPU", 0)
        slots = min(slots, int(gpus // (r.gpus_per_worker * r.workers)) or 1)
    return slots


class Interrupted(BenchError):
    """Ctrl-C: finished work is written; the message holds the resume command."""


def run_benchmark(
    config: BenchmarkConfig,
    echo: Print = print,
    address: str | None = None,
    resume: RunStore | None = None,
    source: str | None = None,
) -> RunSummary:
    """Run (or, given `resume`, continue) a benchmark. `source` is the definition's path, for
    the resume command printed if the run is interrupted."""
    started = time.perf_counter()
    store = resume or RunStore.create(config.output, config.name)  # unwritable: before Ray
    local = connect(address)
    try:
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
        warning = check_resources(config, nodes, local)
    except BenchError:
        if resume is None:
            store.discard()  # nothing was written: leave no empty run folder behind
        raise
    if resume is None:
        store.write_text("config.yaml", to_yaml(config))
    echo(f"bench: {'resuming' if resume else 'run'} {store.run_id} -> {store.uri}")
    if warning:
        echo(f"  {warning}")
    if resume is None:
        store.write_json(
            "environment.json",
            {**environment.describe(ray.cluster_resources()), "schema_version": SCHEMA_VERSION},
        )
    datasets = _load_datasets(config, store, echo)
    jobs = [
        pairing_job(config, store, model, dataset.key, datasets[dataset.key])
        for model, dataset in config.pairings()
    ]
    done = {p.rsplit("/", 1)[-1].removesuffix(".parquet") for p in store.list("parts/leaderboard")}
    todo = sorted(
        (job for job in jobs if job.part_name not in done), key=_expected_cost, reverse=True
    )
    if resume is not None:
        echo(f"  {len(jobs) - len(todo)} of {len(jobs)} pairings already finished")
    metric = config.search.metric
    progress = Progress.remote({j.ctx.pairing: j.ctx.trials for j in todo}, get_metric(metric).mode)
    search = ray.remote(num_cpus=0, max_retries=0)(search_pairing)
    plans = [
        SearchPlan(
            config.space_for(job.ctx.model, job.ctx.dataset),
            config.search,
            config.search.max_concurrent_trials or trial_slots(job.resources),
        )
        for job in todo
    ]
    pending = [search.remote(job, plan, progress) for job, plan in zip(todo, plans, strict=True)]
    at_once = sorted({plan.max_concurrent_trials for plan in plans})
    echo(
        f"  {len(todo)} pairings ({sum(j.ctx.trials for j in todo)} trials), "
        f"up to {'/'.join(map(str, at_once)) or 0} trials at once per pairing"
    )
    try:
        _follow(pending, progress, metric, echo)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        merge_parts(store)  # what finished is written, in the final files' shape
        command = f"bench run {source or '<benchmark.yaml>'} --resume {store.uri}"
        raise Interrupted(
            f"interrupted; finished trials are saved. Resume with: {command}"
        ) from None
    tables = merge_parts(store)
    leaderboard = tables["leaderboard"].to_pylist()
    echo("")
    echo(format_leaderboard(leaderboard))
    echo(f"\nresults: {store.uri}  ({time.perf_counter() - started:.0f} s)")
    return RunSummary(store, leaderboard, time.perf_counter() - started)


def _load_datasets(config: BenchmarkConfig, store: RunStore, echo: Print) -> dict[str, Any]:
    """Each dataset loaded once and put in the object store; its splits saved with the run
    (a resumed run checks it derived the very same ones)."""
    refs, split_rows, skipped = {}, [], {}
    for dataset in config.datasets:
        data = load_dataset(dataset, config.cv.folds, config.cv.test_fraction, config.cv.seed)
        echo(
            f"  dataset {dataset.key}: {len(data.train_y)} train / {len(data.test_y)} test, "
            f"{data.num_classes} classes, {data.channels}x{data.image_size}x{data.image_size}, "
            f"{config.cv.folds} folds"
        )
        refs[dataset.key] = ray.put(data)  # once per dataset; trials read it zero-copy
        split_rows += _split_rows(store.run_id, data)
        if data.skipped:
            echo(f"  dataset {dataset.key}: skipped {len(data.skipped)} unreadable file(s)")
            skipped[dataset.key] = data.skipped
    if store.exists("splits.parquet"):
        if (
            store.read_table("splits.parquet").to_pylist()
            != to_table("splits", split_rows).to_pylist()
        ):
            raise BenchError(
                f"{store.uri}: the data's splits differ from the interrupted run's "
                f"(dataset files changed?); start a new run instead of resuming"
            )
    else:
        store.write_table("splits", split_rows)
    if skipped:
        store.write_json("skipped_images.json", skipped)
    return refs


def find_resumable(output: str, benchmark: str) -> RunStore:
    """The newest run folder of `benchmark` under `output`."""
    import pyarrow.fs as pafs

    from bench.results.store import join, resolve, run_location

    fs, base = resolve(output)
    folder = join(base, benchmark)
    runs = sorted(
        info.base_name
        for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        if info.type == pafs.FileType.Directory
    )
    if not runs:
        raise BenchError(f"{folder}: no earlier run of '{benchmark}' to resume; drop --resume")
    return RunStore(run_location(output, benchmark, runs[-1]))


def _expected_cost(job: PairingJob) -> float:
    """A rough order of a pairing's work. Pairings start longest first: trials are placed
    first come, so the longest search (and its refit) starts at once and the short ones fill
    the gaps, instead of the long one running alone at the end."""
    heavy = MODELS.get(job.ctx.model).family not in ("mlp", "cnn")  # torchvision backbones
    return (100.0 if heavy else 1.0) * job.ctx.trials * job.ctx.epochs


def _on_off_auto(value: bool | str) -> str:
    return value if isinstance(value, str) else ("on" if value else "off")


def pairing_job(
    config: BenchmarkConfig, store: RunStore, model: str, dataset: str, data: Any
) -> PairingJob:
    """What the searches, trials and refit of one pairing need."""
    ctx = pairing_context(config, store.run_id, model, dataset)
    return PairingJob(ctx, data, config.resources_for(model), store.uri)


def pairing_context(
    config: BenchmarkConfig, run_id: str, model: str, dataset: str
) -> PairingContext:
    """A pairing's settings besides its hyperparameters (the model's own budget applied)."""
    budget, resources = config.budget_for(model), config.resources_for(model)
    return PairingContext(
        run_id=run_id,
        benchmark=config.name,
        model=model,
        dataset=dataset,
        metric=config.search.metric,
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        patience=budget.patience,
        trials=budget.trials,
        seed=config.search.seed,
        workers=resources.workers,
        checkpoint_every=config.budget.checkpoint_every,
        precision=resources.precision,
        channels_last=_on_off_auto(resources.channels_last),
    )


def _follow(pending: list[Any], progress: Any, metric: str, echo: Print) -> None:
    shown: dict[str, str] = {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=3.0)
        ray.get(ready)  # surfaces a pairing task that died outright
        for pairing, entry in sorted(ray.get(progress.snapshot.remote()).items()):
            line = _progress_line(pairing, entry, metric)
            if shown.get(pairing) != line:
                echo(line)
                shown[pairing] = line
