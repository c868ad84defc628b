"""The Ray Train edge: a 2-worker CPU/gloo DDP fit whose ranks end with identical weights."""

import numpy as np
import pytest

from bench.config import DatasetConfig
from bench.plan import standalone_plan
from bench.registry import load_dataset
from bench.train.ray_train import DistributedJob, run_distributed
from bench.train.task import refit_pairing

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def refit_on_workers(job, workers, tmp_path, name):
    """A refit through one TorchTrainer of `workers` one-CPU workers: (outcome, placement)."""
    return run_distributed(
        job,
        workers=workers,
        cpus_per_worker=1,
        gpus_per_worker=0,
        storage_path=str(tmp_path),
        name=name,
        in_tune=False,
    )


def test_ddp_ranks_end_with_identical_weights(ray_session, tmp_path):
    data = load_dataset(DatasetConfig(name="digits"), folds=2, test_fraction=0.2, seed=0)
    plan = standalone_plan(
        "mlp", "digits", {"budget.epochs": 2, "resources.workers": 2, "evaluation.repeats": 1}
    )
    job = DistributedJob(plan, ray_session.put(data), {"lr": 3e-3}, "refit", refit_epochs=2)
    outcome, where = refit_on_workers(job, 2, tmp_path, "ddp")
    digests = where["weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert where["node_id"]
    assert outcome.test_proba.shape == (len(data.test_y), 10)
    # each rank saw half of every epoch's batches; the model still learned
    assert (outcome.test_proba.argmax(1) == data.test_y).mean() > 0.5
    single = refit_pairing(plan, data, {"lr": 3e-3}, epochs=2)
    assert single.test_proba.shape == outcome.test_proba.shape
    assert np.allclose(single.test_proba.sum(1), 1, atol=1e-5)


def test_a_single_worker_refit_through_ray_train_predicts_as_the_trial_actor_does(
    ray_session, tmp_path
):
    """use_ray_train with one worker runs the very loop the trial actor runs: the same seeds,
    data order and thread count, so the same test predictions."""
    import torch

    data = load_dataset(DatasetConfig(name="digits"), folds=2, test_fraction=0.2, seed=0)
    plan = standalone_plan("mlp", "digits", {"budget.epochs": 2, "evaluation.training_seed": 5})
    params = {"lr": 3e-3, "dropout": 0.2}
    job = DistributedJob(plan, ray_session.put(data), params, "refit", refit_epochs=2)
    outcome, _ = refit_on_workers(job, 1, tmp_path, "single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker: threads = CPUs reserved
    try:
        here = refit_pairing(plan, data, params, epochs=2)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(outcome.test_proba, here.test_proba)
