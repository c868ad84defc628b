"""bench/train/optim.py: the registry's optimizers step to the same bits as torch's, the sliced
Adam with temporaries no larger than a slice, and none loads the compiler."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from bench.train import optim

PAIRS = {
    "adam": (torch.optim.Adam, optim.SlicedAdam, {"lr": 1e-3}),
    "adam, weight decay": (torch.optim.Adam, optim.SlicedAdam, {"lr": 3e-3, "weight_decay": 0.01}),
    "adam, amsgrad": (torch.optim.Adam, optim.SlicedAdam, {"lr": 1e-3, "amsgrad": True}),
    "adamw": (torch.optim.AdamW, optim.SlicedAdamW, {"lr": 1e-3, "weight_decay": 0.05}),
    "sgd, momentum": (torch.optim.SGD, optim.EagerSGD, {"lr": 0.1, "momentum": 0.9}),
    "sgd, nesterov": (
        torch.optim.SGD,
        optim.EagerSGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    ),
}


@pytest.fixture
def small_slices(monkeypatch):
    monkeypatch.setattr(optim, "ADAM_SLICE", 1000)


def _parameters(seed: int) -> list[torch.nn.Parameter]:
    """A weight of several slices with a ragged last one, a flat one, and one below a slice."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(37, 101), (4_321,), (10,)]
    return [torch.nn.Parameter(torch.randn(s, generator=generator)) for s in shapes]


@pytest.mark.parametrize("name", PAIRS)
def test_the_registry_s_optimizers_step_to_the_same_bits_as_torch_s(small_slices, name):
    plain_class, sliced_class, options = PAIRS[name]
    plain, sliced = _parameters(0), _parameters(0)
    plain_opt, sliced_opt = plain_class(plain, **options), sliced_class(sliced, **options)
    generator = torch.Generator().manual_seed(1)
    for step in range(6):
        if step == 3:  # a checkpoint's round trip in the middle
            state = sliced_opt.state_dict()
            sliced_opt = sliced_class(sliced, **options)
            sliced_opt.load_state_dict(state)
        for a, b in zip(plain, sliced, strict=True):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        plain_opt.step()
        sliced_opt.step()
    for a, b in zip(plain, sliced, strict=True):
        assert torch.equal(a, b)
        mine, theirs = sliced_opt.state[b], plain_opt.state[a]
        assert mine.keys() == theirs.keys()
        for key in theirs:
            assert torch.equal(mine[key], theirs[key]), key
        a.grad, b.grad = None, torch.ones_like(b)
    sliced_opt.zero_grad()
    assert all(b.grad is None for b in sliced)
    if "step" in plain_opt.state[plain[0]]:
        assert float(sliced_opt.state[sliced[0]]["step"]) == 6


def _largest_allocation(optimizer) -> int:
    """Bytes of the largest block one aten op allocated during a step (after the first, which
    creates the state)."""
    optimizer.step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as run:
        optimizer.step()
    return max(e.cpu_memory_usage for e in run.events() if e.name.startswith("aten::"))


def test_sliced_adam_s_temporaries_are_a_slice_large(small_slices):
    weight = torch.nn.Parameter(torch.randn(10_000))
    weight.grad = torch.randn(10_000)
    assert _largest_allocation(torch.optim.Adam([weight], weight_decay=0.1)) == 40_000
    assert _largest_allocation(optim.SlicedAdam([weight], weight_decay=0.1)) == 4_000


def test_a_foreach_adam_is_left_whole(small_slices):
    weight = torch.nn.Parameter(torch.randn(10_000))
    weight.grad = torch.randn(10_000)
    assert _largest_allocation(optim.SlicedAdam([weight], foreach=True)) >= 40_000


def test_step_hooks_run_once_a_step_beside_a_plain_torch_optimizer():
    """Building a torch Adam wraps Adam.step for its hooks; the sliced Adam's step, which
    calls the function under Adam's wrappers, must not run its hooks a second time."""
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.ones(3)
    calls = []
    optimizer = optim.SlicedAdam([weight], lr=0.1)
    optimizer.register_step_pre_hook(lambda *_: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *_: calls.append("post"))
    optimizer.step()
    assert calls == ["pre", "post"]
    assert torch.allclose(weight.detach(), torch.full((3,), -0.1))  # one step of 0.1


def test_a_trial_never_loads_the_compiler():
    """torch wraps the optimizers' methods, and torch.use_deterministic_algorithms sets the
    compiler's flag: either loads torch._dynamo (and sympy), 80 MB in each trial process. A
    whole trial (folds, snapshots, resting folds) with each registry optimizer, in a fresh
    interpreter, must not."""
    script = textwrap.dedent(
        """
        import os, sys, tempfile
        os.environ["BENCH_CACHE_DIR"] = tempfile.mkdtemp()
        from bench.config import BenchmarkConfig, DatasetConfig
        from bench.hparams import OPTIMIZERS
        from bench.plan import resolve_pairings
        from bench.registry import load_replicates
        from bench.train import parking
        from bench.train.task import cross_validate_trial

        parking.LARGE_BATCH = 1
        config = BenchmarkConfig.model_validate({
            "name": "eager", "models": ["mlp"], "datasets": ["digits"], "cv": {"folds": 2},
            "budget": {"epochs": 2, "batch_size": 256}})
        plan = resolve_pairings(config, "run")[0]
        data = load_replicates(DatasetConfig(name="digits"), 2, 0.2, 0, 1)[0]
        for name in OPTIMIZERS:
            cross_validate_trial(plan, data, {"optimizer": name}, "cpu", lambda e, s, f: f())
        print(sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
