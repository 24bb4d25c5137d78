"""The study's statistics: the paired comparison against scipy and against the formulas worked
by hand on fixed numbers; the spread over seeds; the seed list."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from ktg_dsl.study.plan import parse_seeds
from ktg_dsl.study.stats import WILCOXON_MIN_N, paired, spread

# five seeds: spec accuracies and the baseline's; differences 0.7, -0.1, 0.9, 0.8, 0.8
A = [91.2, 90.8, 91.6, 91.0, 91.4]
B = [90.5, 90.9, 90.7, 90.2, 90.6]


def test_the_paired_t_statistic_by_hand() -> None:
    st = paired(A, B)
    # by hand: mean 3.1 / 5 = 0.62; squared deviations 0.0064 + 0.5184 + 0.0784 + 0.0324 +
    # 0.0324 = 0.668; variance 0.668 / 4 = 0.167; t = 0.62 / sqrt(0.167 / 5) = 3.3925
    assert st.n == 5
    assert st.mean_diff == pytest.approx(0.62)
    assert st.std_diff == pytest.approx(math.sqrt(0.167))
    assert st.t == pytest.approx(0.62 / math.sqrt(0.167 / 5))
    assert st.t == pytest.approx(3.3925, abs=1e-4)
    # 95% CI: 0.62 ± t(0.975, 4) sd / sqrt(5), t(0.975, 4) = 2.776445
    half = 2.776445 * math.sqrt(0.167 / 5)
    assert (st.ci_low, st.ci_high) == (pytest.approx(0.62 - half), pytest.approx(0.62 + half))
    # Wilcoxon, exact: the one negative difference has the smallest rank (1), so W- = 1; of the
    # 2^5 sign patterns, W- <= 1 in 2 (W- = 0 and W- = 1); two-sided p = 2 * 2 / 32
    assert st.p_wilcoxon == pytest.approx(0.125)


def test_the_paired_test_agrees_with_scipy() -> None:
    st = paired(A, B)
    ref = sps.ttest_rel(A, B)
    assert st.t == pytest.approx(ref.statistic)
    assert st.p_t == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (st.ci_low, st.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert st.p_wilcoxon == pytest.approx(sps.wilcoxon(A, B).pvalue)
    # the order matters only for the sign
    back = paired(B, A)
    assert back.t == pytest.approx(-st.t) and back.p_t == pytest.approx(st.p_t)
    assert back.mean_diff == pytest.approx(-0.62)


def test_small_and_degenerate_samples() -> None:
    four = paired(A[:4], B[:4])
    assert four.p_t is not None and four.p_wilcoxon is None
    assert str(WILCOXON_MIN_N) in four.note
    one = paired([91.0], [90.0])
    assert (one.n, one.mean_diff, one.t, one.p_t, one.ci_low) == (1, 1.0, None, None, None)
    same = paired([91.0, 92.0, 93.0], [90.0, 91.0, 92.0])  # always +1: no spread, no t
    assert same.mean_diff == pytest.approx(1.0) and same.t is None and same.std_diff == 0.0
    assert "same amount" in same.note
    with pytest.raises(ValueError, match="same, non-zero length"):
        paired([1.0], [1.0, 2.0])


def test_spread_is_the_sample_standard_deviation() -> None:
    s = spread([90.0, 92.0, 94.0])
    assert s is not None
    assert (s.n, s.mean, s.min, s.max) == (3, 92.0, 90.0, 94.0)
    assert s.std == pytest.approx(2.0)  # sqrt((4 + 0 + 4) / 2)
    single = spread([91.5])
    assert single is not None and single.std is None
    assert spread([]) is None


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("5", [0, 1, 2, 3, 4]), ("1", [0]), ("0,3,7", [0, 3, 7]), ("3,", [3]), (" 2 , 9 ", [2, 9])],
)
def test_seed_lists(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "no seed"),
        (",", "no seed"),
        ("1,2,1", "repeats 1"),
        ("-1,2", "seeds must be 0"),
        ("4294967296,", "seeds must be 0"),
        ("five", "a count"),
        ("1.5", "a count"),
    ],
)
def test_bad_seed_lists(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)
