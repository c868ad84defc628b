"""On a GPU: ResNet-18 on CIFAR-sized images through bench versus a plain PyTorch loop at the
same batch size and precision, GPU utilization while bench's trials run, and the throughput
of four trials sharing one GPU (0.25 each) versus one trial holding it."""

from __future__ import annotations

import math
import statistics
import subprocess
import time
from dataclasses import dataclass

import numpy as np
import ray
import torch

from bench.perf.figures import Figure
from bench.perf.sampling import PeriodicSampler

SECTION = "5. GPU (ResNet-18, 32x32 RGB)"
BATCH = 256


def synthetic_cifar(n: int, seed: int = 0):
    """ImageData of random 32x32 RGB images in 10 classes, two folds."""
    from bench.data.images import ImageData
    from bench.data.splits import fold_indices

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int64)
    return ImageData(
        name="cifar10",
        classes=[str(i) for i in range(10)],
        train_x=x,
        train_y=y,
        test_x=x[:512],
        test_y=y[:512],
        official_test=True,
        folds=fold_indices(y, 2, seed=seed),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )


NVIDIA_SMI = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]


class UtilizationSampler(PeriodicSampler):
    """GPU utilization (percent, first GPU) every 200 ms while in use, read by `command`."""

    def __init__(self, command: list[str] = NVIDIA_SMI) -> None:
        super().__init__(interval=0.2)
        self.command = command
        self.samples: list[float] = []

    def sample(self) -> bool:
        try:
            done = subprocess.run(self.command, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False  # no nvidia-smi (or it hangs): the figure reads nan, the run goes on
        if done.returncode == 0 and done.stdout.strip():
            self.samples.append(float(done.stdout.split()[0]))
        return True

    def busy_mean(self) -> float:
        """Mean over the samples after the first non-zero one (model build and data transfer
        before the first step are not the trials' steady state)."""
        started = next((i for i, s in enumerate(self.samples) if s > 0), len(self.samples))
        steady = self.samples[started:]
        return statistics.fmean(steady) if steady else math.nan


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_images_per_second(
    data, epochs: int, precision: torch.dtype | None, device: torch.device
) -> float:
    """The plain loop: data resident on the device, channels_last, autocast at `precision`
    (None: float32), the same batch size as bench's trials."""
    from bench.registry.models import create_model

    model = create_model("resnet18", 10, 3, 32).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(data.train_x).to(device)
    y = torch.from_numpy(data.train_y).to(device)
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    seen, elapsed = 0, 0.0
    for epoch in range(epochs + 1):  # epoch 0 warms up cuDNN and the allocator
        _synchronize(device)
        started = time.perf_counter()
        order = torch.randperm(len(y), device=device)
        for i in range(0, len(y), BATCH):
            rows = order[i : i + BATCH]
            inputs = ((x[rows].float() / 255 - mean) / std).contiguous(
                memory_format=torch.channels_last
            )
            with torch.autocast(device.type, dtype=precision, enabled=precision is not None):
                loss = torch.nn.functional.cross_entropy(model(inputs), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _synchronize(device)
        if epoch:
            elapsed += time.perf_counter() - started
            seen += len(y)
    return seen / elapsed


def bench_sweep(data_ref, trials: int, gpus: float, epochs: int, workdir: str):
    """(sweep wall, training samples, median per-fold samples/s) of ResNet-18 trials."""
    from bench.config import validate_benchmark
    from bench.perf.sweeps import run_sweep

    config = validate_benchmark(
        {
            "name": f"perf-gpu-{trials}x{gpus}",
            "models": ["resnet18"],
            "datasets": ["cifar10"],
            "search_space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}},
            "search": {"trials": trials, "sampler": "random", "seed": 0},
            "cv": {"folds": 2},
            "budget": {"epochs": epochs, "batch_size": BATCH, "patience": 0},
            "resources": {"gpus_per_worker": gpus, "cpus_per_worker": 1},
            "output": workdir,
        },
        source="<bench perf>",
    )
    return run_sweep(config, data_ref, model="resnet18", dataset="cifar10")


@dataclass(frozen=True)
class GpuPlan:
    images: int
    epochs: int
    shared_trials: int = 4  # trials sharing the device, each given 1 / shared_trials of it


def measure(quick: bool, workdir: str, echo) -> list[Figure]:
    if not torch.cuda.is_available():
        return [Figure(SECTION, "skipped", math.nan, "", "no CUDA device on this machine")]
    precision = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    plan = GpuPlan(images=10_000 if quick else 50_000, epochs=1 if quick else 3)
    return compare(plan, torch.device("cuda"), precision, workdir, echo)


def compare(
    plan: GpuPlan, device: torch.device, precision: torch.dtype | None, workdir: str, echo
) -> list[Figure]:
    """The section's figures on `device` (bench's trials ask for GPUs only on CUDA; on a CPU
    the same code runs, as the suite's smoke test does, with one CPU per trial)."""
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    data = synthetic_cifar(plan.images)
    echo(f"  plain PyTorch loop on {name} ...")
    plain = plain_images_per_second(data, plan.epochs, precision, device)
    data_ref = ray.put(data)
    echo("  one bench trial holding the GPU ...")
    with UtilizationSampler() as utilization:
        one = bench_sweep(data_ref, 1, 1.0 if cuda else 0.0, plan.epochs, workdir)
    shared = plan.shared_trials
    echo(f"  {shared} bench trials sharing the GPU ({1 / shared:.2f} each) ...")
    many = bench_sweep(data_ref, shared, 1 / shared if cuda else 0.0, plan.epochs, workdir)
    bench_rate = statistics.median(one.samples_per_second)
    return [
        Figure(SECTION, "plain loop", plain, "img/s", f"{name}, batch {BATCH}, {precision}"),
        Figure(SECTION, "bench trial", bench_rate, "img/s", "training steps, median fold"),
        Figure(SECTION, "bench / plain", bench_rate / plain, "x", "target >= 0.9"),
        Figure(
            SECTION,
            "GPU utilization",
            utilization.busy_mean(),
            "%",
            "nvidia-smi during one trial; target >= 80",
        ),
        Figure(SECTION, "1 trial, whole GPU", one.throughput, "img/s", "samples / sweep wall"),
        Figure(
            SECTION,
            f"{shared} trials x {1 / shared:.2f} GPU",
            many.throughput,
            "img/s",
            "samples / sweep wall",
        ),
        Figure(
            SECTION, "sharing gain", many.throughput / one.throughput, "x", f"{shared} vs 1 trial"
        ),
    ]
