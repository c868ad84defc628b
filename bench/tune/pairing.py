"""One pairing's repeat as the run's driver keeps it: an Optuna study asked and told directly
(pruned trials told as pruned) in fixed batches, the trial budget, the trials it handed out and
how they ended, then its refit and its row of replicates.parquet. A repeat that only refits
(evaluation.search: once, repeat > 0) waits for repeat 0's choice instead of searching.

The trial actors write the rows of trials that finish (their parts); this side writes the rows
only it knows: failed and pruned trials, the repeat's trial list and its replicate row."""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from bench.metrics import Objective
from bench.plan import PairingPlan
from bench.results.names import trial_part
from bench.results.schema import CV_COLUMNS, dumps, make_row
from bench.results.store import RunStore
from bench.tune.jobs import (
    CHECKPOINT_FILE,
    COMPLETE_FLAG,
    CV,
    REFIT,
    REFIT_COLUMNS,
    REFIT_PARTS,
    PairingJob,
    trial_number,
)
from bench.tune.space import grid_size, make_sampler, sample_params
from bench.tune.studies import States, StudyJournal, open_study, told

# A pairing's phases, in order; SKIPPED: its dataset could not be loaded (nothing written);
# WAITING: a repeat that only refits, until repeat 0's search has chosen.
WAITING, SEARCHING, REFIT_READY, REFITTING, DONE = (
    "waiting",
    "searching",
    "refit ready",
    "refitting",
    "done",
)
SKIPPED = "skipped"
REPLICATE_PARTS = "parts/replicates"


@dataclass
class HandedOut:
    """A CV trial given to Tune and not yet ended."""

    number: int
    params: dict[str, Any]
    optuna_trial: optuna.trial.Trial


class PairingSearch:
    """The driver's record of one pairing's repeat, from its first trial to its replicate row."""

    def __init__(
        self,
        job: PairingJob,
        live_cap: int,
        prior: list[dict[str, Any]],
        studies: StudyJournal | None = None,
        previous: dict[str, Any] | None = None,
    ) -> None:
        """`prior`: the repeat's trial rows from earlier sessions (a resumed or extended run);
        `studies`: the run's journal (None: the study lives in memory); `previous`: the
        repeat's replicate row when an extended run searches on after it finished."""
        plan = job.plan
        space, search, refit_only = plan.space, plan.search, not plan.searches
        self.job, self.space, self.folds, self.live_cap = job, space, plan.cv.folds, live_cap
        self.objective = plan.objective
        self.metric = plan.metric
        trials = trial_budget(plan)
        self.total, self.budget = trials, max(0, trials - len(prior))
        # Proposals draw from a stream per trial number (make_sampler), so a resumed search
        # proposes what the uninterrupted one would have.
        sampler = make_sampler(search.sampler, space, search.seed + plan.repeat)
        self.studies = studies if plan.searches else None  # a refit-only repeat asks nothing
        storage = self.studies.storage if self.studies else None  # None: in memory
        self.study = open_study(storage, self.name, space, self.objective, sampler, prior)
        self.handed, self.live = 0, {}
        self.next_number = len(self.study.get_trials(deepcopy=False))
        # Fixed batches (search.batch; 0: none): trial n belongs to batch n // batch; a batch is
        # asked only once every trial of the previous one is told, and its results are told in
        # trial order, so proposals depend on the seed and the results, never on which trial
        # finished first, nor on where an earlier session of the run was stopped.
        self.batch = search.batch
        self.untold: list[tuple[int, optuna.trial.Trial | int, tuple[States, float | None]]] = []
        self.reruns = self._resume_running(prior)
        statuses = [r["status"] for r in prior]
        self.progress = {
            "done": len(prior),
            "pruned": statuses.count("pruned"),
            "failed": statuses.count("failed"),
        }
        self.best_score = self.objective.best([r["score"] for r in prior if r["status"] == "ok"])
        self.phase, self.refit, self.summary = (WAITING if refit_only else SEARCHING), None, {}
        self.choice: dict[str, Any] = {}  # best_trial, best_params, selection_score
        self.followers: list[PairingSearch] = []  # repeats that refit this search's choice
        self.previous = previous
        self.started: float | None = None
        self.test_score: float | None = None
        self._tell_finished_batch()  # a resumed batch whose trials had all ended

    def _resume_running(self, prior: list[dict[str, Any]]) -> list[optuna.trial.Trial]:
        """Trials the journal holds as running (the run was stopped before it told them):
        one with a row had ended, and is told with the rest of its batch as the run would
        have; one without was cut off, and runs again first under its own number and
        parameters (from its last checkpoint, where it saved one: job.restarts)."""
        rows = {int(r["trial"]): r for r in prior}
        reruns = []
        for trial in self.study.get_trials(deepcopy=False, states=(States.RUNNING,)):
            if trial.number in rows:
                self.untold.append((trial.number, trial.number, told(rows[trial.number])))
            else:
                reruns.append(optuna.Trial(self.study, trial._trial_id))
        return reruns

    @property
    def name(self) -> str:
        return self.job.plan.pairing

    def wants_trial(self) -> bool:
        within = self.handed < self.budget and len(self.live) < self.live_cap
        return self.phase == SEARCHING and within and self._batch_open()

    def _batch_open(self) -> bool:
        """A cut-off trial runs again at once; a new trial waits while the batch before it is
        still running or untold."""
        if self.reruns or not self.batch:
            return True
        return not (self.next_number % self.batch == 0 and (self.live or self.untold))

    @property
    def search_finishing(self) -> bool:
        """Every trial handed out, some still running: the refit comes next."""
        return self.phase == SEARCHING and self.handed >= self.budget and bool(self.live)

    @property
    def search_ended(self) -> bool:
        return self.phase == SEARCHING and self.handed >= self.budget and not self.live

    def ask(self, trial_id: str) -> dict[str, Any]:
        """The next CV trial's config (Tune's trial config: pairing, kind, number, params)."""
        self.started = self.started or time.perf_counter()
        trial = self.reruns.pop(0) if self.reruns else self.study.ask()
        params = sample_params(trial, self.space)  # a rerun's: those it was asked with
        number = trial.number  # the study's numbers are the run's
        self.next_number = max(self.next_number, number + 1)
        self.handed += 1
        self.live[trial_id] = HandedOut(number, params, trial)
        return {"pairing": self.name, "kind": CV, "trial": number, "params": params}

    def trial_ended(
        self, store: RunStore, trial_id: str, result: dict[str, Any], error: str | None
    ) -> None:
        """Tell Optuna how a CV trial ended (at the end of its batch); write the row of one
        that wrote no parts (failed, pruned), so a resumed run knows every trial."""
        handed = self.live.pop(trial_id)
        score = result.get("score", math.nan)
        if error is not None:
            status = "failed"
        elif result.get(COMPLETE_FLAG):
            status = "ok"
            self.best_score = self.objective.best([self.best_score, score])
        else:  # stopped early by ASHA: its last score is partial, not a finished value
            status = "pruned"
        state, value = told({"status": status, "score": score})  # as a resume tells it
        self.untold.append((handed.number, handed.optuna_trial, (state, value)))
        self._tell_finished_batch()
        self.progress["done"] += 1
        if status == "ok":
            return
        self.progress[status] += 1
        part = trial_part("trials", self.job.part_name, handed.number)
        if store.exists(part):
            return  # it wrote its parts, then failed (its report lost): its row stands
        row = make_row(
            "trials",
            **self.job.plan.ids(),
            trial=handed.number,
            trial_id=trial_id,
            params=dumps(handed.params),
            status=status,
            error=error or "",
            metric=self.metric,
            score=score,
            **dict.fromkeys(CV_COLUMNS),  # it wrote no folds
            epochs_run=result.get("epoch"),
            resumed_from_epoch=None,
            wall_seconds=result.get("time_total_s"),
            **self.job.plan.compute(result.get("time_total_s")),
        )
        store.write_table("trials", [row], part)

    def _tell_finished_batch(self) -> None:
        """Tell Optuna the batch's results in trial order once all of it has ended."""
        complete = self.next_number % self.batch == 0 if self.batch else True
        complete = complete or self.handed >= self.budget
        if self.batch and (self.live or self.reruns or not complete):
            return
        for _, trial, (state, value) in sorted(self.untold, key=lambda t: t[0]):
            tell(self.study, trial, value, state=state)
        self.untold = []
        if self.studies is not None:
            self.studies.sync()

    def finish_search(self, store: RunStore) -> None:
        """Write the repeat's trial list; choose its best trial and queue the refit, or end the
        repeat as failed when no trial finished."""
        rows = stored_trials(store, self.job.part_name)
        store.write_table("trials", rows, f"parts/trials_all/{self.job.part_name}.parquet")
        now = time.perf_counter()
        self.summary = {"search_seconds": now - (self.started or now)}
        best = best_trial(rows, self.objective)
        if best is None:
            errors = sorted({r["error"] for r in rows if r["error"]})
            reason = errors[0] if errors else "every trial was pruned"
            self._end(store, {"status": "failed", "error": f"no trial finished: {reason}"})
            return
        folds = store.read_table(trial_part("folds", self.job.part_name, best["trial"])).to_pylist()
        self.follow(
            {
                "best_trial": best["trial"],
                "best_params": best["params"],
                "selection_score": best["score"],
                "refit_epochs": refit_epochs(folds, self.job.plan.epochs),
            }
        )

    def follow(self, choice: dict[str, Any]) -> None:
        """Queue the refit of a chosen configuration (this repeat's own, or repeat 0's):
        `choice` holds best_trial, best_params (JSON), selection_score and refit_epochs."""
        self.choice = {k: choice[k] for k in ("best_trial", "best_params", "selection_score")}
        if self.unchanged_choice():
            self.summary, self.phase = dict(self.previous), DONE
            self.test_score = self.previous.get(f"test_{self.metric}")
            return
        self.refit = {
            "pairing": self.name,
            "kind": REFIT,
            "trial": int(choice["best_trial"]),
            "params": json.loads(choice["best_params"]),
            "epochs": int(choice["refit_epochs"]),
        }
        self.phase = REFIT_READY

    def unchanged_choice(self) -> bool:
        """An extended run's repeat whose search chose the configuration it had refit already:
        its replicate row stands (no second refit of the same configuration)."""
        before = self.previous
        return (
            bool(before)
            and before["status"] == "ok"
            and (
                before["best_trial"] == self.choice["best_trial"]
                and before["best_params"] == self.choice["best_params"]
            )
        )

    @property
    def refit_epochs(self) -> int | None:
        """The epochs the chosen configuration is refit for (its own refit's, or the refit an
        extended run keeps)."""
        if self.refit is not None:
            return self.refit["epochs"]
        return self.previous["refit_epochs"] if self.unchanged_choice() else None

    def start_refit(self) -> dict[str, Any]:
        """The refit's trial config; a resumed pairing's clock starts here if nothing ran."""
        self.started = self.started or time.perf_counter()
        self.phase = REFITTING
        return self.refit

    def fail(self, store: RunStore, reason: str) -> None:
        """End the repeat as failed (its trials may still run; nothing more is asked)."""
        self._end(store, {"status": "failed", "error": reason})

    def refit_ended(self, store: RunStore, error: str | None) -> None:
        """Complete the replicate row with the refit's test scores (or its failure)."""
        if error is not None:
            self._end(store, {"status": "failed", "error": f"refit failed: {error}"})
            return
        (fields,) = store.read_table(f"{REFIT_PARTS}/{self.job.part_name}.parquet").to_pylist()
        fields = {k: v for k, v in fields.items() if v is not None}
        self.test_score = fields.get(f"test_{self.metric}")
        self._end(store, {**fields, "status": "ok", "error": ""})

    def _end(self, store: RunStore, outcome: dict[str, Any]) -> None:
        now = time.perf_counter()
        plan = self.job.plan
        row = {
            **dict.fromkeys(REFIT_COLUMNS),  # null unless the refit scored the test split
            **plan.ids(),
            "metric": self.metric,
            "folds": self.folds,
            "max_epochs": plan.epochs,
            "training_seed": plan.seed,
            "search_seconds": 0.0,
            **dict.fromkeys(("best_trial", "best_params", "selection_score")),  # none chosen
            **self.choice,
            **self.summary,
            **outcome,
            "wall_seconds": now - (self.started or now),
        }
        part = f"{REPLICATE_PARTS}/{self.job.part_name}.parquet"
        store.write_table("replicates", [make_row("replicates", **row)], part)
        self.summary, self.phase = row, DONE


def trial_budget(plan: PairingPlan) -> int:
    """The trials a repeat's search runs in all: none for a repeat that only refits; a grid's
    size at most (a grid has only so many points)."""
    if not plan.searches:
        return 0
    if plan.search.sampler == "grid":
        return min(plan.trials, grid_size(plan.space))
    return plan.trials


def tell(study: optuna.Study, trial: optuna.trial.Trial, value=None, **state) -> None:
    """study.tell, where a GridSampler's `study.stop()` after its last point (which raises
    outside `optimize`) is not an error: the trial is stored before it."""
    try:
        study.tell(trial, value, **state)
    except RuntimeError as exc:
        if "stop" not in str(exc).lower():
            raise


def best_trial(rows: list[dict[str, Any]], objective: Objective) -> dict[str, Any] | None:
    ok = [r for r in rows if r["status"] == "ok" and not math.isnan(r["score"])]
    if not ok:
        return None
    # Ties go to the earlier trial, so reruns with the same seed pick the same configuration.
    return max(ok, key=lambda r: (objective.loop_score(r["score"]), -r["trial"]))


def stored_trials(store: RunStore, part: str) -> list[dict[str, Any]]:
    """Every ended trial of the pairing's repeat, by number: the rows of trials that ran to
    the end (written by their actors) and of failed and pruned ones (written by the driver;
    runs before bench wrote those as they ended kept them only in the repeat's trial list)."""
    rows = {}
    listed = f"parts/trials_all/{part}.parquet"
    if store.exists(listed):
        rows = {r["trial"]: r for r in store.read_table(listed).to_pylist()}
    for path in store.list(f"parts/trials/{part}"):
        rows.update((r["trial"], r) for r in store.read_table(path).to_pylist())
    return [rows[n] for n in sorted(rows)]


def interrupted_trials(store: RunStore, prior: dict[str, set[int]]) -> dict[str, dict[str, str]]:
    """Trials of an interrupted run that saved a checkpoint but never finished, per pairing
    (part name): canonical params JSON -> their newest readable checkpoint (run-relative).
    `prior` holds each pairing's finished trial numbers. The params are read from the
    checkpoint itself: Tune writes a running trial's own files only now and then."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in store.list("tune"):  # tune/<experiment>/<pairing>-trial_N/checkpoint_M/file
        parts = path.split("/")
        if len(parts) != 5 or parts[-1] != CHECKPOINT_FILE or "-trial_" not in parts[2]:
            continue
        pairing = parts[2].rsplit("-trial_", 1)[0]
        if pairing in prior and trial_number(parts[2]) not in prior[pairing]:
            found.setdefault((pairing, "/".join(parts[:3])), []).append(path)
    if not found:
        return {}
    # torch reads a checkpoint: imported here, not by this module, so that a driver that is
    # not resuming never imports it (~270 MB); a resuming one has, before Ray started
    # (bench.preflight.import_torch_first).
    from bench.tune.trial import read_checkpoint

    restarts: dict[str, dict[str, str]] = {}
    for (pairing, _), checkpoints in found.items():
        for path in sorted(checkpoints, reverse=True):  # checkpoint_000007 before _000006
            state = read_checkpoint(store, path)
            if state is not None:
                restarts.setdefault(pairing, {})[dumps(state["params"])] = path
                break
    return restarts


def refit_epochs(fold_rows: list[Mapping[str, Any]], default: int) -> int:
    """Epochs for the final fit: the median best epoch of the chosen trial's folds."""
    best = [int(r["best_epoch"]) for r in fold_rows if r.get("best_epoch")]
    return max(1, int(round(statistics.median(best)))) if best else default
