"""The run's one searcher and scheduler, driven by hand (no Ray, no training): which pairing
runs next, how far ahead trials are queued, what each trial's end tells Optuna, ASHA per
pairing, and datasets loaded when first needed and released after their last pairing."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from bench.config import AshaConfig, CVConfig, ParamSpec, SearchConfig
from bench.metrics import Objective
from bench.plan import standalone_plan
from bench.progress import PlainProgress
from bench.results.store import RunStore
from bench.testing.rows import sparse_row
from bench.tune.jobs import COMPLETE_FLAG, CV, REFIT, PairingJob
from bench.tune.pairing import DONE, REFIT_READY, PairingSearch, best_trial, stored_trials
from bench.tune.scheduling import Capacity, Demand, PairingScheduler
from bench.tune.search import SearchRun

SPACE = {
    "lr": ParamSpec(type="loguniform", low=1e-4, high=1e-1),
    "hidden_dim": ParamSpec(type="choice", values=[32, 64]),
    "depth": ParamSpec(type="fixed", value=2),
}
States = optuna.trial.TrialState


def job(
    model="mlp", dataset="d1", trials=2, cpus=1.0, workers=1, repeat=0, space=None, search=None
):
    """A pairing's job on dataset key `dataset`, searching `space` (SPACE) with 2 folds; its
    repeats past 0 refit repeat 0's choice (evaluation.search once)."""
    settings = {
        "budget.epochs": 3,
        "budget.batch_size": 8,
        "search.trials": trials,
        "resources.cpus_per_worker": cpus,
        "resources.workers": workers,
    }
    plan = standalone_plan(model, "digits", settings, repeat, run_id="r")
    plan = dataclasses.replace(
        plan,
        dataset=dataset,  # any key names a dataset here
        space=SPACE if space is None else space,
        search=search or plan.search,
        cv=CVConfig(folds=2),
    )
    return PairingJob(plan)


def pairing(live_cap=2, prior=(), batch=0, **kw):
    search = SearchConfig(trials=kw.get("trials", 2), sampler="random", seed=0, batch=batch)
    return PairingSearch(job(search=search, **kw), live_cap, list(prior))


class FakeDatasets:
    """DatasetPool's interface, recording what was loaded."""

    def __init__(self, broken: tuple[str, ...] = ()) -> None:
        self.broken = broken
        self.loaded, self.events, self.failed = set(), [], {}

    def acquire(self, key):
        if key in self.broken:
            self.failed[key] = f"dataset {key}: cannot read it"
            return False
        if key not in self.loaded:
            self.loaded.add(key)
            self.events.append(("load", key))
        return True


def run_of(pairings, tmp_path, cpus=2.0, broken=()):
    datasets = FakeDatasets(broken)
    capacity = Capacity(lambda: [{"CPU": cpus}])
    lines = []
    progress = PlainProgress(lines.append)
    run = SearchRun(pairings, datasets, RunStore(str(tmp_path)), capacity, progress)
    return run, datasets, lines


def finish(run, trial_id, config, score=0.9, error=None, complete=True, parts=None):
    """What Tune reports when a handed-out trial ends (its parts written by the 'actor', by
    default when it ran to its end)."""
    store, part = run.store, run.by_trial[trial_id].job.part_name
    parts = error is None and complete if parts is None else parts
    if config["kind"] == CV and parts:
        model, dataset = config["pairing"].rsplit(".r", 1)[0].split("@")
        ids = {"run_id": "r", "benchmark": "b", "dataset": dataset, "model": model}
        row = {**ids, "trial": config["trial"]}
        store.write_table(
            "trials",
            [
                sparse_row(
                    "trials", **row, status="ok", score=score, params=json.dumps(config["params"])
                )
            ],
            f"parts/trials/{part}/{config['trial']:05d}.parquet",
        )
        store.write_table(
            "folds",
            [sparse_row("folds", **row, best_epoch=2)],
            f"parts/folds/{part}/{config['trial']:05d}.parquet",
        )
    if config["kind"] == REFIT and error is None:
        refit = sparse_row("replicates", test_f1_macro=0.8)
        store.write_table("replicates", [refit], f"parts/refit/{part}.parquet")
    result = {"score": score, "epoch": 3, COMPLETE_FLAG: True} if complete else {"score": score}
    run.trial_started(trial_id)
    run.trial_ended(SimpleNamespace(trial_id=trial_id, config=config, last_result=result), error)


def test_longest_pairing_first_within_its_live_cap_and_the_queue(tmp_path):
    short = pairing(model="mlp", trials=3, live_cap=3)
    long = pairing(model="resnet18", trials=3, live_cap=2)
    run, _, _ = run_of([long, short], tmp_path)  # the runner sorts by expected cost
    configs = [run.next_trial(f"t{i}") for i in range(4)]
    # resnet18 first, at most its live cap; then mlp until the queue is full
    # (2 CPUs x 1.25: a third one-CPU trial is queued, not a fourth)
    assert [c["pairing"] for c in configs[:3]] == ["resnet18@d1.r0", "resnet18@d1.r0", "mlp@d1.r0"]
    assert configs[3] is None
    assert [c["trial"] for c in configs[:3]] == [0, 1, 0]
    assert configs[0]["params"]["depth"] == 2 and 1e-4 <= configs[0]["params"]["lr"] <= 1e-1


def test_a_waiting_trial_of_another_shape_holds_back_new_ones(tmp_path):
    wide = pairing(model="resnet18", trials=1, cpus=2.0)
    narrow = pairing(model="mlp", trials=4, live_cap=4)
    run, _, _ = run_of([wide, narrow], tmp_path, cpus=4.0)
    first = run.next_trial("w")
    assert first["pairing"] == "resnet18@d1.r0"
    # the 2-CPU trial has not started yet: one-CPU trials would take the CPUs it waits for
    assert run.next_trial("n0") is None
    run.trial_started("w")
    assert run.next_trial("n0")["pairing"] == "mlp@d1.r0"


@pytest.mark.parametrize("cpus, handed", [(2.0, False), (4.0, True)])
def test_no_trial_queues_ahead_of_a_finishing_pairings_refit(tmp_path, cpus, handed):
    wide = pairing(model="resnet18", trials=1, cpus=2.0)
    narrow = pairing(model="mlp", trials=4, live_cap=4)
    run, _, _ = run_of([wide, narrow], tmp_path, cpus=cpus)
    run.next_trial("w")
    run.trial_started("w")  # the last resnet18 trial runs: its refit (2 CPUs) comes next
    # on 2 CPUs a one-CPU trial could only queue, in front of that refit; on 4 it runs now
    assert (run.next_trial("n") is not None) == handed


def test_the_console_is_told_of_started_trials_and_of_every_end(tmp_path):
    p = pairing(trials=3, live_cap=3)
    run, _, lines = run_of([p], tmp_path)
    configs = [run.next_trial(f"t{i}") for i in range(3)]  # 2 CPUs: the third one queues
    run.trial_started("t0")
    run.trial_started("t1")
    shown = run.display.rows["mlp@d1.r0"]
    assert (shown.done, shown.running, shown.phase) == (0, 2, "searching")
    assert lines == []  # a start changes no plain line
    finish(run, "t0", configs[0], score=0.7)
    shown = run.display.rows["mlp@d1.r0"]
    assert (shown.done, shown.running, shown.best) == (1, 1, 0.7)
    assert lines == ["  mlp@d1.r0                    trials 1/3  best CV f1_macro 0.7000"]


def test_refit_follows_the_search_at_once_and_the_run_finishes(tmp_path):
    p = pairing(trials=2, live_cap=2)
    run, datasets, lines = run_of([p], tmp_path)
    a, b = run.next_trial("a"), run.next_trial("b")
    assert run.next_trial("c") is None  # budget handed out, trials running
    finish(run, "a", a, score=0.7)
    finish(run, "b", b, score=0.9)
    assert p.phase == REFIT_READY
    refit = run.next_trial("r")
    assert refit == {
        "pairing": "mlp@d1.r0",
        "kind": REFIT,
        "trial": b["trial"],
        "params": b["params"],
        "epochs": 2,  # the median best epoch of the chosen trial's folds
    }
    assert run.next_trial("x") == Searcher.FINISHED  # the refit still runs; nothing is left
    finish(run, "r", refit)
    assert p.phase == DONE and p.summary["status"] == "ok"
    board = RunStore(str(tmp_path)).read_table("parts/replicates/mlp@d1.r0.parquet").to_pylist()[0]
    assert board["best_trial"] == b["trial"] and board["selection_score"] == 0.9
    assert board["test_f1_macro"] == 0.8
    assert datasets.events == [("load", "d1")]
    assert "done: ok, test 0.8000" in lines[-1]


def test_pruned_and_failed_trials_reach_optuna_as_such_and_get_rows(tmp_path):
    p = pairing(trials=3, live_cap=3)
    run, _, _ = run_of([p], tmp_path, cpus=3.0)
    configs = [run.next_trial(f"t{i}") for i in range(3)]
    finish(run, "t0", configs[0], score=0.4, complete=False)  # ASHA stopped it
    finish(run, "t1", configs[1], score=0.9)
    finish(run, "t2", configs[2], error="RuntimeError: training diverged")
    assert [t.state for t in p.study.trials] == [States.PRUNED, States.COMPLETE, States.FAIL]
    assert p.study.best_value == 0.9
    rows = RunStore(str(tmp_path)).read_table("parts/trials_all/mlp@d1.r0.parquet").to_pylist()
    assert [(r["trial"], r["status"]) for r in rows] == [(0, "pruned"), (1, "ok"), (2, "failed")]
    assert rows[2]["error"] == "RuntimeError: training diverged"
    assert p.progress == {"done": 3, "pruned": 1, "failed": 1}


def test_a_pairing_with_no_finished_trial_fails_without_a_refit(tmp_path):
    p = pairing(trials=1, live_cap=1)
    run, datasets, _ = run_of([p], tmp_path)
    config = run.next_trial("t")
    finish(run, "t", config, error="RuntimeError: training diverged")
    assert p.phase == DONE and "no trial finished: RuntimeError" in p.summary["error"]
    assert run.next_trial("x") == Searcher.FINISHED


def test_a_pairing_s_dataset_is_loaded_before_its_first_trial(tmp_path):
    """(A run loads them all before the first trial, DatasetPool.prepare; this is the check
    each pairing makes, which also finds those that failed.)"""
    first = [pairing(model=m, dataset="d1", trials=1, live_cap=1) for m in ("mlp", "simple_cnn")]
    second = pairing(model="mlp", dataset="d2", trials=1, live_cap=1)
    run, datasets, _ = run_of([*first, second], tmp_path, cpus=1.0)
    a = run.next_trial("a")
    assert datasets.loaded == {"d1"}
    finish(run, "a", a)
    finish(run, "ra", run.next_trial("ra"))
    b = run.next_trial("b")
    finish(run, "b", b)
    finish(run, "rb", run.next_trial("rb"))
    c = run.next_trial("c")
    assert c["pairing"] == "mlp@d2.r0" and datasets.loaded == {"d1", "d2"}
    assert datasets.events == [("load", "d1"), ("load", "d2")]


def test_a_dataset_that_fails_to_load_skips_only_its_pairings(tmp_path):
    broken = pairing(model="mlp", dataset="bad", trials=1)
    fine = pairing(model="mlp", dataset="d1", trials=1)
    run, _, lines = run_of([broken, fine], tmp_path, broken=("bad",))
    assert run.next_trial("t")["pairing"] == "mlp@d1.r0"
    assert run.data_errors == {"bad": "dataset bad: cannot read it"}
    assert "dataset bad: cannot read it" in lines[0]
    assert not RunStore(str(tmp_path)).list("parts/replicates")  # a resume runs it


def test_resumed_pairing_numbers_after_its_finished_trials_and_warm_starts(tmp_path):
    params = json.dumps({"lr": 0.01, "hidden_dim": 32})
    prior = [{"trial": 0, "status": "ok", "score": 0.5, "params": params}]
    p = pairing(trials=3, live_cap=3, prior=prior)
    assert p.budget == 2 and len(p.study.trials) == 1
    run, _, _ = run_of([p], tmp_path)
    assert [run.next_trial(t)["trial"] for t in ("a", "b")] == [1, 2]


def test_capacity_keeps_ddp_trials_within_the_cluster():
    capacity = Capacity(lambda: [{"CPU": 4.0, "GPU": 1.0}])
    ddp = Demand(worker_cpus=1.0, workers=2, distributed=True)
    assert capacity.allows(ddp)
    capacity.handed_out("a", ddp)
    assert capacity.allows(ddp)  # 2 + 2 <= 4
    capacity.handed_out("b", ddp)
    assert not capacity.allows(ddp)  # a queued DDP trial would hold its workers' wait
    one = Demand(worker_cpus=1.0)
    assert capacity.allows(one)  # 4 < 4 x 1.25: a single-worker trial queues
    capacity = Capacity(lambda: [{"CPU": 8.0, "GPU": 1.0}])
    gpu = Demand(worker_cpus=1.0, worker_gpus=1.0)
    assert capacity.allows(gpu)
    capacity.handed_out("g", gpu)
    assert capacity.allows(gpu)  # 1 < 1 x 1.25: one queued behind it
    capacity.handed_out("h", gpu)
    assert not capacity.allows(gpu)


def test_a_trial_no_node_can_place_does_not_stop_the_others():
    """On a joined cluster a GPU trial may wait for the autoscaler; meanwhile the CPU-only
    pairings go on (before it starts, it neither counts nor holds others back)."""
    capacity = Capacity(lambda: [{"CPU": 2.0}])
    needs_gpu = Demand(worker_cpus=1.0, worker_gpus=1.0)
    one = Demand(worker_cpus=1.0)
    capacity.handed_out("g", needs_gpu)
    assert capacity.allows(one) and not capacity.held_back(one)
    wide = Demand(worker_cpus=2.0)
    capacity.handed_out("w", wide)  # placeable, not started: it does hold others back
    assert capacity.held_back(one)


def stub(pairing, number, kind=CV):
    config = {"pairing": pairing, "kind": kind, "trial": number, "params": {}}
    return Trial("bench_trial", config=config, stub=True)


def test_asha_compares_a_trial_only_with_its_own_pairing():
    scheduler = PairingScheduler(AshaConfig(grace_period=1), {"a@d": 4, "b@d": 4}, "max")
    good_a, bad_b, worse_b = stub("a@d", 0), stub("b@d", 0), stub("b@d", 1)
    for trial in (good_a, bad_b, worse_b):
        scheduler.on_trial_add(None, trial)
    assert scheduler.on_trial_result(None, good_a, {"epoch": 1, "score": 0.9}) == "CONTINUE"
    # b's first trial is far below a's, but it is the first of its own pairing at this rung
    assert scheduler.on_trial_result(None, bad_b, {"epoch": 1, "score": 0.2}) == "CONTINUE"
    assert scheduler.on_trial_result(None, worse_b, {"epoch": 1, "score": 0.1}) == "STOP"
    # reaching the last epoch is not a stop: the trial's complete score must still arrive
    assert scheduler.on_trial_result(None, good_a, {"epoch": 4, "score": 0.95}) == "CONTINUE"
    refit = stub("b@d", 0, kind=REFIT)
    scheduler.on_trial_add(None, refit)
    assert scheduler.on_trial_result(None, refit, {"epoch": 1}) == TrialScheduler.CONTINUE


def test_refits_start_before_queued_trials():
    scheduler = PairingScheduler(None, {"a@d": 2}, "max")
    queued, refit = stub("a@d", 3), stub("a@d", 0, kind=REFIT)
    controller = SimpleNamespace(get_trials=lambda: [queued, refit])
    assert scheduler.choose_trial_to_run(controller) is refit


def test_best_trial_respects_direction_and_skips_failures():
    rows = [
        {"trial": 0, "status": "ok", "score": 0.5},
        {"trial": 1, "status": "failed", "score": float("nan")},
        {"trial": 2, "status": "ok", "score": 0.7},
        {"trial": 3, "status": "pruned", "score": 0.9},
    ]
    assert best_trial(rows, Objective("f1_macro"))["trial"] == 2
    assert best_trial(rows, Objective("log_loss"))["trial"] == 0
    assert best_trial(rows[1:2], Objective("f1_macro")) is None


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_samplers_are_seeded(sampler):
    def first_lr():
        search = SearchConfig(trials=2, sampler=sampler, seed=0)
        p = PairingSearch(job(search=search), live_cap=1, prior=[])
        return p.ask("t")["params"]["lr"]

    assert first_lr() == first_lr()


def test_a_grid_search_that_runs_its_whole_grid_ends_cleanly(tmp_path):
    """Optuna's GridSampler calls study.stop() after the last point, which raises outside
    optimize(); the trial is stored all the same and the search ends normally."""
    grid = {"hidden_dim": ParamSpec(type="choice", values=[32, 64])}
    search = SearchConfig(trials=5, sampler="grid", seed=0)
    p = PairingSearch(job(trials=5, space=grid, search=search), live_cap=2, prior=[])
    assert p.budget == 2  # the grid has two points
    run, _, _ = run_of([p], tmp_path)
    configs = [run.next_trial(t) for t in ("a", "b")]
    assert sorted(c["params"]["hidden_dim"] for c in configs) == [32, 64]
    finish(run, "a", configs[0])
    finish(run, "b", configs[1])
    assert [t.state for t in p.study.trials] == [States.COMPLETE, States.COMPLETE]
    assert p.phase == REFIT_READY


def test_a_finished_trial_with_an_undefined_score_does_not_break_a_resume():
    nan_prior = {"trial": 0, "status": "ok", "score": float("nan"), "params": '{"lr": 0.01}'}
    p = pairing(trials=3, prior=[nan_prior])
    assert p.budget == 2 and [t.state for t in p.study.trials] == [States.FAIL]
    assert p.ask("t")["trial"] == 1


def test_a_trial_that_wrote_its_parts_then_failed_has_one_row(tmp_path):
    p = pairing(trials=1, live_cap=1)
    run, _, _ = run_of([p], tmp_path)
    config = run.next_trial("t")
    finish(run, "t", config, error="its report was lost", parts=True)  # wrote, then errored
    assert p.progress == {"done": 1, "pruned": 0, "failed": 1}
    rows = RunStore(str(tmp_path)).read_table("parts/trials_all/mlp@d1.r0.parquet").to_pylist()
    assert [(r["trial"], r["status"]) for r in rows] == [(0, "ok")]


def test_a_trial_ended_without_a_callback_is_still_counted(tmp_path):
    p = pairing(trials=1, live_cap=1)
    run, datasets, _ = run_of([p], tmp_path)
    config = run.next_trial("t")
    lost = SimpleNamespace(
        trial_id="t",
        config=config,
        last_result={},
        status="ERROR",
        pickled_error_file=None,
        error_file=None,
    )
    run.missed_ends([lost])
    assert p.phase == DONE and p.summary["status"] == "failed"
    assert run.next_trial("x") == Searcher.FINISHED
    run.trial_ended(lost, None)  # a late callback for the same trial changes nothing
    assert datasets.events == [("load", "d1")]


def test_bookkeeping_that_fails_ends_only_its_pairing(tmp_path, monkeypatch):
    broken, fine = pairing(model="mlp", trials=1), pairing(model="simple_cnn", trials=1)
    run, datasets, lines = run_of([broken, fine], tmp_path)
    a, b = run.next_trial("a"), run.next_trial("b")

    def fail(store):
        raise OSError("No space left on device")

    monkeypatch.setattr(broken, "finish_search", fail)
    finish(run, "a", a)
    assert broken.phase == DONE and "No space left on device" in lines[0]
    finish(run, "b", b)
    assert fine.phase == REFIT_READY
    board = RunStore(str(tmp_path)).read_table("parts/replicates/mlp@d1.r0.parquet").to_pylist()
    assert board[0]["status"] == "failed" and board[0]["model"] == "mlp"


def proposals_after_finishing(order, tmp_path):
    """Trial 4's params after trials 0-3 (one batch of 4) end in `order`, under TPE."""
    search = SearchConfig(trials=5, sampler="tpe", seed=3, batch=4)
    p = PairingSearch(job(trials=5, search=search), 4, [])
    run, _, _ = run_of([p], tmp_path, cpus=4.0)
    configs = {f"t{i}": run.next_trial(f"t{i}") for i in range(4)}
    assert run.next_trial("t4") is None  # the batch is handed out; the next waits for it
    scores = {"t0": 0.2, "t1": 0.9, "t2": 0.5, "t3": 0.7}
    for i, name in enumerate(order):
        finish(run, name, configs[name], score=scores[name])
        told = [t for t in p.study.trials if t.state != States.RUNNING]
        assert len(told) == (4 if i == 3 else 0)  # nothing is told before the batch ends
    return run.next_trial("t4")["params"]


def test_a_batch_is_told_in_trial_order_whatever_order_its_trials_finish(tmp_path):
    """TPE's next proposal depends on the results, never on which trial finished first."""
    first = proposals_after_finishing(["t0", "t1", "t2", "t3"], tmp_path / "a")
    second = proposals_after_finishing(["t3", "t1", "t0", "t2"], tmp_path / "b")
    assert first == second


def test_a_repeat_that_only_refits_waits_for_repeat_zeros_choice(tmp_path):
    leader = pairing(trials=1, live_cap=1)
    follower = pairing(trials=1, live_cap=1, repeat=1)
    leader.followers.append(follower)
    run, _, _ = run_of([leader, follower], tmp_path)
    trial = run.next_trial("a")
    assert trial["pairing"] == "mlp@d1.r0" and run.next_trial("b") is None
    finish(run, "a", trial, score=0.9)
    refits = [run.next_trial("r0"), run.next_trial("r1")]
    assert [r["pairing"] for r in refits] == ["mlp@d1.r0", "mlp@d1.r1"]
    assert refits[0]["params"] == refits[1]["params"] == trial["params"]
    assert refits[0]["epochs"] == refits[1]["epochs"]
    for name, refit in zip(("r0", "r1"), refits, strict=True):
        finish(run, name, refit)
    store = RunStore(str(tmp_path))
    row = store.read_table("parts/replicates/mlp@d1.r1.parquet").to_pylist()[0]
    assert (row["repeat"], row["best_trial"], row["selection_score"]) == (1, 0, 0.9)
    assert row["search_seconds"] == 0.0 and not store.list("parts/trials_all/mlp@d1.r1")


def test_a_failed_search_fails_the_repeats_that_follow_it(tmp_path):
    leader = pairing(trials=1, live_cap=1)
    follower = pairing(trials=1, live_cap=1, repeat=1)
    leader.followers.append(follower)
    run, _, _ = run_of([leader, follower], tmp_path)
    finish(run, "a", run.next_trial("a"), error="RuntimeError: training diverged")
    assert follower.phase == DONE and "repeat 0: no trial finished" in follower.summary["error"]
    assert run.next_trial("x") == Searcher.FINISHED


def finished_session(tmp_path, score):
    """A finished run of one pairing (1 trial, scored `score`) and its repeat 1's refit."""
    leader, follower = pairing(trials=1, live_cap=1), pairing(trials=1, live_cap=1, repeat=1)
    leader.followers.append(follower)
    run, _, _ = run_of([leader, follower], tmp_path)
    finish(run, "t0", run.next_trial("t0"), score=score)
    for trial_id in ("r0", "r1"):
        finish(run, trial_id, run.next_trial(trial_id))
    assert leader.phase == follower.phase == DONE
    return run.store


def extended(store, **kw):
    """The same pairing's repeats planned again with 2 trials, as an extended run does."""
    replicates = {
        r["repeat"]: r
        for p in store.list("parts/replicates")
        for r in store.read_table(p).to_pylist()
    }
    leader = pairing(trials=2, live_cap=1, prior=stored_trials(store, "mlp@d1.r0"), **kw)
    leader.previous = replicates[0]
    follower = pairing(trials=2, live_cap=1, repeat=1, **kw)
    follower.previous = replicates[1]
    leader.followers.append(follower)
    return leader, follower


@pytest.mark.parametrize(("new_score", "refits"), [(0.5, False), (0.95, True)])
def test_an_extended_search_refits_only_when_its_choice_changes(tmp_path, new_score, refits):
    store = finished_session(tmp_path, score=0.9)
    leader, follower = extended(store)
    assert leader.budget == 1
    run, datasets, _ = run_of([leader, follower], tmp_path)
    config = run.next_trial("t1")
    assert config["trial"] == 1
    finish(run, "t1", config, score=new_score)
    if refits:
        assert [run.next_trial(t)["kind"] for t in ("r0", "r1")] == [REFIT, REFIT]
        assert leader.refit["trial"] == follower.refit["trial"] == 1
    else:  # trial 0 stays the choice: both repeats keep their rows, nothing is refit
        assert leader.phase == follower.phase == DONE and leader.refit is None
        assert run.next_trial("x") == Searcher.FINISHED
        assert leader.summary["best_trial"] == 0 and leader.test_score == 0.8
    rows = store.read_table("parts/trials_all/mlp@d1.r0.parquet").to_pylist()
    assert [r["trial"] for r in rows] == [0, 1]
