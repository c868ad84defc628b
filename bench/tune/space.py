"""Search space (config.ParamSpec) -> Optuna: parameters drawn by a trial, a seeded sampler, the
distributions of the searched parameters."""

from __future__ import annotations

import math
from typing import Any

import optuna

from bench.config import ParamSpec, SearchSpace


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


def make_sampler(kind: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        grid = {n: s.grid_values() for n, s in space.items() if s.type == "choice"}
        return optuna.samplers.GridSampler(grid, seed=seed)
    # multivariate TPE models interactions (lr x batch size) that independent TPE misses.
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=4)


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
