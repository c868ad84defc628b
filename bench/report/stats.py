"""Significance of differences between models, over the folds every model shares.

- Per dataset: the best model against each other one, paired over folds, with the corrected
  resampled t-test (Nadeau & Bengio, 2003) and the Wilcoxon signed-rank test.
- Across datasets: the Friedman test on per-dataset ranks, average ranks, and the Nemenyi
  critical difference for a CD diagram (Demšar, 2006)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

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


def corrected_resampled_ttest(
    a: np.ndarray, b: np.ndarray, test_train_ratio: float
) -> tuple[float, float]:
    """(t, two-sided p) for paired fold scores a, b of k-fold CV.

    The plain paired t-test treats folds as independent; their training sets overlap, so the
    variance is inflated by (1/k + n_test/n_train), which is 1/(k-1) more for k-fold CV."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    k = len(d)
    if k < 2:
        return math.nan, math.nan
    mean, var = d.mean(), d.var(ddof=1)
    denominator = math.sqrt((1.0 / k + test_train_ratio) * var)
    if denominator == 0:
        return (math.inf * np.sign(mean), 0.0) if mean != 0 else (0.0, 1.0)
    t = mean / denominator
    return float(t), float(2 * stats.t.sf(abs(t), df=k - 1))


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p; 1.0 when every paired difference is zero."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(a, b).pvalue)


def kfold_test_train_ratio(folds: int) -> float:
    """n_test / n_train of one k-fold split."""
    return 1.0 / (folds - 1)


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
    """scores[i, j]: model j on dataset i. Ranks within each dataset (ties averaged)."""
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
