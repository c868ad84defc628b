"""Search space (config.ParamSpec) -> Optuna: parameters drawn by a trial, a seeded sampler, the
distributions of the searched parameters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import optuna

from bench.config import ParamSpec, SearchSpace
from bench.seeds import PROPOSAL, derive_seed


def suggest(trial: optuna.Trial, name: str, spec: ParamSpec) -> Any:
    if spec.type == "loguniform":
        return trial.suggest_float(name, spec.low, spec.high, log=True)
    if spec.type == "uniform":
        return trial.suggest_float(name, spec.low, spec.high)
    if spec.type == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
    if spec.type == "choice":
        return trial.suggest_categorical(name, spec.values)
    return spec.value


def sample_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """One configuration of `space` drawn by an Optuna trial (ask/tell, define-by-run): the
    searched parameters as the sampler proposes them, the fixed ones as given."""
    return {name: suggest(trial, name, spec) for name, spec in space.items()}


def grid_size(space: SearchSpace) -> int:
    return math.prod(len(spec.grid_values()) for spec in space.values())


class _SeededPerTrial:
    """A sampler whose random draws for trial n come from a stream of its own, derived from the
    search seed and n: a proposal depends on the seed, the trial's number and what the study
    was told, never on how many proposals this process made before. So a run resumed after its
    driver was killed proposes what the uninterrupted run would have."""

    trial_seed: int = 0

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        for k, state in enumerate(_random_states(self)):
            state.seed(derive_seed(self.trial_seed, trial.number, k, PROPOSAL))
        super().before_trial(study, trial)  # type: ignore[misc]


def _random_states(sampler: Any) -> Iterator[np.random.RandomState]:
    """The RandomStates a sampler draws from (TPE's own and its startup RandomSampler's)."""
    for value in vars(sampler).values():
        if isinstance(value, optuna.samplers.BaseSampler):
            yield from _random_states(value)
        elif isinstance(getattr(value, "rng", None), np.random.RandomState):
            yield value.rng  # optuna's LazyRandomState


class TrialSeededTPE(_SeededPerTrial, optuna.samplers.TPESampler):
    pass


class TrialSeededRandom(_SeededPerTrial, optuna.samplers.RandomSampler):
    pass


class TrialSeededGrid(_SeededPerTrial, optuna.samplers.GridSampler):
    pass


def make_sampler(kind: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    sampler: _SeededPerTrial
    if kind == "random":
        sampler = TrialSeededRandom(seed=seed)
    elif kind == "grid":
        grid = {n: s.grid_values() for n, s in space.items() if s.type == "choice"}
        sampler = TrialSeededGrid(grid, seed=seed)
    else:
        # multivariate TPE models interactions (lr x batch size) that independent TPE misses.
        sampler = TrialSeededTPE(seed=seed, multivariate=True, n_startup_trials=4)
    sampler.trial_seed = seed
    return sampler  # type: ignore[return-value]


def distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """The Optuna distribution of every searched (non-fixed) parameter, for telling a study
    about trials it did not run itself (a resumed search)."""
    d = optuna.distributions
    out: dict[str, d.BaseDistribution] = {}
    for name, spec in space.items():
        if spec.type in ("loguniform", "uniform"):
            out[name] = d.FloatDistribution(spec.low, spec.high, log=spec.type == "loguniform")
        elif spec.type == "int":
            out[name] = d.IntDistribution(int(spec.low), int(spec.high), log=spec.log)
        elif spec.type == "choice":
            out[name] = d.CategoricalDistribution(spec.values)
    return out
