"""Every pairing's search in one Tuner: one searcher holding one Optuna study per pairing, one
scheduler with an ASHA per pairing, one pool of reused trial actors sized by the cluster, and
each pairing's refit run in that pool as soon as its search ends.

`SearchRun` is the run's driver-side state: which pairing runs next (longest first, each
within its trial budget and concurrency), which datasets are loaded, what each trial's end
means for its pairing, and what the console (bench.progress) is told of it."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Container, Sequence
from typing import Any

import ray
import ray.cloudpickle as cloudpickle
from ray import tune
from ray.tune.search import Searcher

from bench.config import SearchConfig
from bench.metrics import Objective
from bench.progress import PairingStatus, Progress
from bench.results.store import RunStore
from bench.tune.datasets import DatasetPool
from bench.tune.jobs import REFIT, TrialPlan, trial_dir_name
from bench.tune.pairing import (
    DONE,
    REFIT_READY,
    REFITTING,
    SEARCHING,
    SKIPPED,
    WAITING,
    PairingSearch,
)
from bench.tune.scheduling import (
    LOOKAHEAD,
    Capacity,
    Demand,
    PairingScheduler,
    TrialResources,
)
from bench.tune.trainable import run_trial

MISSED_ENDS_SECONDS = 5.0


class SearchRun:
    """The driver's side of a run's search, fed by Tune's searcher and callbacks."""

    def __init__(
        self,
        pairings: Sequence[PairingSearch],
        datasets: DatasetPool,
        store: RunStore,
        capacity: Capacity,
        display: Progress,
    ) -> None:
        self.order = list(pairings)  # highest priority first
        self.datasets, self.store, self.capacity = datasets, store, capacity
        self.display, self.echo = display, display.echo  # echo: messages above the table
        self.by_trial: dict[str, PairingSearch] = {}
        self.looked_for_missed = -math.inf
        for pairing in self.order:
            if pairing.search_ended:  # a resumed pairing whose trials all finished before
                self._finish_search(pairing)
        for pairing in self.order:
            display.add(status_of(pairing, capacity.waiting))

    # -- what Tune's searcher asks -----------------------------------------------------------

    def next_trial(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next trial's config: a ready refit first, then a trial of the highest-priority
        pairing that wants one; None to wait; FINISHED when nothing is left to hand out."""
        for pairing in self.order:
            if pairing.phase == REFIT_READY and self._has_data(pairing):
                return self._hand_out(trial_id, pairing, pairing.start_refit())
        for pairing in self.order:
            if not pairing.wants_trial():
                continue
            demand = Demand.of(pairing.job.resources)
            if (
                not self.capacity.allows(demand)
                or self.capacity.held_back(demand)
                or self._queued_before_a_refit(demand)
            ):
                return None  # strict priority: a lower pairing must not take its place
            if self._has_data(pairing):
                return self._hand_out(trial_id, pairing, pairing.ask(trial_id))
        if all(p.phase in (REFITTING, DONE, SKIPPED) for p in self.order):
            return Searcher.FINISHED
        return None

    def _queued_before_a_refit(self, demand: Demand) -> bool:
        """A trial that could only queue must not queue ahead of the refit of a pairing whose
        last trials run now, if their shapes differ: that refit could not reuse their actor
        and would wait behind the queue. (A trial that starts at once never waits for it.)"""
        if self.capacity.runs_now(demand):
            return False
        return any(p.search_finishing and Demand.of(p.job.resources) != demand for p in self.order)

    def _hand_out(self, trial_id: str, pairing: PairingSearch, config: dict) -> dict[str, Any]:
        self.by_trial[trial_id] = pairing
        self.capacity.handed_out(trial_id, Demand.of(pairing.job.resources))
        return config

    def _has_data(self, pairing: PairingSearch) -> bool:
        """Load the pairing's dataset if it is not loaded; a dataset that fails to load skips
        its pairings (nothing is written for them, so a resume runs them)."""
        key = pairing.job.dataset
        if self.datasets.acquire(key):
            return True
        for other in self.order:
            if other.job.dataset == key and other.phase in (WAITING, SEARCHING, REFIT_READY):
                other.phase = SKIPPED
                self._show(other)
        self.echo(f"  dataset {key}: {self.datasets.failed[key]}")
        return False

    # -- what Tune's callbacks report --------------------------------------------------------

    def trial_started(self, trial_id: str) -> None:
        self.capacity.started(trial_id)
        if trial_id in self.by_trial:
            self._show(self.by_trial[trial_id])

    def trial_requeued(self, trial_id: str) -> None:
        self.capacity.requeued(trial_id)
        if trial_id in self.by_trial:
            self._show(self.by_trial[trial_id])

    def trial_ended(self, trial: Any, error: str | None) -> None:
        pairing = self.by_trial.pop(trial.trial_id, None)
        if pairing is None:
            return  # told already
        self.capacity.ended(trial.trial_id)
        try:
            if trial.config["kind"] == REFIT:
                pairing.refit_ended(self.store, error)
            else:
                pairing.trial_ended(self.store, trial.trial_id, trial.last_result or {}, error)
                if pairing.search_ended:
                    self._finish_search(pairing)
        except Exception as exc:  # e.g. the store unwritable: this pairing, not the run
            self._give_up(pairing, f"bench could not record its trials: {one_line(exc)}")
        for shown in (pairing, *pairing.followers):  # a search's end may end its followers
            self._show(shown)

    def missed_ends(self, trials: Sequence[Any]) -> None:
        """Trials Tune ended without a callback (an actor that could not be reused errors
        the trial it was given without telling the callbacks): tell their pairings. Called
        every Tune step, it looks every few seconds: such an end is rare, the scan is not."""
        if time.monotonic() - self.looked_for_missed < MISSED_ENDS_SECONDS:
            return
        self.looked_for_missed = time.monotonic()
        for trial in trials:
            if trial.trial_id in self.by_trial and trial.status in ("TERMINATED", "ERROR"):
                self.trial_ended(trial, trial_error(trial) if trial.status == "ERROR" else None)

    def _give_up(self, pairing: PairingSearch, reason: str) -> None:
        if pairing.phase == DONE:
            return
        self.echo(f"  {pairing.name}: {reason}")
        with contextlib.suppress(Exception):  # the same failure may stop this write too
            pairing.fail(self.store, reason)
        pairing.phase = DONE
        pairing.refit = None
        self._hand_on_choice(pairing)

    def _finish_search(self, pairing: PairingSearch) -> None:
        pairing.finish_search(self.store)
        self._hand_on_choice(pairing)

    def _hand_on_choice(self, pairing: PairingSearch) -> None:
        """Repeats that refit this search's choice (evaluation.search: once) get it now; if the
        search chose nothing, they fail with it."""
        for follower in pairing.followers:
            if follower.phase != WAITING:
                continue
            if pairing.refit is not None or pairing.unchanged_choice():
                follower.follow({**pairing.choice, "refit_epochs": pairing.refit_epochs})
            else:
                reason = pairing.summary.get("error") or "the search failed"
                follower.fail(self.store, f"repeat {pairing.job.plan.repeat}: {reason}")

    # -- the console -------------------------------------------------------------------------

    def _show(self, pairing: PairingSearch) -> None:
        self.display.update(status_of(pairing, self.capacity.waiting))

    @property
    def data_errors(self) -> dict[str, str]:
        return dict(self.datasets.failed)


class RunSearcher(Searcher):
    """Tune's search algorithm for the whole run: each suggestion is the next trial (or refit)
    of whichever pairing `SearchRun` says should run next. Optuna is told how trials end by
    SearchRun itself (it sees the errors), not through this class."""

    def __init__(self, run: SearchRun) -> None:
        # No metric for Tune to check on every result: a refit reports none.
        super().__init__(metric=None, mode=None)
        self.run = run

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        return self.run.next_trial(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        pass

    def save(self, checkpoint_path: str) -> None:
        pass  # resuming reads the run's own files, not Tune's experiment state

    def restore(self, checkpoint_path: str) -> None:
        pass

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its config once (tuner.pkl, for Tuner.restore, which bench does not
        # use): the run's state (studies, dataset refs) stays out of it.
        return {**self.__dict__, "run": None}


def status_of(pairing: PairingSearch, waiting: Container[str]) -> PairingStatus:
    """What the console shows of a pairing now (`waiting`: trials handed out, not started)."""
    state, done = pairing.progress, pairing.phase == DONE
    return PairingStatus(
        name=pairing.name,
        metric=pairing.metric,
        phase=pairing.phase,
        total=pairing.total,
        done=state["done"],
        running=sum(trial_id not in waiting for trial_id in pairing.live),
        pruned=state["pruned"],
        failed=state["failed"],
        best=pairing.best_score,
        folds=pairing.folds,
        finished=pairing.phase in (DONE, SKIPPED),
        status=pairing.summary.get("status") if done else None,
        test=pairing.test_score,
        error=(pairing.summary.get("error") or "") if done else "",
    )


class RunCallback(tune.Callback):
    """Tune's trial events, passed to the run's state (callbacks see a failed trial's error,
    which the searcher is not given)."""

    def __init__(self, run: SearchRun) -> None:
        self.run = run

    def on_step_begin(self, iteration, trials, **info):
        self.run.missed_ends(trials)
        self.run.display.tick()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run.trial_started(trial.trial_id)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.run.trial_requeued(trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.run.trial_ended(trial, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.run.trial_ended(trial, trial_error(trial))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "run": None}  # see RunSearcher.__getstate__


def trial_error(trial: Any) -> str:
    """The root cause of a failed trial, on one line (Tune has just pickled it beside the
    trial's files; its text form is the fallback)."""
    path = trial.pickled_error_file
    if path and os.path.isfile(path):
        with open(path, "rb") as f:
            return one_line(cloudpickle.load(f))
    path = trial.error_file
    if path and os.path.isfile(path):
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
        return (lines[-1] if lines else "unknown error")[:500]
    return "the trial failed (no error recorded)"


def one_line(error: BaseException) -> str:
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


def run_search(
    run: SearchRun,
    trial_plan: TrialPlan,
    search: SearchConfig,
    experiment: str,
    callbacks: Sequence[Any] = (),
    debug: bool = False,
) -> None:
    """Fit the run's one Tuner until every pairing is done (or skipped); Tune's own warnings
    show only with `debug`."""
    cpus = ray.cluster_resources().get("CPU", 1)
    os.environ.update(
        {
            "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0 the legacy reporter stays silent
            # bench writes its own rows; Tune's per-result CSV/JSON files would cost the
            # driver a write per epoch of every trial
            "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
            # Tune requests actors for at most this many queued trials; the searcher keeps
            # the queue itself (LOOKAHEAD), so this must not cut it shorter
            "TUNE_MAX_PENDING_TRIALS_PG": str(int(cpus * LOOKAHEAD) + 2),
            # Ctrl-C raises KeyboardInterrupt here: bench merges what finished and prints the
            # resume command (Tune's own handler would end the run as if it had completed)
            "TUNE_DISABLE_SIGINT_HANDLER": "1",
            # a failed trial is recorded in trials.parquet with its error (and counted on the
            # console); Tune would also print its whole traceback
            "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
        }
    )
    mode = Objective(search.metric).mode
    trainable = tune.with_parameters(run_trial, trial_plan=trial_plan)
    trainable.__name__ = "bench_trial"
    resources = {name: job.resources for name, job in trial_plan.jobs.items()}
    trainable = tune.with_resources(trainable, TrialResources(resources))
    epochs = {name: job.plan.epochs for name, job in trial_plan.jobs.items()}
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=RunSearcher(run),
            scheduler=PairingScheduler(search.asha, epochs, mode),
            num_samples=-1,  # the searcher says when the run is finished
            trial_name_creator=lambda trial: trial_dir_name(trial.config),
            trial_dirname_creator=lambda trial: trial_dir_name(trial.config),
            # A fresh actor per trial costs a process start and the torch import (2-3 s on a
            # small machine, 50x an MLP trial's training); reused actors pay it once per slot.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=experiment,
            storage_path=run.store.url("tune"),
            verbose=0,
            callbacks=[RunCallback(run), *callbacks],
            failure_config=tune.FailureConfig(max_failures=search.retries),
        ),
    )
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    if not debug:
        tune_logger.setLevel(logging.ERROR)  # Tune's warnings are about its own defaults
    try:
        with steady_working_directory():
            tuner.fit()
    finally:
        tune_logger.setLevel(level)


@contextlib.contextmanager
def steady_working_directory():
    """Run in a folder that outlives the Tuner. Tune reads its experiment's files through
    paths relative to the working directory, and a Ray Job's working directory can be removed
    while it runs (seen with two nodes sharing one machine's /tmp/ray: the second node's agent
    deleted the job's unpacked working_dir when its trial actors ended)."""
    try:
        previous = os.getcwd()
    except FileNotFoundError:
        previous = None
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as folder:
        os.chdir(folder)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, TypeError):
                os.chdir(previous)
