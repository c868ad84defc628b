"""Each pairing's Optuna study kept in the run folder's journal: optuna.load_study opens it and
it holds what trials.parquet holds; a resumed run continues it (trials the stopped run never
told are told with their batch, cut-off ones run again under their own numbers) and proposes
what the uninterrupted run would have; a journal that lags its rows is rebuilt."""

from __future__ import annotations

import dataclasses
import json
import math

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from bench.config import CVConfig, ParamSpec, SearchConfig
from bench.plan import standalone_plan
from bench.results.store import RunStore
from bench.testing.rows import sparse_row
from bench.tune.jobs import COMPLETE_FLAG, PairingJob
from bench.tune.pairing import PairingSearch, stored_trials
from bench.tune.studies import STUDIES_FILE, StudyJournal

SPACE = {
    "lr": ParamSpec(type="loguniform", low=1e-4, high=1e-1),
    "hidden_dim": ParamSpec(type="choice", values=[32, 64]),
    "depth": ParamSpec(type="fixed", value=2),
}
States = optuna.trial.TrialState
NAME = "mlp@digits.r0"


def job(trials=4, batch=0, restarts=None):
    plan = standalone_plan("mlp", "digits", {"search.trials": trials}, run_id="r")
    search = SearchConfig(trials=trials, sampler="tpe", seed=0, batch=batch)
    plan = dataclasses.replace(plan, space=SPACE, search=search, cv=CVConfig(folds=2))
    return PairingJob(plan, restarts=restarts or {})


def searching(store, trials=4, batch=0, restarts=None):
    return PairingSearch(
        job(trials, batch, restarts), 4, stored_trials(store, "mlp@digits.r0"), StudyJournal(store)
    )


def end(store, pairing, trial_id, config, outcome, score=0.5):
    """A trial's end as Tune reports it; an ok trial's actor wrote its row first."""
    number = config["trial"]
    if outcome == "ok":
        row = sparse_row(
            "trials",
            run_id="r",
            model="mlp",
            dataset="digits",
            trial=number,
            status="ok",
            score=score,
            params=json.dumps(config["params"]),
        )
        store.write_table("trials", [row], f"parts/trials/{NAME}/{number:05d}.parquet")
        fold = sparse_row("folds", run_id="r", trial=number, best_epoch=2)
        store.write_table("folds", [fold], f"parts/folds/{NAME}/{number:05d}.parquet")
    result = {"score": score, "epoch": 2, COMPLETE_FLAG: outcome == "ok"}
    pairing.trial_ended(store, trial_id, result, "boom" if outcome == "failed" else None)


def load(store):
    storage = JournalStorage(JournalFileBackend(store.file(STUDIES_FILE)))
    return optuna.load_study(study_name=NAME, storage=storage)


def test_optuna_load_study_opens_what_trials_parquet_holds(tmp_path):
    store = RunStore(str(tmp_path / "run"))
    pairing = searching(store)
    outcomes = ["ok", "pruned", "failed", "ok"]
    for i, outcome in enumerate(outcomes):
        end(store, pairing, f"t{i}", pairing.ask(f"t{i}"), outcome, score=0.1 * (i + 1))
    pairing.finish_search(store)
    rows = store.read_table(f"parts/trials_all/{NAME}.parquet").to_pylist()
    study = load(store)
    assert [t.number for t in study.trials] == [r["trial"] for r in rows] == [0, 1, 2, 3]
    states = {"ok": States.COMPLETE, "pruned": States.PRUNED, "failed": States.FAIL}
    assert [t.state for t in study.trials] == [states[r["status"]] for r in rows]
    for trial, row in zip(study.trials, rows, strict=True):
        searched = {k: v for k, v in json.loads(row["params"]).items() if k != "depth"}
        assert trial.params == pytest.approx(searched)
        if row["status"] == "ok":
            assert trial.value == pytest.approx(row["score"])
    assert study.best_trial.number == 3 and study.direction == optuna.study.StudyDirection.MAXIMIZE


def test_a_resumed_search_continues_the_stored_study(tmp_path):
    store = RunStore(str(tmp_path / "run"))
    first = searching(store, trials=6, batch=3)
    configs = [first.ask(f"t{i}") for i in range(3)]
    end(store, first, "t0", configs[0], "ok", score=0.7)  # its batch untold when stopped
    end(store, first, "t1", configs[1], "pruned")
    # ... the run is killed here: trial 2 never ended, trials 0 and 1 were never told
    assert [t.state for t in load(store).trials] == [States.RUNNING] * 3
    second = searching(store, trials=6, batch=3)
    assert second.budget == 4  # 6, less the two that ended
    # the cut-off trial runs again first, under its own number and with its own parameters
    again = second.ask("t2-again")
    assert again["trial"] == 2 and again["params"] == configs[2]["params"]
    assert not second.wants_trial()  # batch 0-2 is told before trial 3 is asked
    assert [t.state for t in load(store).trials] == [States.RUNNING] * 3
    end(store, second, "t2-again", again, "ok", score=0.2)
    study = load(store)
    assert [t.state for t in study.trials] == [States.COMPLETE, States.PRUNED, States.COMPLETE]
    assert study.trials[0].value == pytest.approx(0.7)
    assert second.ask("t3")["trial"] == 3


def score_of(params: dict) -> float:
    """A made-up objective with a peak, so TPE's proposals depend on what it was told."""
    return 1.0 / (1.0 + abs(math.log10(params["lr"]) + 2.0)) + params["hidden_dim"] / 1000


def drive(store, pairing, events: int | None = None) -> bool:
    """Hand out trials while the search wants them and end the oldest running one, as Tune
    would; stop after `events` ends (a kill: False) or when the search is done (True)."""
    running: list[tuple[str, dict]] = []
    while True:
        while pairing.wants_trial():
            trial_id = f"t{pairing.next_number}-{len(running)}-{pairing.handed}"
            running.append((trial_id, pairing.ask(trial_id)))
        if not running:
            return True
        if events is not None:
            if events == 0:
                return False
            events -= 1
        trial_id, config = running.pop(0)
        end(store, pairing, trial_id, config, "ok", score=score_of(config["params"]))


def proposals(store) -> dict[int, dict]:
    return {t.number: t.params for t in load(store).trials}


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_search_stopped_anywhere_and_resumed_proposes_what_the_uninterrupted_one_did(
    tmp_path, sampler
):
    """A stop after any number of ended trials (running ones cut off), then a new process's
    search on the same run folder: every trial number gets the parameters and value of the
    search that was never stopped."""

    def search(store):
        plan = dataclasses.replace(
            job(trials=9, batch=2).plan,
            search=SearchConfig(trials=9, sampler=sampler, seed=3, batch=2),
        )
        return PairingSearch(PairingJob(plan), 3, stored_trials(store, NAME), StudyJournal(store))

    twin = RunStore(str(tmp_path / "twin"))
    assert drive(twin, search(twin))
    expected = proposals(twin)
    assert sorted(expected) == list(range(9))
    for stop in range(1, 9):
        store = RunStore(str(tmp_path / f"stopped-after-{stop}"))
        assert not drive(store, search(store), events=stop)
        assert drive(store, search(store))  # resumed: a new sampler, from the journal
        assert proposals(store) == expected, f"stopped after {stop} trials"
        values = {t.number: t.value for t in load(store).trials}
        assert values == {t.number: t.value for t in load(twin).trials}


def test_a_journal_behind_its_rows_is_built_again_from_them(tmp_path):
    store = RunStore(str(tmp_path / "run"))
    first = searching(store)
    end(store, first, "t0", first.ask("t0"), "ok", score=0.4)
    (tmp_path / "run" / STUDIES_FILE).unlink()  # e.g. a remote copy uploaded before trial 0
    again = searching(store)
    assert [(t.number, t.state) for t in load(store).trials] == [(0, States.COMPLETE)]
    assert again.best_score == pytest.approx(0.4) and again.budget == 3


def test_a_remote_run_folder_gets_the_journal_and_a_resume_reads_it_back():
    store = RunStore("mock:///results/b/run")  # an in-memory stand-in for s3://
    journal = StudyJournal(store)
    assert journal.remote and not journal.path.startswith("/results")  # a local scratch copy
    first = PairingSearch(job(), 4, [], journal)
    end(store, first, "t0", first.ask("t0"), "ok", score=0.6)
    assert not store.exists(STUDIES_FILE)  # uploaded every 30 s, not per trial ...
    journal.close()  # ... and at the end of the run
    assert store.exists(STUDIES_FILE)
    again = StudyJournal(store)  # a resumed run downloads it
    resumed = PairingSearch(job(), 4, stored_trials(store, NAME), again)
    assert [(t.number, t.value) for t in resumed.study.trials] == [(0, pytest.approx(0.6))]
    assert resumed.ask("t1")["trial"] == 1
