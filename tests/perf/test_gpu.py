"""`bench perf`'s GPU section. CI has no GPU: the same code runs here on the CPU (one CPU per
trial instead of a GPU share), so a GPU session finds a section that already works; its
Ray-free half runs as `python -m bench.perf.gpu` with Ray and Optuna made unimportable."""

import math
import os
import shutil
import subprocess
import sys

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


def test_measure_skips_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    (figure,) = gpu.measure(True, echo=lambda line: None)
    assert figure.name == "skipped" and "no CUDA" in figure.note


# Imported before anything else in the child: Ray and Optuna cannot be imported there, as on
# a GPU machine where they are not installed.
BLOCKER = """
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "optuna"):
            raise ImportError(f"{name} is not installed on this machine")
sys.meta_path.insert(0, Blocked())
"""


@pytest.mark.slow
def test_the_gpu_check_runs_without_ray_or_optuna(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "bench.perf.gpu", "--device", "cpu", "--images", "96"]
        + ["--epochs", "1", "--folds", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    values = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        for name in ("plain loop", "bench trial", "bench refit", "bench / plain"):
            if line.strip().startswith(name + " "):
                values[name] = float(parts[len(name.split())].replace(",", ""))
    assert set(values) == {"plain loop", "bench trial", "bench refit", "bench / plain"}, done.stdout
    assert all(v > 0 for v in values.values())
    assert "bench trial, augmented" in done.stdout and "GPU utilization" in done.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import ray"], env=env, capture_output=True, text=True
    )
    assert probe.returncode != 0  # the blocker really blocked Ray


@pytest.mark.ray
@pytest.mark.slow
def test_the_sharing_half_runs_end_to_end_on_the_cpu(ray_session, tmp_path):
    from bench.perf.sweeps import gpu_sharing

    figures = gpu_sharing(64, 1, 2, str(tmp_path), lambda line: None, cuda=False)
    values = {f.name: f.value for f in figures}
    for name in ("1 trial, whole GPU", "2 trials x 0.50 GPU", "sharing gain"):
        assert math.isfinite(values[name]) and values[name] > 0, name


def test_compare_reports_nan_utilization_without_nvidia_smi():
    if shutil.which("nvidia-smi") is not None:
        pytest.skip("nvidia-smi is present")
    plan = gpu.GpuPlan(images=64, epochs=1)
    values = {f.name: f.value for f in gpu.compare(plan, torch.device("cpu"), lambda line: None)}
    assert math.isnan(values["GPU utilization"])
    assert values["bench trial"] > 0 and values["bench / plain"] > 0
    assert values["deterministic / default"] > 0  # resources.deterministic's cost, measured
    assert not torch.are_deterministic_algorithms_enabled()  # switched back off afterwards
