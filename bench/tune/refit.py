"""A pairing's refit: the chosen configuration trained on the whole CV pool and scored once
on the test split. It runs as a trial of the run's pool (a reused trial actor, or a
TorchTrainer for a DDP pairing) as soon as the pairing's search ends.

Its predictions and refit epochs are written as parts; its fields of the replicate's row go
to `parts/refit/<pairing>.parquet`, which the driver completes with the search's choice."""

from __future__ import annotations

import os
import time
from typing import Any

import ray
import torch

from bench.metrics import compute_metrics
from bench.models.kept import save_kept_model
from bench.results.schema import DEPLOYMENT_COLUMNS, dumps, make_row
from bench.results.store import RunStore
from bench.train.acceleration import accelerate
from bench.train.build import input_adapter, model_factory, split_params, train_settings
from bench.train.deployment import DeploymentCost, measure_deployment
from bench.train.loop import count_parameters
from bench.train.ray_train import DistributedJob, run_distributed
from bench.train.records import history_rows, prediction_rows
from bench.train.task import device_for, refit_pairing
from bench.tune.jobs import DRIVER_COLUMNS, REFIT, REFIT_PARTS, PairingJob


def refit_and_score(job: PairingJob, data_ref: Any, store: RunStore, config: dict) -> None:
    """Train, predict the test split, write the refit's parts (nothing is returned: a result
    holding per-class figures would bloat Tune's experiment state)."""
    started = time.perf_counter()
    plan, data, params = job.plan, ray.get(data_ref), config["params"]
    epochs = int(config["epochs"])
    outcome, parameters = _refit(job, data, data_ref, store, params, epochs)
    held = job.plan.compute(time.perf_counter() - started)  # the refit's, not the timing's
    deployment = dict.fromkeys(DEPLOYMENT_COLUMNS)
    if plan.repeat == 0 and outcome.model is not None:  # the model a user ships: kept
        adapter = input_adapter(plan.model, data, params)
        deployment = deployment_cost(job, outcome.model, adapter, data).columns()
        save_kept_model(
            store,
            plan.model,
            plan.dataset,
            outcome.model,
            split_params(plan.model, params)[1],
            adapter,
            data,
            plan.repeat,
        )
    report = compute_metrics(data.test_y, outcome.test_proba, data.num_classes)
    store.write_table(
        "predictions",
        prediction_rows(plan, data, outcome.test_proba),
        f"parts/predictions/{job.part_name}.parquet",
    )
    store.write_table(
        "epochs",
        history_rows(plan, int(config["trial"]), REFIT, outcome.history),
        f"parts/epochs/{job.part_name}/refit.parquet",
    )
    fields = make_row(
        "replicates",
        **dict.fromkeys(DRIVER_COLUMNS),
        **plan.ids(),
        **{f"test_{k}": v for k, v in report.values.items()},
        test_metric_notes=report.notes_text(),
        test_per_class=dumps(report.per_class),
        test_confusion=dumps(report.confusion),
        classes=dumps(list(data.classes)),
        fingerprint=data.fingerprint,
        training_seed=plan.seed,
        train_samples=len(data.train_y),
        test_samples=len(data.test_y),
        num_params=parameters,
        **deployment,
        refit_epochs=epochs,
        refit_seconds=outcome.train_seconds,
        refit_samples_per_second=outcome.samples_per_second,
        refit_worker_pid=os.getpid(),
        **held,
    )
    store.write_table("replicates", [fields], f"{REFIT_PARTS}/{job.part_name}.parquet")


def deployment_cost(job: PairingJob, model: Any, adapter: Any, data: Any) -> DeploymentCost:
    """The kept model's inference costs on this actor's device (a DDP refit's model came back
    to the CPU: measured there), at the refit's precision."""
    device = device_for(job.resources) if not job.resources.distributed else torch.device("cpu")
    settings = train_settings(job.plan, {})
    accel = accelerate(model.to(device), settings, device)
    return measure_deployment(model, adapter, data.test_x, device, accel)


def _refit(
    job: PairingJob,
    data: Any,
    data_ref: Any,
    store: RunStore,
    params: dict[str, Any],
    epochs: int,
) -> tuple[Any, int]:
    """(RefitOutcome, parameter count): in this actor (on `data`), or through Ray Train for
    DDP (whose workers fetch `data_ref` themselves)."""
    r = job.resources
    if not r.distributed:
        outcome = refit_pairing(job.plan, data, params, epochs, device_for(r))
        return outcome, count_parameters(outcome.model)
    outcome, _ = on_worker_group(job, data_ref, store, params, REFIT, "refit", epochs=epochs)
    model = outcome.model or model_factory(job.plan, data, params)().module
    return outcome, count_parameters(model)


def on_worker_group(
    job: PairingJob,
    data_ref: Any,
    store: RunStore,
    params: dict[str, Any],
    kind: str,
    name: str,
    epochs: int = 0,
    in_tune: bool = False,
) -> tuple[Any, dict[str, str]]:
    """A CV trial (all folds) or a refit of a DDP pairing, fitted by one TorchTrainer whose
    workers hold the pairing's resources: rank 0's (outcome, placement)."""
    r = job.resources
    return run_distributed(
        DistributedJob(job.plan, data_ref, dict(params), kind, epochs),
        r.workers,
        r.cpus_per_worker,
        r.gpus_per_worker,
        storage_path=store.url("ray_train"),
        name=f"{job.part_name}-{name}",
        in_tune=in_tune,
    )
