"""Search space (config.ParamSpec) -> an Optuna define-by-run function and a seeded sampler."""

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


class DefineByRun:
    """The function OptunaSearch calls per trial (a class so Tune can pickle it with its
    searcher state); fixed values come back as constants."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = dict(space)

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        fixed = {}
        for name, spec in self.space.items():
            value = suggest(trial, name, spec)
            if spec.type == "fixed":
                fixed[name] = value
        return fixed


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
