"""The report's statistics against published worked examples and hand computations (numbers
written here, not re-derived with the code's own formula or the same scipy call)."""

import math

import numpy as np
import pytest

from bench.report.stats import (
    HeldOut,
    compare,
    corrected_resampled_ttest,
    friedman,
    holm,
    is_tied,
    mcnemar_exact,
    probability_of_outperforming,
    wilcoxon_p,
)


def test_holm_matches_the_worked_example():
    # Holm-Bonferroni's standard example (four hypotheses at alpha 0.05): sorted p
    # 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    # 0.02, 0.03, 0.06, 0.06; H4 and H1 are rejected, H3 and H2 are not.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert (adjusted < 0.05).tolist() == [True, False, False, True]


def test_holm_skips_tests_not_run_and_caps_at_one():
    adjusted = holm([0.01, math.nan, 0.04])  # m = 2, not 3
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]
    assert holm([]).tolist() == []


def test_mcnemar_exact_on_the_discordant_pairs():
    # b = 10 images only the first classifies right, c = 2 only the second; 30 both right
    # and 5 both wrong do not count. Two-sided exact p = 2 * P(X <= 2), X ~ Bin(12, 1/2).
    first = np.array([True] * 10 + [False] * 2 + [True] * 30 + [False] * 5)
    second = np.array([False] * 10 + [True] * 2 + [True] * 30 + [False] * 5)
    expected = 2 * (math.comb(12, 0) + math.comb(12, 1) + math.comb(12, 2)) / 2**12
    assert expected == pytest.approx(0.0386, abs=5e-5)
    assert mcnemar_exact(first, second) == pytest.approx(expected)
    assert mcnemar_exact(second, first) == pytest.approx(expected)  # two-sided


def test_mcnemar_without_a_difference_is_not_significant():
    same = np.array([True, False, True])
    assert mcnemar_exact(same, same) == 1.0
    # b = c = 3: P(X <= 3) for Bin(6, 1/2) is 42/64; doubled, capped at 1
    first = np.array([True] * 3 + [False] * 3)
    assert mcnemar_exact(first, ~first) == 1.0


def test_corrected_resampled_ttest_by_hand():
    # differences 0.02, 0.01, 0.03 over R = 3 repeats, n_test / n_train = 100 / 400:
    # mean 0.02, variance 0.0001, t = 0.02 / sqrt((1/3 + 1/4) * 0.0001) = sqrt(48/7).
    # With 2 degrees of freedom the t distribution has a closed form: two-sided
    # p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(48/62).
    a = np.array([0.92, 0.91, 0.93])
    b = np.array([0.90, 0.90, 0.90])
    t, p = corrected_resampled_ttest(a, b, test_train_ratio=0.25)
    assert t == pytest.approx(2.61861, abs=1e-5)
    assert p == pytest.approx(0.120117, abs=1e-6)
    # uncorrected: t = 0.02 / sqrt(0.0001 / 3) = sqrt(12), p = 1 - sqrt(12/14)
    t, p = corrected_resampled_ttest(a, b, test_train_ratio=0.0)
    assert t == pytest.approx(math.sqrt(12))
    assert p == pytest.approx(1 - math.sqrt(12 / 14))


def test_ttest_edge_cases():
    a = np.array([0.9, 0.8, 0.7])
    assert corrected_resampled_ttest(a, a, 0.25) == (0.0, 1.0)
    assert corrected_resampled_ttest(a + 0.1, a, 0.25) == (math.inf, 0.0)  # constant gap
    assert all(math.isnan(v) for v in corrected_resampled_ttest(a[:1], a[:1], 0.25))


def test_wilcoxon_runs_only_where_it_can_reject():
    # five repeats: the smallest two-sided exact p is 2 / 2**5 = 0.0625 > 0.05
    p, note = wilcoxon_p(np.ones(5), np.zeros(5))
    assert math.isnan(p) and note == "n/a (needs >= 6 repeats)"
    # six repeats all in one direction: exact p = 2 / 2**6
    p, note = wilcoxon_p(np.arange(1, 7) / 10, np.zeros(6))
    assert p == pytest.approx(2 / 64) and note == ""
    # six repeats, one without a difference: five signed differences are left
    p, note = wilcoxon_p(np.r_[0.0, np.arange(1, 6) / 10], np.zeros(6))
    assert math.isnan(p) and "differ" in note


def test_probability_of_outperforming_counts_ties_half():
    best = np.array([0.9, 0.8, 0.7, 0.6])
    other = np.array([0.8, 0.8, 0.75, 0.5])  # win, tie, loss, win
    assert probability_of_outperforming(best, other) == pytest.approx((2 + 0.5) / 4)
    # a loss metric: lower wins, so only the third repeat is won
    assert probability_of_outperforming(best, other, higher_is_better=False) == pytest.approx(
        (1 + 0.5) / 4
    )
    assert math.isnan(probability_of_outperforming(np.array([]), np.array([])))


def test_tied_only_when_no_test_separates():
    assert is_tied([0.2, 0.06, math.nan], -0.01, 0.03) is True
    assert is_tied([0.2, 0.04], -0.01, 0.03) is False  # one adjusted p below 0.05
    assert is_tied([0.2, 0.3], 0.01, 0.03) is False  # the interval excludes 0
    assert is_tied([math.nan], math.nan, math.nan) is None  # nothing tested


# Demšar (2006), "Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7,
# section 3.2.4: C4.5, C4.5+m, C4.5+cf, C4.5+m+cf on 14 data sets; the ranks of Table 6.
DEMSAR_RANKS = np.array(
    [
        [4, 3, 2, 1],
        [1, 2, 3, 4],
        [4, 1, 2, 3],
        [4, 1, 3, 2],
        [4, 2, 3, 1],
        [1, 2.5, 4, 2.5],
        [3, 2, 4, 1],
        [2.5, 2.5, 4, 1],
        [4, 3, 2, 1],
        [2.5, 2.5, 2.5, 2.5],
        [4, 2.5, 1, 2.5],
        [3, 2, 4, 1],
        [4, 1, 2, 3],
        [3, 1, 4, 2],
    ]
)


def test_friedman_and_nemenyi_reproduce_demsars_worked_example():
    # ranks used as scores, lower is better, so each data set ranks the four as printed
    result = friedman(DEMSAR_RANKS, ["c45", "c45+m", "c45+cf", "c45+m+cf"], False)
    assert result.average_ranks == pytest.approx([3.143, 2.000, 2.893, 1.964], abs=5e-4)
    assert result.critical_difference == pytest.approx(1.25, abs=5e-3)  # "CD = 1.25"
    # Demšar's chi2_F = 9.28 has no tie correction; scipy's divides it by
    # 1 - sum(t^3 - t) / (N k (k^2 - 1)): one 4-way tie (60) and three 2-way ties (6 each).
    tie_factor = 1 - (60 + 3 * 6) / (14 * 4 * (4**2 - 1))
    assert result.statistic * tie_factor == pytest.approx(9.28, abs=0.01)
    assert 0 < result.p_value < 0.05


def test_friedman_higher_is_better_ranks_the_largest_first():
    scores = np.array([[0.7, 0.8, 0.9], [0.6, 0.75, 0.8]])
    assert friedman(scores, ["a", "b", "c"]).average_ranks == [3.0, 2.0, 1.0]
    assert friedman(scores, ["a", "b", "c"], higher_is_better=False).average_ranks == [
        1.0,
        2.0,
        3.0,
    ]


def _replicate(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, alternating labels; 0.9 on the true class where `correct`."""
    y = np.arange(len(correct)) % 2
    predicted = np.where(correct, y, 1 - y)
    proba = np.full((len(y), 2), 0.1, dtype=np.float32)
    proba[np.arange(len(y)), predicted] = 0.9
    return y, proba


def test_compare_pairs_predictions_and_repeat_scores():
    best_right = np.array([True] * 10 + [False] * 2 + [True] * 30 + [False] * 6)
    other_right = np.array([False] * 10 + [True] * 2 + [True] * 30 + [False] * 6)
    best = HeldOut({r: _replicate(best_right) for r in range(3)}, {0: 0.92, 1: 0.91, 2: 0.93}, 0.25)
    other = HeldOut(
        {r: _replicate(other_right) for r in range(3)}, {0: 0.90, 1: 0.90, 2: 0.90}, 0.25
    )
    result = compare(best, other, "accuracy", higher_is_better=True, seed=0)
    assert result.repeats == 3
    assert result.p_mcnemar == pytest.approx(0.0386, abs=5e-5)  # b = 10, c = 2 as above
    assert result.p_ttest == pytest.approx(0.120117, abs=1e-6)  # the hand-computed t-test
    assert result.p_outperform == 1.0
    assert result.difference == pytest.approx(8 / 48)  # 40/48 - 32/48 correct
    assert result.difference_low <= result.difference <= result.difference_high
    assert math.isnan(result.p_wilcoxon) and result.wilcoxon_note


def test_compare_refuses_different_test_labels():
    y, proba = _replicate(np.ones(10, dtype=bool))
    other = HeldOut({0: (1 - y, proba)})
    with pytest.raises(ValueError, match="labels differ"):
        compare(HeldOut({0: (y, proba)}), other, "accuracy", True)
