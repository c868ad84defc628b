"""Where the CPU and memory went while bench ran, read from /proc: CPU seconds per kind of
process (trial actors, which also run the refits; Ray's daemons; the driver, which runs the
search), the Ray worker processes started, and the machine's memory in use. A bench / plain
gap on a small machine is made of these, not of the training loop (section 1 times that).

Linux only (elsewhere the figures read as skipped). A process is sampled every half second,
so one that starts and ends between two samples is missed; a worker is named by the last
task or actor it ran (Ray retitles it `ray::IDLE` when the task ends)."""

from __future__ import annotations

import os
from pathlib import Path

from bench.perf.sampling import PeriodicSampler

PROC = Path("/proc")
# (group, title prefixes of Ray workers, words in the command lines of Ray's daemons)
GROUPS = (
    ("trial actors", ("ray::ImplicitFunc",), ()),
    (
        "Ray daemons",
        ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray-dashboard"),
        ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor.py"),
    ),
)


def _read(pid: str) -> tuple[str, float] | None:
    """(title, CPU seconds so far) of one process, or None once it is gone."""
    try:
        stat = (PROC / pid / "stat").read_text()
        title = (PROC / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return title, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuSampler(PeriodicSampler):
    """CPU seconds every process on this machine used while the block ran."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(interval)
        self.available = PROC.is_dir()
        self.start_cpu: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.title: dict[str, str] = {}

    def sample(self) -> None:
        for pid in (p.name for p in PROC.iterdir() if p.name.isdigit()):
            seen = _read(pid)
            if seen is None:
                continue
            title, cpu = seen
            self.cpu[pid] = cpu
            if title and not title.startswith("ray::IDLE"):
                self.title[pid] = title
            elif pid not in self.title:
                self.title[pid] = title

    def __enter__(self) -> CpuSampler:
        if self.available:
            self.sample()
            self.start_cpu = dict(self.cpu)
            super().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.available:
            super().__exit__(*exc)
            self.sample()  # what ran since the last tick

    def used(self) -> dict[str, float]:
        """CPU seconds per process during the block (new processes: all of theirs)."""
        return {pid: cpu - self.start_cpu.get(pid, 0.0) for pid, cpu in self.cpu.items()}

    def by_group(self) -> dict[str, float]:
        """CPU seconds per group of GROUPS, plus `driver` (this process) and `other`."""
        own = str(os.getpid())
        totals = {name: 0.0 for name, _, _ in GROUPS} | {"driver": 0.0, "other": 0.0}
        for pid, seconds in self.used().items():
            title = self.title.get(pid, "")
            group = "driver" if pid == own else _group_of(title)
            totals[group] += seconds
        return totals

    def workers_started(self) -> int:
        """Ray worker processes (titled `ray::...`, Ray's own agents aside) that appeared while
        the block ran."""
        return sum(
            1
            for pid, title in self.title.items()
            if pid not in self.start_cpu
            and title.startswith("ray::")
            and _group_of(title) != "Ray daemons"
        )


class MemorySampler(PeriodicSampler):
    """The machine's memory in use (MemTotal - MemAvailable, bytes): before the block and its
    peak during it."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(interval)
        self.available = (PROC / "meminfo").is_file()
        self.start = self.peak = 0.0

    def sample(self) -> None:
        fields = {}
        for line in (PROC / "meminfo").read_text().splitlines():
            name, value = line.split(":", 1)
            fields[name] = float(value.split()[0]) * 1024  # kB
        self.peak = max(self.peak, fields["MemTotal"] - fields["MemAvailable"])

    def __enter__(self) -> MemorySampler:
        if self.available:
            self.sample()
            self.start = self.peak
            super().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.available:
            super().__exit__(*exc)


def _group_of(title: str) -> str:
    for group, prefixes, words in GROUPS:
        if title.startswith(prefixes) or any(word in title for word in words):
            return group
    return "other"
