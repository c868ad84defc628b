"""`bench perf`'s GPU section. CI has no GPU: the same code runs here on the CPU (one CPU per
trial instead of a GPU share), so a GPU session finds a section that already works."""

import math
import shutil

import pytest
import torch

from bench.perf import gpu


def test_sampler_averages_what_the_command_prints_from_the_first_busy_sample():
    with gpu.UtilizationSampler(["echo", "42"]) as sampler:
        while len(sampler.samples) < 2:
            pass
    assert sampler.busy_mean() == 42.0


def test_sampler_without_nvidia_smi_reads_nan_instead_of_failing():
    with gpu.UtilizationSampler(["no-such-nvidia-smi"]) as sampler:
        pass
    assert sampler.samples == [] and math.isnan(sampler.busy_mean())


def test_measure_skips_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    (figure,) = gpu.measure(True, str(tmp_path), echo=lambda line: None)
    assert figure.name == "skipped" and "no CUDA" in figure.note


@pytest.mark.ray
@pytest.mark.slow
def test_the_section_runs_end_to_end_on_the_cpu(ray_session, tmp_path):
    plan = gpu.GpuPlan(images=128, epochs=1, shared_trials=2)
    figures = gpu.compare(plan, torch.device("cpu"), None, str(tmp_path), lambda line: None)
    values = {f.name: f.value for f in figures}
    for name in (
        "plain loop",
        "bench trial",
        "bench / plain",
        "1 trial, whole GPU",
        "2 trials x 0.50 GPU",
        "sharing gain",
    ):
        assert math.isfinite(values[name]) and values[name] > 0, name
    if shutil.which("nvidia-smi") is None:
        assert math.isnan(values["GPU utilization"])
