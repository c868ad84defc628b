import math

import numpy as np
import pytest
from scipy import stats

from bench.report.stats import (
    corrected_resampled_ttest,
    friedman,
    kfold_test_train_ratio,
    wilcoxon_p,
)

A = np.array([0.91, 0.93, 0.90, 0.94, 0.92])
B = np.array([0.89, 0.92, 0.88, 0.90, 0.91])


def test_without_correction_it_is_scipys_paired_ttest():
    t, p = corrected_resampled_ttest(A, B, test_train_ratio=0.0)
    expected = stats.ttest_rel(A, B)
    assert t == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)


def test_correction_inflates_the_variance_by_nadeau_bengio():
    k = len(A)
    ratio = kfold_test_train_ratio(k)  # 1/(k-1) for k-fold CV
    assert ratio == pytest.approx(0.25)
    t, p = corrected_resampled_ttest(A, B, ratio)
    plain = stats.ttest_rel(A, B).statistic
    assert t == pytest.approx(plain * math.sqrt((1 / k) / (1 / k + ratio)))
    assert p == pytest.approx(2 * stats.t.sf(abs(t), df=k - 1))
    assert p > stats.ttest_rel(A, B).pvalue  # more conservative


def test_identical_scores_are_not_significant():
    assert corrected_resampled_ttest(A, A, 0.25) == (0.0, 1.0)
    assert wilcoxon_p(A, A) == 1.0


def test_wilcoxon_is_scipys():
    assert wilcoxon_p(A, B) == pytest.approx(stats.wilcoxon(A, B).pvalue)


def test_friedman_ranks_statistic_and_critical_difference():
    # 4 datasets x 3 models; model "c" always best, "a" always worst.
    scores = np.array(
        [[0.70, 0.80, 0.90], [0.60, 0.75, 0.80], [0.65, 0.70, 0.85], [0.50, 0.55, 0.60]]
    )
    result = friedman(scores, ["a", "b", "c"])
    assert result.average_ranks == [3.0, 2.0, 1.0]
    expected = stats.friedmanchisquare(*scores.T)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.critical_difference == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 4)))


def test_friedman_lower_is_better_flips_ranks():
    scores = np.array([[0.3, 0.2, 0.1], [0.5, 0.4, 0.2]])
    assert friedman(scores, ["a", "b", "c"], higher_is_better=False).average_ranks == [
        3.0,
        2.0,
        1.0,
    ]
