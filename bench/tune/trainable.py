"""The Tune trainable as the driver names it. The driver pickles it by reference, so this
module is imported there: it imports no torch. The training code it runs (bench.tune.trial,
and torch with it) is imported in the trial actor only: torch's import alone takes ~270 MB of
private memory in every process that makes it, and a driver has no use for it."""

from __future__ import annotations

from typing import Any

from bench.tune.jobs import TrialPlan


def run_trial(config: dict[str, Any], trial_plan: TrialPlan) -> None:
    """A CV trial or a refit (bench.tune.trial.run_trial)."""
    from bench.tune import trial

    trial.run_trial(config, trial_plan)
