"""How the run's one Tuner is paced: the cluster's capacity in trials, each trial's resource
request, and the TrialScheduler that gives each pairing its own ASHA and starts refits first.

Trial actors are reused only for a trial already queued with the same resources when one
ends, so the searcher keeps a short queue (a quarter of the cluster beyond what runs), and
holds back trials of another shape while one waits for its resources, so a two-CPU trial
is not starved by one-CPU trials that keep taking the cores it needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray.tune.execution.placement_groups import resource_dict_to_pg_factory
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from bench.config import AshaConfig, ResourcesConfig
from bench.tune.jobs import REFIT

LOOKAHEAD = 1.25  # trials handed out, as a multiple of what the cluster runs at once
REFRESH_SECONDS = 5.0  # an autoscaling cluster grows; re-read its resources this often


@dataclass(frozen=True)
class Demand:
    """What one trial occupies while it runs; equal demands share trial actors."""

    worker_cpus: float  # what one worker needs of a single node
    worker_gpus: float = 0.0
    workers: int = 1
    distributed: bool = False  # a DDP trial: its TorchTrainer's workers hold the resources

    @classmethod
    def of(cls, r: ResourcesConfig) -> Demand:
        return cls(r.cpus_per_worker, r.gpus_per_worker, r.workers, r.distributed)

    @property
    def cpus(self) -> float:
        return self.worker_cpus * self.workers

    @property
    def gpus(self) -> float:
        return self.worker_gpus * self.workers


def trial_resources(r: ResourcesConfig) -> Any:
    """Tune's resource request for a trial of these resources."""
    if r.distributed:
        # The trial function only drives a TorchTrainer whose workers reserve the real
        # resources; Tune refuses an empty bundle, so it holds a token byte of memory.
        return resource_dict_to_pg_factory({"cpu": 0, "memory": 1})
    return resource_dict_to_pg_factory({"cpu": r.cpus_per_worker, "gpu": r.gpus_per_worker})


class TrialResources:
    """tune.with_resources' callable: a trial's request from its pairing's resources."""

    def __init__(self, resources: dict[str, ResourcesConfig]) -> None:
        self.requests = {pairing: trial_resources(r) for pairing, r in resources.items()}

    def __call__(self, config: dict[str, Any]) -> Any:
        return self.requests[config["pairing"]]


class Capacity:
    """The trials handed out and not yet ended, against the cluster's CPUs and GPUs.

    A trial no node can place (more CPUs or GPUs per worker than any node has, on a cluster
    whose autoscaler may yet add one) waits without counting against the others: it must not
    stop every other pairing."""

    def __init__(self, nodes: Callable[[], list[dict[str, float]]]) -> None:
        self.nodes, self.read_at, self.seen = nodes, -REFRESH_SECONDS, []
        self.live: dict[str, Demand] = {}
        self.waiting: set[str] = set()  # handed out, not started yet

    def _nodes(self) -> list[dict[str, float]]:
        if time.monotonic() - self.read_at >= REFRESH_SECONDS:
            self.seen, self.read_at = [dict(n) for n in self.nodes()], time.monotonic()
        return self.seen

    def placeable(self, demand: Demand) -> bool:
        return any(
            n.get("CPU", 0.0) >= demand.worker_cpus and n.get("GPU", 0.0) >= demand.worker_gpus
            for n in self._nodes()
        )

    def _used(self, unit: str) -> float:
        counted = [
            d
            for t, d in self.live.items()
            if t not in self.waiting or self.placeable(d)  # see the class docstring
        ]
        return sum(d.cpus if unit == "CPU" else d.gpus for d in counted)

    def _have(self, unit: str) -> float:
        return sum(n.get(unit, 0.0) for n in self._nodes())

    def allows(self, demand: Demand) -> bool:
        """Whether one more trial of `demand` may be handed out now."""
        for unit, wanted in (("CPU", demand.cpus), ("GPU", demand.gpus)):
            if not wanted:
                continue
            used, have = self._used(unit), self._have(unit)
            # A queued DDP trial would start its worker group and wait inside it: never ahead.
            fits = used + wanted <= have if demand.distributed else used < have * LOOKAHEAD
            if not fits and used:  # with nothing live, one may wait for a node to join
                return False
        return True

    def held_back(self, demand: Demand) -> bool:
        """A placeable trial of another shape has not started yet: let it start first (it
        would wait behind trials of this shape taking the resources it needs)."""
        return any(self.live[t] != demand and self.placeable(self.live[t]) for t in self.waiting)

    def runs_now(self, demand: Demand) -> bool:
        """Whether a trial of `demand` would start at once (not only join the queue)."""
        return all(
            self._used(unit) + wanted <= self._have(unit)
            for unit, wanted in (("CPU", demand.cpus), ("GPU", demand.gpus))
            if wanted
        )

    def handed_out(self, trial_id: str, demand: Demand) -> None:
        self.live[trial_id] = demand
        self.waiting.add(trial_id)

    def started(self, trial_id: str) -> None:
        self.waiting.discard(trial_id)

    def requeued(self, trial_id: str) -> None:
        """A failed trial Tune retries waits for resources again."""
        if trial_id in self.live:
            self.waiting.add(trial_id)

    def ended(self, trial_id: str) -> None:
        self.live.pop(trial_id, None)
        self.waiting.discard(trial_id)


class PairingScheduler(FIFOScheduler):
    """ASHA per pairing (a trial is compared only with trials of its own pairing, over its own
    epochs); refits never stopped and started before queued trials."""

    def __init__(self, asha: AshaConfig | None, epochs: dict[str, int], mode: str) -> None:
        super().__init__()
        self.asha, self.epochs, self.mode = asha, epochs, mode
        self.by_pairing: dict[str, ASHAScheduler] = {}

    def _asha_of(self, trial: Any) -> ASHAScheduler | None:
        if self.asha is None or trial.config.get("kind") == REFIT:
            return None
        pairing = trial.config["pairing"]
        if pairing not in self.by_pairing:
            epochs = self.epochs[pairing]
            self.by_pairing[pairing] = ASHAScheduler(
                time_attr="epoch",
                metric="score",
                mode=self.mode,
                max_t=epochs,
                grace_period=min(self.asha.grace_period, epochs),
                reduction_factor=self.asha.reduction_factor,
                stop_last_trials=False,  # see on_trial_result
            )
        return self.by_pairing[pairing]

    def on_trial_add(self, tune_controller, trial) -> None:
        if asha := self._asha_of(trial):
            asha.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        asha = self._asha_of(trial)
        # A trial at its last epoch is done training: its complete score must still arrive.
        last = result.get("epoch", 0) >= self.epochs[trial.config["pairing"]]
        if asha is None or last:
            return TrialScheduler.CONTINUE
        return asha.on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        if asha := self._asha_of(trial):
            asha.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        if asha := self._asha_of(trial):
            asha.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller) -> Any:
        """The first queued refit, else the first queued trial (called every Tune step)."""
        first = None
        for trial in tune_controller.get_trials():
            if trial.status in ("PENDING", "PAUSED"):
                if trial.config.get("kind") == REFIT:
                    return trial
                first = first or trial
        return first
