"""The one Tune trainable of a run: a CV trial (one configuration of one pairing scored by
k-fold cross-validation) or a pairing's refit, both in the run's pool of reused trial actors.

A single-worker trial trains in its trial actor (no worker-group start); a multi-worker trial,
or one whose pairing asks for it, fits a TorchTrainer. Both write identical rows."""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import time
from typing import Any

import ray
import torch
from ray import tune

from bench.results.names import trial_part
from bench.results.schema import dumps
from bench.results.store import RunStore
from bench.train.ray_train import placement
from bench.train.records import record_trial
from bench.train.task import cross_validate_trial, device_for
from bench.tune.jobs import CHECKPOINT_FILE, COMPLETE_FLAG, CV, REFIT, PairingJob, TrialPlan
from bench.tune.refit import on_worker_group, refit_and_score


def run_trial(config: dict[str, Any], trial_plan: TrialPlan) -> None:
    """The Tune function trainable: config names the pairing, the kind and the params."""
    job = trial_plan.jobs[config["pairing"]]
    # Threads = CPUs reserved, for trials and refits alike: results depend on the thread
    # count (reductions split differently), so it must not depend on how busy the node is.
    torch.set_num_threads(max(1, int(job.resources.cpus_per_worker)))
    data_ref = trial_plan.dataset_ref(job.dataset, job.plan.repeat)
    store = RunStore(trial_plan.store_uri)
    if config["kind"] == REFIT:
        refit_and_score(job, data_ref, store, config)
        tune.report({COMPLETE_FLAG: True})
    else:
        cv_trial(job, data_ref, store, config)


def cv_trial(job: PairingJob, data_ref: Any, store: RunStore, config: dict[str, Any]) -> None:
    started = time.perf_counter()
    trial_id = tune.get_context().get_trial_id()
    plan, resources, params = job.plan, job.resources, config["params"]
    data = ray.get(data_ref)
    restored = None  # DDP trials restart from their first epoch
    if resources.distributed:
        outcomes, where = on_worker_group(job, data_ref, store, params, CV, trial_id, in_tune=True)
    else:
        restored = load_checkpoint() or load_restart(job, store, params)

        def on_epoch(epoch: int, loop_score: float, snapshot: Any) -> None:
            metrics = {"score": plan.objective.from_loop(loop_score), "epoch": epoch}
            if plan.checkpoint_every and epoch % plan.checkpoint_every == 0:
                report_with_checkpoint(metrics, {**snapshot(), "params": dict(params)})
            else:
                tune.report(metrics)

        outcomes = cross_validate_trial(
            plan, data, params, device_for(resources), on_epoch, resume_from=restored
        )
        where = placement()
    where["worker_pid"] = os.getpid()  # the trial actor's process (the pool's, reused)
    trial = int(config["trial"])
    record = record_trial(
        plan, data, trial, trial_id, params, outcomes, where, time.perf_counter() - started
    )
    record.summary["resumed_from_epoch"] = int(restored["epoch"]) if restored else 0
    record.summary.update(job.plan.compute(record.summary["wall_seconds"]))
    store.write_table("folds", record.folds, trial_part("folds", job.part_name, trial))
    store.write_table("epochs", record.epochs, trial_part("epochs", job.part_name, trial))
    store.write_table("oof", record.out_of_fold, trial_part("oof", job.part_name, trial))
    done = trial_part("trials", job.part_name, trial)
    store.write_table("trials", [record.summary], done)  # written last: the trial is done
    tune.report(
        {
            "score": record.summary["score"],
            "epoch": record.summary["epochs_run"],
            COMPLETE_FLAG: True,
        }
    )


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


def load_restart(job: PairingJob, store: RunStore, params: dict[str, Any]) -> dict | None:
    """The last checkpoint of the same configuration in the interrupted run, if any."""
    relative = job.restarts.get(dumps(dict(params)))
    return read_checkpoint(store, relative) if relative else None


def read_checkpoint(store: RunStore, relative: str) -> dict[str, Any] | None:
    """A checkpoint file's state, or None if it was cut off while being written."""
    try:
        with store.fs.open_input_stream(store.file(relative)) as stream:
            return torch.load(io.BytesIO(stream.read()), weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None
