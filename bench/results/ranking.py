"""The one ranking of pairings: by a held-out test figure, in its metric's direction.

bench.results.finalize ranks a run's leaderboard with it and bench.report ranks merged runs
with it, so a leaderboard file and a report never disagree on an order."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from bench.metrics import Objective


def competition_ranks(values: Sequence[float | None], objective: Objective) -> list[int | None]:
    """Rank of each value, 1 = best by `objective`; equal values share the better rank
    (1, 2, 2, 4). A value that is None or NaN (a failed pairing, a metric undefined on its
    data) gets no rank (None) and costs no other value a place."""
    keys = [None if v is None or math.isnan(v) else objective.sign * float(v) for v in values]
    scored = sorted(k for k in keys if k is not None)
    # 1 + how many score strictly better
    return [None if k is None else 1 + len(scored) - bisect_right(scored, k) for k in keys]


def ranked_order(ranks: Sequence[int | None], names: Sequence[str]) -> list[int]:
    """Positions in leaderboard order: by rank, equal ranks by name, unranked last (by name)."""
    return sorted(range(len(ranks)), key=lambda i: (ranks[i] is None, ranks[i] or 0, names[i]))
