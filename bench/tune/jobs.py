"""What a run's trials are told: each pairing's job, the plan every trial actor receives once,
and the names of trials, their kinds and their folders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.config import ResourcesConfig
from bench.plan import PairingPlan
from bench.results.schema import REPLICATES
from bench.results.store import part_name

COMPLETE_FLAG = "cv_complete"  # only a trial that ran to its natural end reports this
CV, REFIT = "cv", "refit"  # the two kinds of trial (config["kind"])
CHECKPOINT_FILE = "cv_state.pt"

REFIT_PARTS = "parts/refit"
# A replicate row has two writers: the refit writes its columns to its part (the driver's left
# null) and the driver (bench.tune.pairing) completes the row with its own.
DRIVER_COLUMNS = (
    "status",
    "error",
    "metric",
    "best_trial",
    "best_params",
    "selection_score",
    "folds",
    "max_epochs",
    "search_seconds",
    "wall_seconds",
)
REFIT_COLUMNS = tuple(c for c in REPLICATES.names if c not in DRIVER_COLUMNS)


@dataclass(frozen=True)
class PairingJob:
    """What the trials and the refit of one (model, dataset) pairing need besides their
    hyperparameters. Its dataset's ref comes with the run's TrialPlan."""

    plan: PairingPlan
    # Resumed runs: params (canonical JSON) of trials a killed run left unfinished -> the
    # run-relative path of their last readable checkpoint, to continue from.
    restarts: dict[str, str] = field(default_factory=dict)

    @property
    def part_name(self) -> str:
        """The pairing's repeat as a file-name-safe string."""
        return part_name(self.plan.pairing)

    @property
    def resources(self) -> ResourcesConfig:
        return self.plan.resources

    @property
    def dataset(self) -> str:
        """The dataset's key in the definition."""
        return self.plan.dataset


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a run needs, handed to the trial actors once (tune.with_parameters)."""

    store_uri: str
    jobs: dict[str, PairingJob]  # pairing -> its job
    # dataset key -> ObjectRefs of its repeats' ImageData (DatasetPool.refs, every dataset
    # loaded before the first trial); a trial actor borrows the refs with the plan.
    datasets: dict[str, list[Any]]

    def dataset_ref(self, key: str, repeat: int) -> Any:
        return self.datasets[key][repeat]


def trial_dir_name(config: dict[str, Any]) -> str:
    """`mlp@digits.r0-trial_00004` for the 5th trial of repeat 0 (0-based like Optuna's
    numbers), `mlp@digits.r0-refit` for its refit: Tune's trial name and folder under tune/."""
    name = part_name(config["pairing"])
    return f"{name}-refit" if config["kind"] == REFIT else f"{name}-trial_{config['trial']:05d}"


def trial_number(dir_name: str) -> int:
    return int(dir_name.rstrip("/").rsplit("/", 1)[-1].rsplit("-trial_", 1)[-1])
