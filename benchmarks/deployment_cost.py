"""Deployment cost of a freshly built model, as bench times a kept model after its refit:
`python benchmarks/deployment_cost.py [--model resnet18] [--device cuda] [--side 32]`.
Needs torch and torchvision only (no Ray, no pydantic)."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.registry.models import create_model
from bench.train.acceleration import accelerate
from bench.train.deployment import measure_deployment
from bench.train.inputs import InputAdapter
from bench.train.settings import settings_from_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    args = parser.parse_args()
    device = torch.device(args.device)
    built = create_model(args.model, 10, 3, args.side)
    settings = settings_from_params(
        {}, epochs=1, batch_size=64, precision=args.precision, channels_last="auto"
    )
    model = built.module.to(device)
    accel = accelerate(model, settings, device)
    adapter = InputAdapter(3, args.side, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = np.random.default_rng(0).integers(0, 256, (64, 3, args.side, args.side), np.uint8)
    cost = measure_deployment(model, adapter, images, device, accel)
    for name, value in cost.columns().items():
        print(f"{name:<20} {value}")
    print(f"{'parameters':<20} {cost.parameters}")


if __name__ == "__main__":
    main()
