"""Deployment cost of a trained model: MACs counted by torch, timings that make sense."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.models.small import MLP
from bench.train.deployment import (
    BUDGET_SECONDS,
    MIN_RUNS,
    _timings,
    count_macs,
    measure_deployment,
)
from bench.train.inputs import InputAdapter


def test_macs_are_the_multiply_adds_of_the_layers():
    assert count_macs(nn.Linear(10, 5), torch.zeros(1, 10)) == 10 * 5
    mlp = MLP(64, 10, hidden_dim=32, depth=2, dropout=0.0, shrink=0.5)  # 64-32-16-10
    assert count_macs(mlp, torch.zeros(1, 1, 8, 8)) == 64 * 32 + 32 * 16 + 16 * 10
    conv = nn.Conv2d(3, 4, 3, padding=1)  # 8x8 outputs, 4 channels, 3x3x3 each
    assert count_macs(conv, torch.zeros(1, 3, 8, 8)) == 8 * 8 * 4 * 3 * 3 * 3


def test_measured_on_the_cpu_in_float32():
    mlp = MLP(64, 10, hidden_dim=32, depth=2, dropout=0.0, shrink=1.0)
    adapter = InputAdapter(1, 8, (0.3,), (0.4,))
    images = np.random.default_rng(0).integers(0, 256, (100, 1, 8, 8), dtype=np.uint8)
    cost = measure_deployment(mlp, adapter, images, torch.device("cpu"))
    assert cost.macs == 64 * 32 + 32 * 32 + 32 * 10
    assert cost.parameters == sum(p.numel() for p in mlp.parameters())
    assert 0 < cost.latency_ms <= cost.latency_p95_ms
    assert cost.throughput > 0
    assert (cost.precision, cost.device, cost.peak_memory_mb) == ("fp32", "cpu", None)
    assert set(cost.columns()) == {
        "macs",
        "latency_ms",
        "latency_p95_ms",
        "throughput",
        "peak_memory_mb",
        "inference_precision",
        "inference_device",
    }
    assert not mlp.training  # left in eval mode, as a deployed model


@pytest.mark.parametrize("higher", [True, False])
def test_the_pareto_front_keeps_what_nothing_beats_on_both(higher):
    from bench.report.plots import pareto_front

    latency = np.array([1.0, 2.0, 3.0, 4.0, 2.0])
    quality = np.array([0.80, 0.90, 0.85, 0.95, 0.90])  # the last ties the second exactly
    score = quality if higher else -quality  # a loss: the same order, lower is better
    front = pareto_front(latency, score, higher)
    assert front.tolist() == [True, True, False, True, True]


def test_timed_runs_stop_at_the_budget_but_not_below_the_minimum():
    import time

    calls = []

    def slow(batch):
        calls.append(1)
        time.sleep(BUDGET_SECONDS / 2)

    seconds = _timings(slow, torch.zeros(1), torch.device("cpu"), runs=30, warmups=1)
    assert len(seconds) == MIN_RUNS  # 3 x half the budget: over it after the minimum
    assert len(calls) == MIN_RUNS + 1  # the warm-up is not timed
    fast = _timings(lambda batch: None, torch.zeros(1), torch.device("cpu"), runs=30, warmups=3)
    assert len(fast) == 30
