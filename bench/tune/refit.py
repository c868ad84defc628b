"""The refit of a pairing's chosen configuration on the whole CV pool.

A CPU or single-GPU refit runs as one Ray task in a fresh worker process, so this module
imports only torch and the training code: not Tune, Optuna or scikit-learn's model
selection, whose imports would cost the refit's process seconds of CPU (on a small machine,
time taken from trials still running)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ray

from bench.config import ResourcesConfig
from bench.data.images import ImageData
from bench.results.store import RunStore
from bench.train.loop import count_parameters
from bench.train.ray_train import DistributedJob, run_distributed
from bench.train.task import PairingContext, device_for, model_factory, refit_pairing

if TYPE_CHECKING:
    from bench.tune.trial import PairingJob


def refit(job: PairingJob, params: dict[str, Any], epochs: int) -> tuple[Any, int]:
    """(RefitOutcome, parameter count) for the chosen configuration."""
    r = job.resources
    if r.distributed:
        outcome, _ = run_distributed(
            DistributedJob(job.ctx, job.data, params, "refit", epochs),
            r.workers,
            r.cpus_per_worker,
            r.gpus_per_worker,
            storage_path=RunStore(job.store_uri).url("ray_train"),
            name=f"{job.part_name}-refit",
            in_tune=False,
        )
        parameters = count_parameters(model_factory(job.ctx, ray.get(job.data), params)())
        return outcome, parameters
    task = ray.remote(refit_in_task).options(
        num_cpus=r.cpus_per_worker, num_gpus=r.gpus_per_worker, max_retries=0
    )
    # The task gets the job's parts, not the PairingJob: unpickling that would import
    # bench.tune.trial, and with it Ray Tune, in the refit's process. Ray hands the task
    # the dataset itself (a top-level ObjectRef argument is resolved, zero-copy).
    return ray.get(task.remote(job.ctx, job.data, job.resources, params, epochs))


def refit_in_task(
    ctx: PairingContext,
    data: ImageData,
    resources: ResourcesConfig,
    params: dict[str, Any],
    epochs: int,
) -> tuple[Any, int]:
    """The body of the refit task: train, then return the outcome without the model."""
    import torch

    # As many torch threads as CPUs reserved, as in the trials: results depend on the
    # thread count (reductions split differently), so it must not depend on how busy the
    # cluster happens to be when the refit starts. Reruns with the same seed match.
    torch.set_num_threads(max(1, int(resources.cpus_per_worker)))
    outcome = refit_pairing(ctx, data, params, epochs, device_for(resources))
    parameters = count_parameters(outcome.model)
    outcome.model = None
    return outcome, parameters
