"""What a run ran on: versions, git commit, hardware. Never environment variables (secrets)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "bench",
    "torch",
    "torchvision",
    "ray",
    "optuna",
    "scikit-learn",
    "numpy",
    "pyarrow",
    "pandas",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the bench checkout, when bench runs from one."""
    source = Path(__file__).resolve().parent.parent
    out = _output_of(["git", "-C", str(source), "rev-parse", "HEAD"], timeout=5)
    return (out or "").strip() or None


def _output_of(command: list[str], timeout: float) -> str | None:
    """A command's standard output; None where it is missing, fails or hangs."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def gpu_names() -> list[str]:
    """The CUDA GPUs this process may use, by name (CUDA_VISIBLE_DEVICES narrows them as it
    narrows CUDA). nvidia-smi answers where it is installed, so a driver need not import torch
    for it (~270 MB of private memory); torch answers where an NVIDIA device exists without it."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return []
    listed = _nvidia_smi_gpus()
    if listed is None:
        # no NVIDIA driver here: CUDA has no device either
        return _torch_gpus() if _nvidia_driver_present() else []
    if visible is None:
        return [name for _, _, name in listed]
    chosen = []
    for token in (t.strip() for t in visible.split(",")):
        match = [g for g in listed if token == g[0] or (token and g[1].startswith(token))]
        if not match:
            break  # CUDA stops at the first entry it cannot match
        chosen.append(match[0][2])
    return chosen


def only_torch_lists_the_gpus() -> bool:
    """An NVIDIA driver without nvidia-smi: gpu_names() imports torch to list the GPUs."""
    return _nvidia_driver_present() and _nvidia_smi_gpus() is None


def _nvidia_driver_present() -> bool:
    return any(os.path.exists(device) for device in ("/dev/nvidiactl", "/dev/dxg"))


def _nvidia_smi_gpus() -> list[tuple[str, str, str]] | None:
    """(index, uuid, name) of every GPU nvidia-smi lists; None where it cannot say."""
    query = ["nvidia-smi", "--query-gpu=index,uuid,name", "--format=csv,noheader"]
    out = _output_of(query, timeout=10)
    if out is None:
        return None
    rows = [line.split(",", 2) for line in out.splitlines() if line.count(",") >= 2]
    return [(i.strip(), u.strip(), n.strip()) for i, u, n in rows if n.strip()]


def _torch_gpus() -> list[str]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def describe(cluster_resources: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "git_commit": git_commit(),
        "driver": {
            "cpus": os.cpu_count(),
            "memory_bytes": _memory_bytes(),
            "gpus": gpu_names(),
        },
        "cluster_resources": cluster_resources or {},
    }
