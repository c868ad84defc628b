"""bench's trial code on a GPU against a plain PyTorch loop, with no Ray: ResNet-18 on
CIFAR-sized images, k folds in lockstep and the refit (bench's `cross_validate_trial` and
`refit_pairing`: autocast precision, channels_last, augmentation on the device, data resident
on the GPU) versus a plain loop at the same batch size and precision; images/s of both and the
GPU's utilization while bench's trial runs.

    python -m bench.perf.gpu                    # on CUDA; --device cpu runs the same code

It needs torch, torchvision, numpy, pydantic, PyYAML and scikit-learn (bench's metrics), not
Ray or Optuna, so it runs on a machine with a GPU where Ray cannot be installed. `bench perf`
adds the GPU-sharing figures, which need Ray (bench.perf.sweeps.gpu_sharing)."""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bench.perf.figures import Figure, format_table
from bench.perf.sampling import PeriodicSampler

SECTION = "5. GPU (ResNet-18, 32x32 RGB)"
BATCH = 256
# bench's trial with augmentation on the device, as a fine-tuning search would run it
AUGMENT = {"hflip": 0.5, "translate": 0.1, "crop_scale": 0.8}


@dataclass(frozen=True)
class GpuPlan:
    images: int
    epochs: int
    folds: int = 2
    shared_trials: int = 4  # trials sharing the device in bench perf, 1 / shared_trials each


def synthetic_cifar(n: int, folds: int = 2, seed: int = 0):
    """ImageData of random 32x32 RGB images in 10 classes with `folds` folds."""
    from bench.data.images import ImageData
    from bench.data.splits import fold_indices

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.int64)
    return ImageData(
        name="cifar10",
        classes=[str(i) for i in range(10)],
        train_x=x,
        train_y=y,
        test_x=x[:512],
        test_y=y[:512],
        official_test=True,
        folds=fold_indices(y, folds, seed=seed),
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

    model = create_model("resnet18", 10, 3, 32).module.to(device, memory_format=torch.channels_last)
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


@dataclass(frozen=True)
class TrialRates:
    """Training images/s of bench's trial code: the median fold, and the refit."""

    folds: float
    refit: float
    seconds: float  # the whole trial and refit, wall


def bench_trial_rates(
    data, epochs: int, device: torch.device, precision: str, params: dict, deterministic=False
) -> TrialRates:
    """bench's own CV trial (all folds in lockstep) and refit, exactly as a trial actor runs
    them, minus Ray: the same PairingPlan, loop, precision and channels_last choices."""
    from bench.plan import standalone_plan
    from bench.train.task import cross_validate_trial, refit_pairing

    settings = {
        "search.metric": "accuracy",
        "budget.epochs": epochs,
        "budget.batch_size": BATCH,
        "resources.precision": precision,
        "resources.deterministic": deterministic,
        "evaluation.repeats": 1,
    }
    plan = standalone_plan("resnet18", "cifar10", settings, run_id="gpu-check")
    params = {"lr": 1e-3, **params}
    started = time.perf_counter()
    folds = cross_validate_trial(plan, data, params, device)
    refit = refit_pairing(plan, data, params, epochs, device)
    _synchronize(device)
    torch.use_deterministic_algorithms(False)
    return TrialRates(
        statistics.median(f.samples_per_second for f in folds),
        refit.samples_per_second,
        time.perf_counter() - started,
    )


def compare(
    plan: GpuPlan, device: torch.device, echo: Callable[[str], None] = print
) -> list[Figure]:
    """The Ray-free figures of the GPU section on `device` (any device: on a CPU the suite
    runs the same code in float32)."""
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    precision = None  # float32 on a CPU
    if cuda:
        precision = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    data = synthetic_cifar(plan.images, plan.folds)
    echo(f"  plain PyTorch loop on {name} ...")
    plain = plain_images_per_second(data, plan.epochs, precision, device)
    echo(f"  bench's trial ({plan.folds} folds + refit) ...")
    with UtilizationSampler() as utilization:
        trial = bench_trial_rates(data, plan.epochs, device, "auto", {})
    echo("  bench's trial with augmentation on the device ...")
    augmented = bench_trial_rates(data, plan.epochs, device, "auto", AUGMENT)
    echo("  bench's trial with deterministic kernels (resources.deterministic) ...")
    exact = bench_trial_rates(data, plan.epochs, device, "auto", {}, deterministic=True)
    where = f"{name}, batch {BATCH}, {precision or 'fp32'}"
    return [
        Figure(SECTION, "plain loop", plain, "img/s", where),
        Figure(SECTION, "bench trial", trial.folds, "img/s", "training steps, median fold"),
        Figure(SECTION, "bench refit", trial.refit, "img/s", "training steps"),
        Figure(SECTION, "bench / plain", trial.folds / plain, "x", "target >= 0.9"),
        Figure(
            SECTION,
            "bench trial, augmented",
            augmented.folds,
            "img/s",
            ", ".join(f"{k} {v}" for k, v in AUGMENT.items()) + " (on the device)",
        ),
        Figure(
            SECTION,
            "deterministic / default",
            exact.folds / trial.folds,
            "x",
            "resources.deterministic: true, training steps, median fold",
        ),
        Figure(
            SECTION,
            "GPU utilization",
            utilization.busy_mean(),
            "%",
            "nvidia-smi during bench's trial; target >= 80",
        ),
    ]


def measure(quick: bool, echo) -> list[Figure]:
    """bench perf's Ray-free part of section 5 (skipped without CUDA)."""
    if not torch.cuda.is_available():
        return [Figure(SECTION, "skipped", math.nan, "", "no CUDA device on this machine")]
    return compare(plan_for(quick), torch.device("cuda"), echo)


def plan_for(quick: bool) -> GpuPlan:
    return GpuPlan(images=10_000 if quick else 50_000, epochs=1 if quick else 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perf.gpu", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=plan_for(False).images)
    parser.add_argument("--epochs", type=int, default=plan_for(False).epochs)
    parser.add_argument("--folds", type=int, default=2)
    args = parser.parse_args(argv)
    plan = GpuPlan(images=args.images, epochs=args.epochs, folds=args.folds)
    figures = compare(plan, torch.device(args.device))
    print(format_table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
