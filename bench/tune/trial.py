"""The Tune trial: one hyperparameter configuration scored by k-fold cross-validation.

A single-worker trial trains in its own trial actor (no worker-group start); a multi-worker
trial, or one whose config asks for it, fits a TorchTrainer. Both write identical rows."""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray import tune

from bench.config import ResourcesConfig
from bench.results.schema import dumps
from bench.results.store import RunStore
from bench.train.ray_train import DistributedJob, placement, run_distributed
from bench.train.task import (
    PairingContext,
    cross_validate_trial,
    device_for,
    record_trial,
    reported_score,
)

COMPLETE_FLAG = "cv_complete"  # only a trial that ran to its natural end reports this


@dataclass(frozen=True)
class PairingJob:
    """Everything the trials and the refit of one (model, dataset) pairing need."""

    ctx: PairingContext
    data: Any  # ObjectRef of the dataset's ImageData (put once per dataset)
    resources: ResourcesConfig
    store_uri: str
    # Resumed runs: params (canonical JSON) of trials a killed run left unfinished -> the
    # run-relative path of their last readable checkpoint, to continue from.
    restarts: dict[str, str] = field(default_factory=dict)

    @property
    def part_name(self) -> str:
        """The pairing as a file-name-safe string."""
        return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in self.ctx.pairing)


class TrialNamer:
    """Tune's trial_name_creator / trial_dirname_creator: `trial_00004` for the 5th trial the
    searcher created (0-based like Optuna's numbers; Tune's own ids are random hex). A resumed
    search starts counting after the trials that already finished."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def __call__(self, trial: Any) -> str:
        counter = int(trial.experiment_tag.split("_", 1)[0])
        return f"trial_{self.offset + counter - 1:05d}"


def trial_number(name: str) -> int:
    return int(name.rstrip("/").rsplit("/", 1)[-1].removeprefix("trial_"))


def cv_trial(params: dict[str, Any], job: PairingJob) -> None:
    """The Tune function trainable."""
    started = time.perf_counter()
    trial_id = tune.get_context().get_trial_id()
    ctx, resources, store = job.ctx, job.resources, RunStore(job.store_uri)
    data = ray.get(job.data)
    restored = None  # DDP trials restart from their first epoch
    if resources.distributed:
        outcomes, where = run_distributed(
            DistributedJob(ctx, job.data, dict(params), "cv"),
            resources.workers,
            resources.cpus_per_worker,
            resources.gpus_per_worker,
            storage_path=store.url("ray_train"),
            name=f"{job.part_name}-{trial_id}",
            in_tune=True,
        )
    else:
        torch.set_num_threads(max(1, int(resources.cpus_per_worker)))
        restored = load_checkpoint() or load_restart(job, params)

        def on_epoch(epoch: int, loop_score: float, snapshot: Any) -> None:
            metrics = {"score": reported_score(ctx.metric, loop_score), "epoch": epoch}
            if ctx.checkpoint_every and epoch % ctx.checkpoint_every == 0:
                report_with_checkpoint(metrics, {**snapshot(), "params": dict(params)})
            else:
                tune.report(metrics)

        outcomes = cross_validate_trial(
            ctx, data, params, device_for(resources), on_epoch, resume_from=restored
        )
        where = placement()
    trial = trial_number(tune.get_context().get_trial_name())
    record = record_trial(
        ctx, data, trial, trial_id, params, outcomes, where, time.perf_counter() - started
    )
    record.summary["resumed_from_epoch"] = int(restored["epoch"]) if restored else 0
    part = f"{job.part_name}/{trial:05d}.parquet"
    store.write_table("folds", record.folds, f"parts/folds/{part}")
    store.write_table("epochs", record.epochs, f"parts/epochs/{part}")
    store.write_table("trials", [record.summary], f"parts/trials/{part}")
    tune.report(
        {
            "score": record.summary["score"],
            "epoch": record.summary["epochs_run"],
            COMPLETE_FLAG: True,
        }
    )


CHECKPOINT_FILE = "cv_state.pt"


def report_with_checkpoint(metrics: dict[str, Any], state: dict[str, Any]) -> None:
    """Report an epoch with the trial's whole CV state, so a restarted trial (its worker died)
    continues from here instead of from epoch 1."""
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def load_checkpoint() -> dict[str, Any] | None:
    """The trial's last checkpoint, if Tune restarted it; tensors and numbers only
    (weights_only=True: nothing else is unpickled)."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(os.path.join(folder, CHECKPOINT_FILE), weights_only=True)


def load_restart(job: PairingJob, params: dict[str, Any]) -> dict[str, Any] | None:
    """The last checkpoint of the same configuration in the interrupted run, if any."""
    relative = job.restarts.get(dumps(dict(params)))
    return read_checkpoint(RunStore(job.store_uri), relative) if relative else None


def read_checkpoint(store: RunStore, relative: str) -> dict[str, Any] | None:
    """A checkpoint file's state, or None if it was cut off while being written."""
    try:
        with store.fs.open_input_stream(store.file(relative)) as stream:
            return torch.load(io.BytesIO(stream.read()), weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None
