"""Significance of differences between models, on held-out test data only.

- Per (dataset, fingerprint) group: the best model against each other one, paired on the
  same test images: the exact McNemar test on one repeat's predictions; a paired bootstrap
  interval of the metric difference over every repeat (bench.bootstrap); over the repeats'
  test scores, the corrected resampled t-test (Nadeau & Bengio, 2003), the Wilcoxon
  signed-rank test where it can reach p < 0.05, and the probability of outperforming.
  p-values are Holm-adjusted within the group (Holm, 1979).
- Across datasets: the Friedman test on per-dataset ranks, average ranks, and the Nemenyi
  critical difference for a CD diagram (Demšar, 2006).

CV scores never enter a test: they chose each model's configuration, so they are biased up."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from bench import bootstrap

ALPHA = 0.05
# The two-sided exact Wilcoxon signed-rank p is at least 2 / 2**n for n non-zero differences:
# 0.0625 for n = 5, 0.031 for n = 6. Below 6 it can never reject at 0.05, so it is not run.
WILCOXON_MIN_DIFFERENCES = 6

# Studentized range statistic / sqrt(2) at alpha = 0.05 for 2..10 models (Demšar, Table 5a).
NEMENYI_Q05 = {
    2: 1.960,
    3: 2.343,
    4: 2.569,
    5: 2.728,
    6: 2.850,
    7: 2.949,
    8: 3.031,
    9: 3.102,
    10: 3.164,
}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, 1979, "A simple sequentially rejective
    multiple test procedure", Scand. J. Statist. 6: 65-70), in the input order.

    Sorted ascending, the i-th smallest of m p-values is multiplied by (m - i + 1); each
    adjusted value is the running maximum of those products, capped at 1. Rejecting every
    adjusted p < alpha controls the family-wise error rate at alpha. NaN (a test that could
    not be run) stays NaN and is not counted in m."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted


def mcnemar_exact(best_correct: np.ndarray, other_correct: np.ndarray) -> float:
    """Two-sided exact McNemar p for two classifiers scored on the same test images.

    Only the discordant images count: b where only the first is right, c where only the
    second is. Under the null each is equally likely, so b ~ Binomial(b + c, 1/2)."""
    best_correct = np.asarray(best_correct, dtype=bool)
    other_correct = np.asarray(other_correct, dtype=bool)
    only_best = int(np.sum(best_correct & ~other_correct))
    only_other = int(np.sum(~best_correct & other_correct))
    if only_best + only_other == 0:
        return 1.0
    return float(stats.binomtest(only_best, only_best + only_other, 0.5).pvalue)


def corrected_resampled_ttest(
    a: np.ndarray, b: np.ndarray, test_train_ratio: float
) -> tuple[float, float]:
    """(t, two-sided p) for paired scores a, b of R repeated random train/test splits.

    The plain paired t-test treats the repeats as independent; their training sets overlap,
    so Nadeau & Bengio (2003) inflate the variance of the mean difference from var/R to
    (1/R + n_test/n_train) * var, with R - 1 degrees of freedom."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    repeats = len(d)
    if repeats < 2:
        return math.nan, math.nan
    mean, var = d.mean(), d.var(ddof=1)
    denominator = math.sqrt((1.0 / repeats + test_train_ratio) * var)
    if denominator == 0:
        return (math.inf * np.sign(mean), 0.0) if mean != 0 else (0.0, 1.0)
    t = mean / denominator
    return float(t), float(2 * stats.t.sf(abs(t), df=repeats - 1))


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    """(two-sided Wilcoxon signed-rank p, why there is none) over paired repeat scores.

    Zero differences carry no sign and are dropped; with fewer than 6 left the test cannot
    reach p < 0.05, so it is not reported rather than reported as a p that cannot reject."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    differing = d[d != 0]
    if len(d) < WILCOXON_MIN_DIFFERENCES:
        return math.nan, f"n/a (needs >= {WILCOXON_MIN_DIFFERENCES} repeats)"
    if len(differing) < WILCOXON_MIN_DIFFERENCES:
        return math.nan, f"n/a (needs >= {WILCOXON_MIN_DIFFERENCES} repeats that differ)"
    return float(stats.wilcoxon(differing).pvalue), ""


def probability_of_outperforming(
    a: np.ndarray, b: np.ndarray, higher_is_better: bool = True
) -> float:
    """The fraction of paired repeats on which a scores better than b; a tie counts half."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0:
        return math.nan
    wins = (a > b) if higher_is_better else (a < b)
    return float(np.mean(wins + 0.5 * (a == b)))


@dataclass
class HeldOut:
    """One pairing's held-out results, by repeat."""

    predictions: dict[int, bootstrap.Replicate] = field(default_factory=dict)  # (y, proba)
    scores: dict[int, float] = field(default_factory=dict)  # test_<metric> from replicates
    test_train_ratio: float = math.nan  # n_test / n_train of its splits


@dataclass
class Comparison:
    """The best model of a group against one other; p-values before Holm's adjustment."""

    repeats: int = 0  # repeats with test scores for both
    p_mcnemar: float = math.nan
    difference: float = math.nan  # best - other in the metric's units, mean over repeats
    difference_low: float = math.nan
    difference_high: float = math.nan
    p_ttest: float = math.nan
    p_wilcoxon: float = math.nan
    wilcoxon_note: str = ""
    p_outperform: float = math.nan  # P(best scores better than other on a repeat)


def compare(
    best: HeldOut, other: HeldOut, metric: str, higher_is_better: bool, seed: int = 0
) -> Comparison:
    """Every paired test of `best` against `other` that their shared held-out data allows.

    Raises ValueError when the two were not scored on the same test labels."""
    result = Comparison()
    shared = sorted(set(best.predictions) & set(other.predictions))
    if shared:
        _compare_predictions(best, other, shared, metric, seed, result)
    repeats = sorted(set(best.scores) & set(other.scores))
    result.repeats = len(repeats)
    if len(repeats) >= 2:
        a = np.array([best.scores[r] for r in repeats])
        b = np.array([other.scores[r] for r in repeats])
        # without n_test / n_train the correction is unknown, and uncorrected is too liberal
        if not math.isnan(best.test_train_ratio):
            result.p_ttest = corrected_resampled_ttest(a, b, best.test_train_ratio)[1]
        result.p_wilcoxon, result.wilcoxon_note = wilcoxon_p(a, b)
        result.p_outperform = probability_of_outperforming(a, b, higher_is_better)
    elif repeats:
        result.wilcoxon_note = f"n/a (needs >= {WILCOXON_MIN_DIFFERENCES} repeats)"
    return result


def _compare_predictions(
    best: HeldOut, other: HeldOut, shared: list[int], metric: str, seed: int, result: Comparison
) -> None:
    # McNemar on one repeat (normally 0): its images are independent of each other, while
    # images of different repeats overlap, so pooling repeats would count some twice.
    (y_best, p_best), (y_other, p_other) = best.predictions[shared[0]], other.predictions[shared[0]]
    if not np.array_equal(y_best, y_other):
        raise ValueError("the two models' test labels differ")
    result.p_mcnemar = mcnemar_exact(p_best.argmax(1) == y_best, p_other.argmax(1) == y_other)
    interval = bootstrap.paired_difference(
        [best.predictions[r] for r in shared],
        [other.predictions[r] for r in shared],
        metric,
        num_classes=p_best.shape[1],
        seed=seed,
    )
    result.difference = interval.estimate
    result.difference_low, result.difference_high = interval.low, interval.high


def is_tied(adjusted_p: list[float], low: float, high: float) -> bool | None:
    """Tied with the best when no test separates them: every (Holm-adjusted) p >= alpha and
    the paired bootstrap interval of the difference holds 0. None when nothing was tested."""
    tested = [p for p in adjusted_p if not math.isnan(p)]
    has_interval = not (math.isnan(low) or math.isnan(high))
    if not tested and not has_interval:
        return None
    separated = any(p < ALPHA for p in tested) or (has_interval and not low <= 0 <= high)
    return not separated


@dataclass
class FriedmanResult:
    models: list[str]
    average_ranks: list[float]  # 1 = best, same order as models
    statistic: float
    p_value: float
    critical_difference: float | None  # Nemenyi at alpha = 0.05; None beyond the table


def friedman(
    scores: np.ndarray, models: list[str], higher_is_better: bool = True
) -> FriedmanResult:
    """scores[i, j]: model j on dataset i. Ranks within each dataset (ties averaged); the
    statistic is scipy's, which corrects for ties."""
    scores = np.asarray(scores, dtype=float)
    signed = -scores if higher_is_better else scores
    ranks = np.vstack([stats.rankdata(row) for row in signed])
    average = ranks.mean(axis=0)
    n, k = scores.shape
    if k >= 3 and n >= 2:
        statistic, p = stats.friedmanchisquare(*scores.T)
    else:
        statistic, p = math.nan, math.nan
    q = NEMENYI_Q05.get(k)
    cd = q * math.sqrt(k * (k + 1) / (6.0 * n)) if q else None
    return FriedmanResult(list(models), average.tolist(), float(statistic), float(p), cd)
