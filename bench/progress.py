"""The console while a run searches: per pairing, its trials done, running, pruned and failed,
its best CV score and its phase (its test score once done); for the run, the time elapsed and
an estimate of the time left.

On an interactive terminal it is a rich Live table, redrawn on rich's own timer however many
trial events arrive; anywhere else (CI logs, `ray job logs`, a pipe, a caller's own `echo`)
it is plain lines: one when a pairing's line changes, and an overall line at most every
`OVERALL_EVERY` seconds. Messages echoed meanwhile print above the table.

No Ray, no torch: the search (bench.tune.search) reports each pairing as a PairingStatus."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

Echo = Callable[[str], None]
OVERALL_EVERY = 30.0  # seconds between two plain overall lines
ESTIMATE_AFTER = 0.05  # share of the run's work done before the time left is estimated
# A frame of the live table costs about 0.6 ms of the driver's CPU a row (rich's layout), so
# the table is redrawn twice a second and holds at most MAX_ROWS pairings (the others summed
# up in one row): at most about 2% of a core, however many trials end meanwhile.
REFRESH_PER_SECOND = 2
MAX_ROWS = 20


@dataclass(frozen=True)
class PairingStatus:
    """One pairing's repeat as the console shows it: a snapshot, since the live table is
    drawn from rich's thread while the search changes its own state."""

    name: str
    metric: str
    phase: str  # waiting, searching, refit ready, refitting, done, skipped
    total: int  # trials of its search; 0: it refits another repeat's choice
    done: int  # trials ended, pruned and failed ones (and an interrupted session's) included
    running: int
    pruned: int
    failed: int
    best: float | None  # best CV score so far
    folds: int
    finished: bool = False  # done or skipped: no work left
    status: str | None = None  # the replicate's status (ok, failed) once done
    test: float | None = None  # its test score, once done
    error: str = ""  # why it failed


@dataclass(frozen=True)
class Overall:
    """The whole run at one moment."""

    elapsed: float
    trials_done: int
    trials: int
    pairings_done: int
    pairings: int
    left: float | None  # seconds; None until it can be estimated

    def line(self) -> str:
        """`12/40 trials, 3/9 pairings done, 1:05 elapsed, about 2:10 left`"""
        text = (
            f"{self.trials_done}/{self.trials} trials, "
            f"{self.pairings_done}/{self.pairings} pairings done, "
            f"{clock_time(self.elapsed)} elapsed"
        )
        if self.left is None:
            return f"{text}, estimating the time left"
        if self.left <= 0:
            return text
        return f"{text}, about {clock_time(max(1.0, self.left))} left"  # never "0:00 left"


def clock_time(seconds: float) -> str:
    """`0:42`, `3:05`, `1:02:05`."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def work(status: PairingStatus, ended_before: int) -> tuple[float, float]:
    """A pairing's work (done, left), in its trials: a trial is one, its refit 1/(folds - 1)
    (one training on all the folds' data, where a trial trains k times on (k-1)/k of it).
    `ended_before` trials ended before the display started and count in neither."""
    refit = 1 / max(1, status.folds - 1)
    ran = max(0, status.done - ended_before)
    if status.finished:
        return ran + (refit if status.status == "ok" else 0.0), 0.0
    return ran, max(0, status.total - status.done) + refit


def time_left(elapsed: float, done: float, left: float) -> float | None:
    """Seconds left if the work left goes at the pace of the work `done` in `elapsed`
    seconds; None until ESTIMATE_AFTER of the work is done (the first trials' pace says
    little)."""
    if left <= 0:
        return 0.0
    if done <= 0 or elapsed <= 0 or done < ESTIMATE_AFTER * (done + left):
        return None
    return elapsed * left / done


class Progress:
    """The pairings as last reported, and the run's clock: what every display shows.
    `weights`: each pairing's cost of one trial (pairings without one weigh 1)."""

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.weights, self.clock = dict(weights or {}), clock
        self.rows: dict[str, PairingStatus] = {}
        self.ended_before: dict[str, int] = {}
        self.started: float | None = None  # the time elapsed counts from here
        # The pace counts from the first event after it (a trial starting): loading the first
        # dataset and starting the trial actors cost seconds once, not per unit of work.
        self.working: float | None = None

    def add(self, status: PairingStatus) -> None:
        """A pairing of the run, as it stands before the search starts (nothing is shown)."""
        self.rows[status.name] = status
        self.ended_before[status.name] = status.done

    def update(self, status: PairingStatus) -> None:
        """A trial of the pairing started or ended, or its phase changed."""
        self.rows[status.name] = status
        if self.working is None and self.started is not None:
            self.working = self.clock()

    def echo(self, line: str) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        """Called often by the search loop: time passes."""

    def overall(self) -> Overall:
        rows = list(self.rows.values())
        done = left = 0.0
        for status in rows:
            ran, to_go = work(status, self.ended_before.get(status.name, 0))
            weight = self.weights.get(status.name, 1.0)
            done, left = done + weight * ran, left + weight * to_go
        now = self.clock()
        elapsed = 0.0 if self.started is None else now - self.started
        working = 0.0 if self.working is None else now - self.working
        return Overall(
            elapsed,
            sum(s.done for s in rows),
            sum(s.total for s in rows),
            sum(s.finished for s in rows),
            len(rows),
            time_left(working, done, left),
        )

    def start(self) -> None:
        self.started = self.clock()

    def close(self) -> None:
        """The search ended (or stopped): show the last state."""


class PlainProgress(Progress):
    """Plain lines through `echo`: a pairing's line when it changes, the overall line at most
    every `every` seconds (checked on each event and tick) and once at the end."""

    def __init__(
        self,
        echo: Echo,
        weights: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = OVERALL_EVERY,
    ) -> None:
        super().__init__(weights, clock)
        self._echo, self.every = echo, every
        self.shown: dict[str, str] = {}
        self.last_overall, self.closed = -math.inf, False

    def add(self, status: PairingStatus) -> None:
        super().add(status)
        self.shown[status.name] = plain_line(status)

    def update(self, status: PairingStatus) -> None:
        super().update(status)
        line = plain_line(status)
        if self.shown.get(status.name) != line:
            self.shown[status.name] = line
            self._echo(line)
        self.tick()

    def echo(self, line: str) -> None:
        self._echo(line)

    def tick(self) -> None:
        if self.started is None or self.closed:
            return
        if self.clock() - self.last_overall >= self.every:
            self._show_overall()

    def start(self) -> None:
        super().start()
        self.last_overall = self.started

    def close(self) -> None:
        if self.started is not None and not self.closed:
            self._show_overall()
        self.closed = True

    def _show_overall(self) -> None:
        self.last_overall = self.clock()
        self._echo(f"  progress: {self.overall().line()}")


def plain_line(status: PairingStatus) -> str:
    """`  mlp@digits.r0   trials 3/8 (1 pruned)  best CV f1_macro 0.9712  done: ok, test 0.9650`"""
    extra = ", ".join(
        f"{n} {k}" for k, n in (("pruned", status.pruned), ("failed", status.failed)) if n
    )
    best = "-" if status.best is None else f"{status.best:.4f}"
    line = f"  {status.name:<28} trials {status.done}/{status.total}"
    line += f" ({extra})" if extra else ""
    line += f"  best CV {status.metric} {best}" if status.total else "  refit of repeat 0's choice"
    if status.status is not None:
        test = "-" if status.test is None else f"{status.test:.4f}"
        line += f"  done: {status.status}, test {test}"
    return line


class LiveProgress(Progress):
    """A rich Live table on `console`, redrawn on rich's timer from the last reported states
    (an event costs a dictionary write, never a redraw); the last frame stays on screen when
    it closes."""

    def __init__(
        self,
        console: Console,
        weights: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_per_second: float = REFRESH_PER_SECOND,
    ) -> None:
        super().__init__(weights, clock)
        self.console = console
        self.live = Live(
            console=console, get_renderable=self.render, refresh_per_second=refresh_per_second
        )

    def echo(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def start(self) -> None:
        super().start()
        self.live.start(refresh=True)

    def close(self) -> None:
        self.live.stop()

    def render(self) -> RenderableType:
        # the table's head (2 lines), its rule, the overall line and a spare line
        limit = max(4, min(MAX_ROWS, self.console.height - 5))
        return progress_table(list(self.rows.values()), self.overall(), limit)


def progress_table(rows: Sequence[PairingStatus], overall: Overall, limit: int) -> Group:
    """One row per pairing (at most `limit`: the unfinished first, the others summed up in one
    row), then the overall line."""
    metrics = sorted({r.metric for r in rows})
    # the status column takes what is left of the width (a failure's reason is cut short)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, expand=True)
    table.add_column("pairing", no_wrap=True)
    for name in ("trials", "running", "pruned", "failed"):
        table.add_column(name, justify="right", no_wrap=True)
    best = "best CV\n" + metrics[0] if len(metrics) == 1 else "best CV"
    table.add_column(best, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True, overflow="ellipsis", ratio=1, min_width=15)
    shown, hidden = visible_rows(rows, limit)
    for r in shown:
        table.add_row(
            r.name,
            f"{r.done}/{r.total}" if r.total else "refit",
            str(r.running),
            str(r.pruned),
            Text(str(r.failed), style="red" if r.failed else ""),
            "-" if r.best is None else f"{r.best:.4f}",
            status_text(r),
        )
    if hidden:
        finished = sum(r.finished for r in hidden)
        table.add_row(
            f"+ {len(hidden)} more",
            "",
            str(sum(r.running for r in hidden)),
            "",
            "",
            "",
            Text(f"{finished} done, {len(hidden) - finished} to come", style="dim"),
        )
    return Group(table, Text(overall.line(), style="bold"))


def visible_rows(
    rows: Sequence[PairingStatus], limit: int
) -> tuple[list[PairingStatus], list[PairingStatus]]:
    """(shown, hidden), in run order: all rows when they fit; otherwise `limit - 1` of them,
    the running ones first, then those still to come, then the finished."""
    if len(rows) <= limit:
        return list(rows), []
    ranked = sorted(range(len(rows)), key=lambda i: (rows[i].finished, not rows[i].running, i))
    keep = set(ranked[: limit - 1])
    return (
        [r for i, r in enumerate(rows) if i in keep],
        [r for i, r in enumerate(rows) if i not in keep],
    )


def status_text(r: PairingStatus) -> Text:
    if r.status is None:
        style = {"skipped": "yellow", "waiting": "dim", "refitting": "cyan"}.get(r.phase, "")
        return Text(r.phase, style=style)
    test = "" if r.test is None else f", test {r.test:.4f}"
    error = f": {r.error}" if r.error else ""
    return Text(f"{r.status}{test}{error}", style="green" if r.status == "ok" else "red")


def open_progress(echo: Echo, weights: Mapping[str, float] | None = None) -> Progress:
    """The live table when `echo` is `print` and stdout is an interactive terminal (rich's
    test: a TTY, not TERM=dumb; TTY_INTERACTIVE=0 turns it off); plain lines through `echo`
    otherwise."""
    if echo is print:
        console = Console()
        if console.is_interactive:
            return LiveProgress(console, weights)
    return PlainProgress(echo, weights)
