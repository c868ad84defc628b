"""The Ray Train edge: the same cross-validation and refit as a single-worker trial, run by a
TorchTrainer worker group with DDP (`prepare_model` / `prepare_data_loader`).

All k folds of a trial run inside one worker-group start (a start costs 8-14 s on a small
machine), and rank 0 returns what a single-worker trial computes in-process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import ray
import torch
import torch.distributed as dist

from bench.plan import PairingPlan
from bench.train.task import cross_validate_trial, refit_pairing


@dataclass(frozen=True)
class DistributedJob:
    plan: PairingPlan
    data: Any  # ObjectRef of the dataset's ImageData, fetched zero-copy on each node
    params: dict[str, Any]
    mode: str  # "cv" or "refit"
    refit_epochs: int = 0


def placement() -> dict[str, str]:
    """Where this process runs: Ray node id and the GPU ids it was given."""
    context = ray.get_runtime_context()
    gpus = context.get_accelerator_ids().get("GPU", [])
    return {"node_id": context.get_node_id(), "gpu_ids": ",".join(str(g) for g in gpus)}


def _all_placements() -> dict[str, str]:
    """Every rank's placement, joined (rank order), so a DDP trial records all its nodes."""
    gathered = _gather(placement())
    nodes = list(dict.fromkeys(p["node_id"] for p in gathered))
    gpus = [p["gpu_ids"] for p in gathered if p["gpu_ids"]]
    return {"node_id": ",".join(nodes), "gpu_ids": ",".join(gpus)}


def _worker_loop(config: dict[str, Any]) -> Any:
    import ray.train
    import ray.train.torch as train_torch

    job: DistributedJob = config["job"]
    data = ray.get(job.data)
    torch.set_num_threads(max(1, int(config["threads"])))
    device = train_torch.get_device()
    wrap = {"wrap_model": train_torch.prepare_model, "wrap_loader": train_torch.prepare_data_loader}
    rank = ray.train.get_context().get_world_rank()
    if job.mode == "cv":

        def on_epoch(epoch: int, loop_score: float, snapshot: Any) -> None:
            score = job.plan.objective.from_loop(loop_score)
            ray.train.report({"score": score, "epoch": epoch})

        outcome: Any = cross_validate_trial(job.plan, data, job.params, device, on_epoch, **wrap)
    else:
        outcome = refit_pairing(job.plan, data, job.params, job.refit_epochs, device, **wrap)
    where = _all_placements()
    if job.mode == "refit":
        # DDP keeps ranks in step; record each rank's final weights to show it did.
        where["weight_digests"] = _gather(weights_digest(outcome.model))
        # repeat 0's model is kept with the run; the other repeats' weights stay here
        outcome.model = outcome.model.cpu() if job.plan.repeat == 0 else None
    return (outcome, where) if rank == 0 else None


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order ([value] outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def run_distributed(
    job: DistributedJob,
    workers: int,
    cpus_per_worker: float,
    gpus_per_worker: float,
    storage_path: str,
    name: str,
    in_tune: bool,
) -> tuple[Any, dict[str, str]]:
    """Fit a TorchTrainer for one trial (all folds) or one refit; rank 0's (outcome, placement)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    callbacks = []
    if in_tune:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())  # forwards rank 0's epoch scores to ASHA/Optuna
    resources = {"CPU": cpus_per_worker}
    if gpus_per_worker:
        resources["GPU"] = gpus_per_worker
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"job": job, "threads": cpus_per_worker},
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=gpus_per_worker > 0, resources_per_worker=resources
        ),
        run_config=RunConfig(name=name, storage_path=storage_path, callbacks=callbacks),
    )
    result = trainer.fit()
    return result.return_value
