"""The driver's one door to Ray: joining or starting a cluster, reading its resources, and
sharing an object through the object store. Orchestration code (the runner, `bench perf`)
calls these functions and imports no Ray itself; the search itself is bench.tune's."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import ray

from bench.config import ResourcesConfig

# A local instance keeps no idle worker processes: none prestarted for the first driver, and
# one that ran decode tasks exits a second after its last (soft limit 0; the trials' actors
# hold their own workers). Otherwise one sat idle beside the trials for the whole run, 45 to
# 84 MB on the 6,000-image probe; starting a worker when one is needed takes ~1 s.
LOCAL_SYSTEM_CONFIG = {"prestart_worker_first_driver": False, "num_workers_soft_limit": 0}


def connect(
    address: str | None = None,
    echo: Callable[[str], None] = print,
    debug: bool = False,
    dashboard: bool = False,
) -> bool:
    """Join the cluster named by `address` / RAY_ADDRESS (`auto` for one `ray start` made on
    this machine), or start a fresh local instance: without Ray's dashboard, whose web server
    and module processes take ~0.24 GB that a local run needs for training, or with it
    (`dashboard`), listening on loopback only. True when it started that local instance (no
    autoscaler will ever add nodes to it). Ray's start-up notices show only with `debug`."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    # Worker output (Tune's and Ray's shutdown chatter) stays in Ray's session logs; the
    # console shows bench's progress, and failures are recorded in trials.parquet. While Ray
    # starts, its driver logs only errors: its notices then (that it turned token
    # authentication on, where the dashboard listens) are not a bench user's to act on.
    level = logging.INFO if debug else logging.ERROR
    common = {"logging_level": level, "log_to_driver": False}
    if address:
        from bench.cluster import join

        echo(f"bench: joining the Ray cluster at {address} ...")
        join(address, **common)
    else:
        started = ray.init(
            address="local",
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            _system_config=LOCAL_SYSTEM_CONFIG,
            **common,
        )
        if dashboard:
            echo(f"bench: Ray's dashboard: http://{started.dashboard_url}")
    if not debug:
        logging.getLogger("ray").setLevel(logging.WARNING)  # started: its warnings show again
    return not address


def joins_a_cluster(address: str | None) -> bool:
    """Whether connect(address) would join a cluster rather than start a local instance."""
    return ray.is_initialized() or bool(address or os.environ.get("RAY_ADDRESS"))


def alive_nodes() -> list[dict[str, float]]:
    """Each live node's resources (CPU, GPU, ...)."""
    return [node["Resources"] for node in ray.nodes() if node["Alive"]]


def cluster_resources() -> dict[str, float]:
    """The cluster's total resources now (CPU, GPU, memory, ...)."""
    return dict(ray.cluster_resources())


def trial_slots(r: ResourcesConfig, cluster: Mapping[str, float] | None = None) -> int:
    """How many trials of these resources the cluster (its resources, read now if not given)
    can run at once."""
    cluster = cluster_resources() if cluster is None else cluster
    cpus = cluster.get("CPU", 1)
    slots = int(cpus // (r.cpus_per_worker * r.workers)) or 1
    if r.gpus_per_worker:
        gpus = cluster.get("GPU", 0)
        slots = min(slots, int(gpus // (r.gpus_per_worker * r.workers)) or 1)
    return slots


def put(value: Any) -> Any:
    """`value` in the object store: a reference every node's workers can fetch zero-copy."""
    return ray.put(value)


def shared_copy(value: Any) -> Any:
    """`value` as a trial gets it from the object store (arrays come back read-only, zero-copy)."""
    return ray.get(ray.put(value))
