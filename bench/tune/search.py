"""One pairing's search: a Tuner driven by Optuna (pruned trials told as pruned), then the
refit of the best configuration on the whole CV pool, scored once on the test split."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from bench.config import AshaConfig, SearchConfig, SearchSpace
from bench.metrics import compute_metrics, get_metric
from bench.results.schema import dumps
from bench.results.store import RunStore
from bench.train.task import history_rows, prediction_rows, refit_epochs
from bench.tune.refit import refit
from bench.tune.space import DefineByRun, distributions, grid_size, make_sampler, warm_study
from bench.tune.trial import (
    CHECKPOINT_FILE,
    COMPLETE_FLAG,
    PairingJob,
    TrialNamer,
    cv_trial,
    read_checkpoint,
    trial_number,
)

logger = logging.getLogger(__name__)


class PrunedAwareOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch tells Optuna COMPLETE for any trial whose last result has the metric,
    so a trial stopped early by ASHA would enter TPE's model with a partial score. Here only a
    trial that reported COMPLETE_FLAG counts as complete; one stopped early is PRUNED."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        finished = bool(result) and bool(result.get(COMPLETE_FLAG))
        super().on_trial_complete(trial_id, result if finished else None, error)


@dataclass(frozen=True)
class SearchPlan:
    space: SearchSpace
    search: SearchConfig
    max_concurrent_trials: int
    callbacks: tuple[Any, ...] = ()  # extra Tune callbacks (bench perf times trials with one)


@dataclass
class PairingOutcome:
    pairing: str
    leaderboard: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)


class ProgressCallback(tune.Callback):
    """Tells the run's progress actor each time a trial of this pairing ends."""

    def __init__(self, progress: Any, pairing: str) -> None:
        self.progress, self.pairing = progress, pairing

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        status = "ok" if result.get(COMPLETE_FLAG) else "pruned"
        self.progress.trial_done.remote(self.pairing, status, result.get("score"))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.progress.trial_done.remote(self.pairing, "failed", None)


def make_scheduler(asha: AshaConfig | None, epochs: int, mode: str) -> Any:
    if asha is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="epoch",
        metric="score",
        mode=mode,
        max_t=epochs,
        grace_period=min(asha.grace_period, epochs),
        reduction_factor=asha.reduction_factor,
    )


def trial_resources(job: PairingJob) -> dict[str, float]:
    r = job.resources
    if r.distributed:
        # The trial function only drives a TorchTrainer whose workers reserve the real
        # resources; Tune refuses an empty bundle, so it holds a token byte of memory.
        return {"cpu": 0, "memory": 1}
    return {"cpu": r.cpus_per_worker, "gpu": r.gpus_per_worker}


def finished_trials(job: PairingJob) -> list[dict[str, Any]]:
    """Rows of the trials that already ran to the end (their parts exist): a resumed search
    does not run them again."""
    store = RunStore(job.store_uri)
    rows = [
        r
        for p in store.list(f"parts/trials/{job.part_name}")
        for r in store.read_table(p).to_pylist()
    ]
    return sorted(rows, key=lambda r: r["trial"])


def interrupted_trials(job: PairingJob, prior: list[dict[str, Any]]) -> dict[str, str]:
    """Trials of an interrupted run that saved a checkpoint but never finished: canonical
    params JSON -> their newest readable checkpoint (run-relative). The params are read from
    the checkpoint itself: Tune syncs a running trial's params.json only now and then."""
    store = RunStore(job.store_uri)
    done = {r["trial"] for r in prior}
    found: dict[str, list[str]] = {}
    for path in store.list("tune"):
        parts = path.split("/")
        if (
            len(parts) != 5
            or parts[-1] != CHECKPOINT_FILE
            or not parts[1].startswith(job.part_name)
            or not parts[2].startswith("trial_")
        ):
            continue
        if trial_number(parts[2]) not in done:
            found.setdefault("/".join(parts[:3]), []).append(path)
    restarts = {}
    for checkpoints in found.values():
        for path in sorted(checkpoints, reverse=True):  # checkpoint_000007 before _000006
            state = read_checkpoint(store, path)
            if state is not None:
                restarts[dumps(state["params"])] = path
                break
    return restarts


def run_search(
    job: PairingJob, plan: SearchPlan, progress: Any, prior: list[dict[str, Any]]
) -> Any:
    """Fit the pairing's Tuner for the trials still to run; returns the ResultGrid (empty when
    every trial already finished)."""
    mode = get_metric(plan.search.metric).mode
    trials = job.ctx.trials
    if plan.search.sampler == "grid":
        trials = min(trials, grid_size(plan.space))  # the grid ends the study when exhausted
    remaining = trials - len(prior)
    if remaining <= 0:
        return []
    restarts = interrupted_trials(job, prior) if prior else {}
    job = dataclasses.replace(job, restarts=restarts)
    searched = distributions(plan.space)
    storage, study_name = warm_study(
        plan.space, mode, [(json.loads(r["params"]), r["score"]) for r in prior]
    )
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # with verbose=0 the legacy reporter stays silent
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna flags multivariate TPE as experimental
        searcher = PrunedAwareOptunaSearch(
            space=DefineByRun(plan.space),
            metric="score",
            mode=mode,
            # A resumed search reseeds past its finished trials, or its startup phase would
            # propose the very points the interrupted search already tried.
            sampler=make_sampler(plan.search.sampler, plan.space, plan.search.seed + len(prior)),
            storage=storage,
            study_name=study_name,
            # cut-off trials run again first, continuing from their checkpoints
            points_to_evaluate=[
                {k: v for k, v in json.loads(key).items() if k in searched} for key in restarts
            ]
            or None,
        )
    namer = TrialNamer(offset=1 + max((r["trial"] for r in prior), default=-1))
    trainable = tune.with_parameters(cv_trial, job=job)
    # Tune registers trainables by name per Ray job; concurrent pairings need distinct names
    # or one pairing's trials would run another's job.
    trainable.__name__ = f"cv_{job.part_name}"
    trainable = tune.with_resources(trainable, trial_resources(job))
    store = RunStore(job.store_uri)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=make_scheduler(plan.search.asha, job.ctx.epochs, mode),
            num_samples=remaining,
            max_concurrent_trials=plan.max_concurrent_trials or None,
            trial_name_creator=namer,
            trial_dirname_creator=namer,
            # A fresh actor per trial costs a process start and the torch import (2-3 s on a
            # small machine, 50x an MLP trial's training); reused actors pay it once per slot.
            # Not with checkpoints: a resumed run's cut-off trial then lost its restart
            # checkpoint (tests/test_resume.py), and checkpointed trials are long anyway.
            reuse_actors=job.ctx.checkpoint_every == 0,
        ),
        run_config=tune.RunConfig(
            # A resumed search is a new experiment beside the interrupted one.
            name=f"{job.part_name}-from-{namer.offset}" if prior else job.part_name,
            storage_path=store.url("tune"),
            verbose=0,
            callbacks=[ProgressCallback(progress, job.ctx.pairing), *plan.callbacks],
            failure_config=tune.FailureConfig(max_failures=plan.search.retries),
        ),
    )
    return tuner.fit()


def trial_rows(job: PairingJob, results: Any) -> list[dict[str, Any]]:
    """One row per trial: finished trials' rows from their parts, the others from Tune."""
    store = RunStore(job.store_uri)
    finished = {
        row["trial"]: row
        for path in store.list(f"parts/trials/{job.part_name}")
        for row in store.read_table(path).to_pylist()
    }
    rows = []
    for result in results:
        number = trial_number(result.path)
        trial_id = (result.metrics or {}).get("trial_id", "")
        if number in finished:
            rows.append(finished.pop(number))
            continue
        status = "failed" if result.error else "pruned"
        last = result.metrics or {}
        rows.append(
            {
                **job.ctx.ids(),
                "trial": number,
                "trial_id": trial_id,
                "params": dumps(dict(result.config or {})),
                "status": status,
                "error": _one_line(result.error) if result.error else "",
                "metric": job.ctx.metric,
                "score": last.get("score", math.nan),
                "epochs_run": last.get("epoch"),
                "wall_seconds": last.get("time_total_s"),
            }
        )
    rows += finished.values()  # trials an interrupted run finished before this search began
    return sorted(rows, key=lambda r: r["trial"])


def _one_line(error: BaseException) -> str:
    """The root cause's message, on one line."""
    cause = error
    for _ in range(8):  # Tune and Ray wrap the trial's own exception a few levels deep
        inner = getattr(cause, "cause", None) or cause.__cause__
        if inner is None:
            break
        cause = inner
    text = f"{type(cause).__name__}: {cause}".strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else text)[:500]


def best_trial(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    ok = [r for r in rows if r["status"] == "ok" and not math.isnan(r["score"])]
    if not ok:
        return None
    sign = 1 if get_metric(metric).higher_is_better else -1
    # Ties go to the earlier trial, so reruns with the same seed pick the same configuration.
    return max(ok, key=lambda r: (sign * r["score"], -r["trial"]))


def search_pairing(job: PairingJob, plan: SearchPlan, progress: Any) -> PairingOutcome:
    """Search, refit and score one pairing; writes its parts and returns its leaderboard row."""
    started = time.perf_counter()
    store = RunStore(job.store_uri)
    ctx = job.ctx
    base = {**ctx.ids(), "metric": ctx.metric, "folds": len(ray.get(job.data).folds)}
    prior = finished_trials(job)
    for row in prior:
        progress.trial_done.remote(ctx.pairing, "ok", row["score"])
    try:
        results = run_search(job, plan, progress, prior)
        rows = trial_rows(job, results)
    except Exception as exc:  # a broken pairing must not sink the other pairings
        logger.exception("search of %s failed", ctx.pairing)
        row = {**base, "status": "failed", "error": _one_line(exc), "num_trials": 0}
        store.write_table("leaderboard", [row], f"parts/leaderboard/{job.part_name}.parquet")
        return PairingOutcome(ctx.pairing, row)
    search_seconds = time.perf_counter() - started
    store.write_table("trials", rows, f"parts/trials_all/{job.part_name}.parquet")
    counts = {
        "num_trials": len(rows),
        "num_failed": sum(r["status"] == "failed" for r in rows),
        "num_pruned": sum(r["status"] == "pruned" for r in rows),
        "search_seconds": search_seconds,
    }
    best = best_trial(rows, ctx.metric)
    if best is None:
        errors = sorted({r["error"] for r in rows if r["error"]})
        reason = errors[0] if errors else "every trial was pruned"
        row = {**base, **counts, "status": "failed", "error": f"no trial finished: {reason}"}
    else:
        row = {**base, **counts, **_refit_and_score(job, best, store)}
    row["wall_seconds"] = time.perf_counter() - started
    store.write_table("leaderboard", [row], f"parts/leaderboard/{job.part_name}.parquet")
    progress.pairing_done.remote(ctx.pairing, row.get("status"), row.get(f"test_{ctx.metric}"))
    return PairingOutcome(ctx.pairing, row, rows)


def _refit_and_score(job: PairingJob, best: dict[str, Any], store: RunStore) -> dict[str, Any]:
    ctx, data = job.ctx, ray.get(job.data)
    params = json.loads(best["params"])
    folds = store.read_table(f"parts/folds/{job.part_name}/{best['trial']:05d}.parquet")
    folds = folds.to_pylist()  # the part holds exactly this trial's folds
    epochs = refit_epochs(folds, ctx.epochs)
    outcome, parameters = refit(job, params, epochs)
    report = compute_metrics(data.test_y, outcome.test_proba, data.num_classes)
    store.write_table(
        "predictions",
        prediction_rows(ctx, data, outcome.test_proba),
        f"parts/predictions/{job.part_name}.parquet",
    )
    store.write_table(
        "epochs",
        history_rows(ctx, best["trial"], "refit", outcome.history),
        f"parts/epochs/{job.part_name}/refit.parquet",
    )
    return {
        "status": "ok",
        "error": "",
        "best_trial": best["trial"],
        "best_params": best["params"],
        **{k: v for k, v in best.items() if k.startswith("cv_")},
        **{f"test_{k}": v for k, v in report.values.items()},
        "test_metric_notes": report.notes_text(),
        "test_per_class": dumps(report.per_class),
        "test_confusion": dumps(report.confusion),
        "classes": dumps(list(data.classes)),
        "test_samples": len(data.test_y),
        "num_params": parameters,
        "refit_epochs": epochs,
        "refit_seconds": outcome.train_seconds,
        "refit_samples_per_second": outcome.samples_per_second,
    }
