"""A Tune callback that times trials on the driver's clock (bench perf's per-trial overhead)."""

from __future__ import annotations

import time

from ray import tune


class TrialClock(tune.Callback):
    """When Tune started and completed each trial."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.completed: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.perf_counter()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed[trial.trial_id] = time.perf_counter()

    def wall(self, trial_id: str) -> float:
        return self.completed[trial_id] - self.started[trial_id]
