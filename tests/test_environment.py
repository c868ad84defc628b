"""What a run records of the machine (bench/environment.py): the GPUs are read without
importing torch, narrowed by CUDA_VISIBLE_DEVICES as CUDA narrows them."""

from __future__ import annotations

import stat

import pytest

from bench.environment import gpu_names

LISTED = (
    "0, GPU-0a1b2c3d-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3\n"
    "1, GPU-9f8e7d6c-0000-0000-0000-000000000000, NVIDIA A10G\n"
)


@pytest.fixture
def nvidia_smi(tmp_path, monkeypatch):
    """An `nvidia-smi` first on PATH that answers the query bench makes as the real one does
    (CSV, no header), and fails on any other."""
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "--query-gpu=index,uuid,name" ] && [ "$2" = "--format=csv,noheader" ] '
        f"|| exit 9\nprintf '{LISTED}'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_every_gpu_nvidia_smi_lists(nvidia_smi):
    assert gpu_names() == ["NVIDIA H100 80GB HBM3", "NVIDIA A10G"]


@pytest.mark.parametrize(
    ("visible", "names"),
    [
        ("1", ["NVIDIA A10G"]),
        ("1,0", ["NVIDIA A10G", "NVIDIA H100 80GB HBM3"]),
        ("GPU-9f8e", ["NVIDIA A10G"]),  # a UUID prefix, as CUDA takes it
        ("0,7,1", ["NVIDIA H100 80GB HBM3"]),  # CUDA stops at the first unknown entry
        ("", []),
        (" ", []),
    ],
)
def test_cuda_visible_devices_narrows_them(nvidia_smi, monkeypatch, visible, names):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert gpu_names() == names


def test_no_gpu_without_an_nvidia_driver(tmp_path, monkeypatch):
    """This machine: no nvidia-smi and no /dev/nvidiactl, so no GPU."""
    import os

    if any(os.path.exists(d) for d in ("/dev/nvidiactl", "/dev/dxg")):
        pytest.skip("an NVIDIA driver is installed here")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_names() == []
