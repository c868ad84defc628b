"""What a trained model costs to run: multiply-accumulates per image, parameters, latency at
batch 1 (median and 95th percentile over timed runs after warm-up), throughput at a larger
batch, peak device memory (CUDA) and the precision used. Pure PyTorch, measured on the device
and with the threads the refit had, after the refit (timm's benchmark.py measures the same).

Timings include the input adapter (scaling, resizing, normalization), as a deployed model
would run it from stored uint8 images; they are wall-clock figures of one process and vary
with what else the machine is doing."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.train.acceleration import Acceleration
from bench.train.inputs import InputAdapter

# Runs are capped by count and by time, so timing a VGG on one CPU core costs seconds, not
# minutes: at least MIN_RUNS timed runs, then up to the count while within the budget.
WARMUP_RUNS = 3  # before the latency runs
# Before the throughput runs the model is warm from the latency runs: one pass lets the
# allocator and the kernels (cuDNN's autotuner) settle on the larger batch's shape. (Three
# cost a VGG-16 at batch 16 on one CPU core some 10 s more, for no change in its figure.)
THROUGHPUT_WARMUP_RUNS = 1
LATENCY_RUNS = 30
THROUGHPUT_RUNS = 5
MIN_RUNS = 3
BUDGET_SECONDS = 2.0  # per measurement (latency, throughput), warm-up aside
THROUGHPUT_BATCH = {"cuda": 64}  # images per throughput batch by device type
CPU_THROUGHPUT_BATCH = 16

_PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class DeploymentCost:
    macs: float  # multiply-accumulates per image (half of torch's counted FLOPs)
    parameters: int
    latency_ms: float  # batch 1, median
    latency_p95_ms: float  # batch 1, 95th percentile
    throughput: float  # images/s at batch 64 on CUDA, 16 on a CPU (fewer if fewer given)
    peak_memory_mb: float | None  # CUDA only: the most allocated during the throughput runs
    precision: str  # fp32, bf16 or fp16
    device: str  # cpu, cuda (with the GPU's name)

    def columns(self) -> dict[str, float | int | str | None]:
        """The replicates / leaderboard columns."""
        return {
            "macs": self.macs,
            "latency_ms": self.latency_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "throughput": self.throughput,
            "peak_memory_mb": self.peak_memory_mb,
            "inference_precision": self.precision,
            "inference_device": self.device,
        }


def measure_deployment(
    model: nn.Module,
    adapter: InputAdapter,
    images: np.ndarray,
    device: torch.device,
    accel: Acceleration | None = None,
) -> DeploymentCost:
    """The costs of `model` (moved to `device`, eval mode) on uint8 NCHW `images` (a few test
    images: the first for batch 1, up to THROUGHPUT_BATCH for throughput)."""
    accel = accel or Acceleration(device.type)
    model = model.to(device).eval()
    size = THROUGHPUT_BATCH.get(device.type, CPU_THROUGHPUT_BATCH)
    batch = torch.from_numpy(np.ascontiguousarray(images[:size])).to(device)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with accel.autocast():
            return model(accel.inputs(adapter(x)))

    with torch.inference_mode():
        macs = count_macs(model, adapter(batch[:1]))
        one = _timings(forward, batch[:1], device, LATENCY_RUNS, WARMUP_RUNS)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        many = _timings(forward, batch, device, THROUGHPUT_RUNS, THROUGHPUT_WARMUP_RUNS)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return DeploymentCost(
        macs=macs,
        parameters=sum(p.numel() for p in model.parameters()),
        latency_ms=float(np.median(one) * 1e3),
        latency_p95_ms=float(np.percentile(one, 95) * 1e3),
        throughput=float(len(batch) / np.median(many)),
        peak_memory_mb=peak,
        precision=_PRECISION_NAMES.get(accel.dtype, str(accel.dtype)),
        device=f"{device.type} {name}".strip(),
    )


def count_macs(model: nn.Module, one_input: torch.Tensor) -> float:
    """Multiply-accumulates of one forward pass on a one-image batch (torch's FLOP counter
    counts a multiply-add as 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(one_input.float())
    return counter.get_total_flops() / 2


def _timings(
    forward, batch: torch.Tensor, device: torch.device, runs: int, warmups: int
) -> np.ndarray:
    """Seconds of each timed forward pass after `warmups` untimed ones: `runs` of them, or
    fewer (MIN_RUNS at least) once BUDGET_SECONDS are spent."""
    for _ in range(warmups):
        forward(batch)
    seconds: list[float] = []
    while len(seconds) < runs and (len(seconds) < MIN_RUNS or sum(seconds) < BUDGET_SECONDS):
        _synchronize(device)
        started = time.perf_counter()
        forward(batch)
        _synchronize(device)
        seconds.append(time.perf_counter() - started)
    return np.asarray(seconds)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
