"""The console during a search (bench/progress.py): the time-left estimate, the live table's
rows and overall line, the plain lines elsewhere, and which of the two a run gets."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from rich.console import Console

from bench.progress import (
    LiveProgress,
    PairingStatus,
    PlainProgress,
    Progress,
    clock_time,
    open_progress,
    progress_table,
    time_left,
    visible_rows,
    work,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status(name="mlp@digits.r0", **changes) -> PairingStatus:
    fields = {
        "name": name,
        "metric": "f1_macro",
        "phase": "searching",
        "total": 8,
        "done": 0,
        "running": 0,
        "pruned": 0,
        "failed": 0,
        "best": None,
        "folds": 3,
    }
    return PairingStatus(**{**fields, **changes})


def done(s: PairingStatus, result="ok", test=0.95, error="") -> PairingStatus:
    return dataclasses.replace(
        s, phase="done", finished=True, running=0, status=result, test=test, error=error
    )


# -- the estimate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "done_work", "left", "expected"),
    [
        (60.0, 10.0, 30.0, 180.0),  # a quarter done in a minute: three more minutes
        (60.0, 5.0, 95.0, 1140.0),  # exactly 5% done: estimated
        (60.0, 4.9, 95.1, None),  # under 5%: too early to say
        (60.0, 0.0, 10.0, None),  # nothing done yet
        (0.0, 10.0, 30.0, None),  # no trial has started yet: no pace
        (60.0, 10.0, 0.0, 0.0),  # nothing left
    ],
)
def test_time_left_is_the_pace_so_far_applied_to_the_work_left(elapsed, done_work, left, expected):
    assert time_left(elapsed, done_work, left) == (
        None if expected is None else pytest.approx(expected)
    )


def test_work_counts_trials_of_this_session_and_the_refit_as_one_fold_share():
    searching = status(total=8, done=3, folds=3)
    assert work(searching, ended_before=1) == (2, 5 + 0.5)  # 5 trials and a refit (1/(3-1))
    assert work(done(searching), ended_before=1) == (2 + 0.5, 0.0)
    assert work(done(searching, result="failed"), ended_before=1) == (2, 0.0)  # no refit ran
    refit_only = status(total=0, phase="waiting", folds=2)
    assert work(refit_only, ended_before=0) == (0, 1.0)  # with 2 folds a refit is a trial
    skipped = status(total=4, phase="skipped", finished=True)
    assert work(skipped, ended_before=0) == (0, 0.0)


def test_overall_weights_pairings_by_their_trial_cost():
    clock = Clock()
    progress = Progress({"resnet18@digits.r0": 100.0, "mlp@digits.r0": 1.0}, clock=clock)
    progress.add(status("resnet18@digits.r0", total=3, folds=3))
    progress.add(status("mlp@digits.r0", total=8, folds=3))
    progress.start()
    clock.now += 15  # the dataset loaded and the trial actors started: not the search's pace
    progress.update(status("resnet18@digits.r0", total=3, running=2, folds=3))
    clock.now += 120
    progress.update(status("resnet18@digits.r0", total=3, done=1, running=2, folds=3))
    progress.update(done(status("mlp@digits.r0", total=8, done=8, folds=3)))
    overall = progress.overall()
    # done: 100 x 1 + 1 x (8 + 0.5); left: 100 x (2 + 0.5); 120 s x 250 / 108.5
    assert overall.left == pytest.approx(120 * 250 / 108.5)
    assert (overall.trials_done, overall.trials) == (9, 11)
    assert (overall.pairings_done, overall.pairings) == (1, 2)
    assert overall.line() == "9/11 trials, 1/2 pairings done, 2:15 elapsed, about 4:36 left"
    nearly = dataclasses.replace(overall, left=0.3)
    assert nearly.line() == "9/11 trials, 1/2 pairings done, 2:15 elapsed, about 0:01 left"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (42.4, "0:42"), (185, "3:05"), (3725, "1:02:05")]
)
def test_clock_time(seconds, text):
    assert clock_time(seconds) == text


# -- the live table --------------------------------------------------------------------------


def terminal(height=40) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=120, height=height)


def cells(text: str, name: str) -> list[str]:
    """The cells of the table row of pairing `name` (columns are 2+ spaces apart)."""
    (line,) = [line for line in text.splitlines() if line.strip().startswith(name + " ")]
    return re.split(r"\s{2,}", line.strip())


def rendered(progress: LiveProgress) -> str:
    console = terminal()
    console.print(progress.render())
    return ANSI.sub("", console.file.getvalue())


def test_live_table_shows_each_pairing_in_its_row_and_the_run_below():
    clock = Clock()
    progress = LiveProgress(terminal(), clock=clock)
    cnn, mlp, refit = "simple_cnn@digits.r0", "mlp@digits.r0", "mlp@digits.r1"
    progress.add(status(cnn, total=8, folds=2))
    progress.add(status(mlp, total=4, folds=2))
    progress.add(status(refit, total=0, phase="waiting", folds=2))
    progress.started = clock.now
    progress.update(status(cnn, total=8, running=2, folds=2))  # the first trials start
    clock.now += 65
    progress.update(
        status(cnn, total=8, done=3, running=2, pruned=1, failed=1, best=0.9712, folds=2)
    )
    progress.update(done(status(mlp, total=4, done=4, best=0.8804, folds=2), test=0.9310))
    text = rendered(progress)
    assert cells(text, cnn) == [cnn, "3/8", "2", "1", "1", "0.9712", "searching"]
    assert cells(text, mlp) == [mlp, "4/4", "0", "0", "0", "0.8804", "ok, test 0.9310"]
    assert cells(text, refit) == [refit, "refit", "0", "0", "0", "-", "waiting"]
    assert "best CV" in text and "f1_macro" in text
    # done 3 + (4 + 1) of (8 + 1) + (4 + 1) + 1: 8 of 15 in 65 s
    assert "7/12 trials, 1/3 pairings done, 1:05 elapsed, about 0:57 left" in text


def test_live_table_says_why_a_pairing_failed_and_estimates_only_once_work_is_done():
    progress = LiveProgress(terminal(), clock=Clock())
    bad = done(status(total=2, done=2, failed=2), "failed", None, "no trial finished: diverged")
    progress.add(status("resnet18@digits.r0", total=40))
    progress.add(bad)
    text = rendered(progress)
    assert cells(text, "mlp@digits.r0")[-1] == "failed: no trial finished: diverged"
    assert "2/42 trials, 1/2 pairings done, 0:00 elapsed, estimating the time left" in text


def test_rows_beyond_the_limit_are_summed_up_the_running_ones_kept():
    rows = [done(status(f"p{i}@d.r0", total=2, done=2)) for i in range(10)]
    rows += [status(f"q{i}@d.r0", total=2) for i in range(10)]
    rows[15] = status("q5@d.r0", total=2, running=1)
    shown, hidden = visible_rows(rows, limit=5)
    assert [r.name for r in shown] == ["q0@d.r0", "q1@d.r0", "q2@d.r0", "q5@d.r0"]
    assert len(hidden) == 16
    console = terminal()
    console.print(progress_table(rows, Progress().overall(), limit=5))
    text = ANSI.sub("", console.file.getvalue())
    assert cells(text, "+ 16 more")[-1] == "10 done, 6 to come"
    assert "q9@d.r0" not in text


def test_live_display_prints_messages_above_it_and_leaves_its_last_frame():
    console = terminal()
    progress = LiveProgress(console, clock=Clock())
    progress.add(status(total=2))
    progress.start()
    progress.echo("  dataset digits: 1437 train / 360 test")
    progress.update(done(status(total=2, done=2, best=0.9), test=0.93))
    progress.close()
    text = ANSI.sub("", console.file.getvalue())
    assert text.count("dataset digits: 1437 train / 360 test") == 1
    last = text[text.rindex("best CV") :]  # the final frame, after every message
    assert cells(last, "mlp@digits.r0")[-1] == "ok, test 0.9300"
    assert "2/2 trials, 1/1 pairings done, 0:00 elapsed" in last and "left" not in last
    assert text.index("dataset digits") < text.rindex("best CV")


# -- plain lines -----------------------------------------------------------------------------


def test_plain_lines_when_a_pairing_changes_and_the_run_every_30_seconds():
    clock, lines = Clock(), []
    progress = PlainProgress(lines.append, clock=clock)
    progress.add(status(total=4, folds=2))
    progress.add(status("mlp@digits.r1", total=0, phase="waiting", folds=2))
    progress.start()
    progress.update(status(total=4, running=2, folds=2))  # a start changes no line
    progress.echo("  dataset digits: 1437 train / 360 test")
    progress.update(status(total=4, done=1, running=1, pruned=1, folds=2))
    clock.now += 10
    progress.update(status(total=4, done=2, running=0, pruned=1, best=0.5, folds=2))
    progress.tick()  # 10 s: no overall line yet
    clock.now += 25
    progress.tick()  # 35 s
    progress.tick()
    progress.update(done(status("mlp@digits.r1", total=0, folds=2), test=0.9))
    progress.close()
    progress.close()
    assert lines == [
        "  dataset digits: 1437 train / 360 test",
        "  mlp@digits.r0                trials 1/4 (1 pruned)  best CV f1_macro -",
        "  mlp@digits.r0                trials 2/4 (1 pruned)  best CV f1_macro 0.5000",
        # 2 trials' work done in 35 s, 4 left (2 trials and 2 refits, a trial each at 2 folds)
        "  progress: 2/4 trials, 0/2 pairings done, 0:35 elapsed, about 1:10 left",
        "  mlp@digits.r1                trials 0/0  refit of repeat 0's choice  done: ok, test 0.9000",
        "  progress: 2/4 trials, 1/2 pairings done, 0:35 elapsed, about 0:35 left",  # 3 and 3
    ]
    assert not any("\x1b" in line for line in lines)


# -- which display -----------------------------------------------------------------------------


def test_a_run_gets_the_live_table_only_on_an_interactive_terminal(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)
    assert isinstance(open_progress(lambda line: None), PlainProgress)  # tests, bench perf
    assert isinstance(open_progress(print), PlainProgress)  # stdout captured: not a terminal
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich's switch: treat stdout as a terminal
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    assert isinstance(open_progress(print), LiveProgress)
    assert isinstance(open_progress(lambda line: None), PlainProgress)
    monkeypatch.setenv("TTY_INTERACTIVE", "0")  # e.g. a terminal that records a log
    assert isinstance(open_progress(print), PlainProgress)
