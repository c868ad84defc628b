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


def warm_study(space: SearchSpace, mode: str, finished: list[tuple[dict[str, Any], float]]):
    """(storage, study name) of an in-memory study that already holds `finished` trials as
    complete, so a resumed OptunaSearch keeps what the interrupted one learned."""
    storage = optuna.storages.InMemoryStorage()
    name = "bench"
    study = optuna.create_study(
        storage=storage, study_name=name, direction="maximize" if mode == "max" else "minimize"
    )
    dists = distributions(space)
    for params, value in finished:
        searched = {k: v for k, v in params.items() if k in dists}
        study.add_trial(
            optuna.trial.create_trial(
                params=searched, distributions={k: dists[k] for k in searched}, value=value
            )
        )
    return storage, name
