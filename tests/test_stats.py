"""Pair aggregation and win-rate statistics against hand-computed values, scipy and statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from judge_service.reports.warnings import Thresholds, decide, judge_warnings
from judge_service.stats.pairs import JudgmentPoint, outcome_of, summarize_pair, tie_margin_of
from judge_service.stats.winrate import win_rate

BOTH = ("base_first", "ft_first")


def test_pair_outcomes() -> None:
    win = summarize_pair(
        [JudgmentPoint("base_first", 1.0, {"x": (2, 4)}), JudgmentPoint("ft_first", 1.0, {"x": (3, 5)})], BOTH
    )
    assert (win.score, win.outcome, win.inconsistent, win.dimensions["x"]) == (1.0, "win", False, (2.5, 4.5))
    assert win.complete
    flip = summarize_pair([JudgmentPoint("base_first", 1.0), JudgmentPoint("ft_first", 0.0)], BOTH)
    assert (flip.score, flip.outcome, flip.inconsistent) == (0.5, "tie", True)
    half = summarize_pair([JudgmentPoint("base_first", 1.0), JudgmentPoint("ft_first", 0.5)], BOTH)
    assert (half.score, half.outcome, half.inconsistent) == (0.75, "win", False)
    # Repeats: base_first leans FT (2 of 3), ft_first leans Base: inconsistent; order means 2/3 and 0 -> 1/3.
    mixed = summarize_pair(
        [JudgmentPoint("base_first", s) for s in (1, 1, 0)] + [JudgmentPoint("ft_first", s) for s in (0, 0, 0)], BOTH
    )
    assert mixed.inconsistent and mixed.outcome == "loss" and mixed.score == pytest.approx(1 / 3)
    assert summarize_pair([], BOTH).outcome is None


def test_each_order_weighs_half_whatever_its_repeats() -> None:
    # The case: base_first [1, 1, 1], ft_first [0]. The mean of all four is 0.75 (a "win");
    # the mean of the order means is 0.5: a tie, and inconsistent.
    uneven = summarize_pair([JudgmentPoint("base_first", 1.0)] * 3 + [JudgmentPoint("ft_first", 0.0)], BOTH)
    assert uneven.score == 0.5 and uneven.outcome == "tie" and uneven.inconsistent
    dims = summarize_pair(
        [JudgmentPoint("base_first", 1.0, {"x": (1, 5)})] * 3 + [JudgmentPoint("ft_first", 0.0, {"x": (5, 1)})], BOTH
    )
    assert dims.dimensions["x"] == (3.0, 3.0)


def test_one_order_never_decides_a_pair() -> None:
    one = summarize_pair([JudgmentPoint("base_first", 0.0)], BOTH)
    assert (one.score, one.outcome, one.complete, one.missing_orders) == (None, None, False, ("ft_first",))
    assert one.order_scores == {"base_first": 0.0} and one.dimensions == {}
    # Swap off: only base_first was asked, so it is complete with one order.
    swap_off = summarize_pair([JudgmentPoint("base_first", 1.0)], ("base_first",))
    assert swap_off.complete and swap_off.outcome == "win"


def test_tie_margin() -> None:
    # Fast mode, a judge with no signal: P(A)=0.6, P(B)=0.3, P(tie)=0.1 in both orders.
    s_base_first = 0.3 + 0.5 * 0.1  # FT sits in slot B
    s_ft_first = 0.6 + 0.5 * 0.1  # FT sits in slot A
    soft = summarize_pair([JudgmentPoint("base_first", s_base_first), JudgmentPoint("ft_first", s_ft_first)], BOTH)
    assert soft.score == pytest.approx(0.5) and soft.outcome == "tie" and soft.inconsistent
    assert [outcome_of(s) for s in (0.61, 0.6, 0.5, 0.4, 0.39)] == ["win", "tie", "tie", "tie", "loss"]
    assert [outcome_of(s, 0.0) for s in (0.5000001, 0.5, 0.4999999)] == ["win", "tie", "loss"]
    assert tie_margin_of({"tie_margin": 0.2}) == 0.2
    assert tie_margin_of({"tie_margin": "x"}, 0.1) == 0.1 and tie_margin_of({"tie_margin": 0.7}, 0.1) == 0.1
    assert tie_margin_of(None, 0.05) == 0.05


def wilson(mean: float, n: int) -> tuple[float, float]:
    """statsmodels' Wilson interval at the (possibly fractional) count mean * n, in percent."""
    low, high = proportion_confint(mean * n, n, alpha=0.05, method="wilson")
    return 100 * float(low), 100 * float(high)


def test_win_rate_hand_computed() -> None:
    scores = [1, 1, 1, 0.5, 0, 0.75, 0.25, 1]
    wr = win_rate(scores)
    assert (wr.n, wr.wins, wr.ties, wr.losses) == (8, 5, 1, 2)
    assert wr.win_rate == 100 * 5.5 / 8
    assert wr.discrete_win_rate == 100 * 5.5 / 8
    assert wr.standard_error is not None
    assert math.isclose(wr.standard_error, 100 * np.std(scores, ddof=1) / math.sqrt(8))
    assert (wr.ci_low, wr.ci_high) == pytest.approx(wilson(5.5 / 8, 8))
    d = wr.decisive
    assert d.n == 7 and d.ft_share == pytest.approx(100 * 5 / 7)
    assert d.sign_test_p is not None and math.isclose(d.sign_test_p, stats.binomtest(5, 7).pvalue)
    assert math.isclose(d.sign_test_p, 2 * sum(math.comb(7, k) for k in range(0, 3)) / 2**7)
    # Wilson 95% for 5/7 by its closed form.
    z, n, p = stats.norm.ppf(0.975), 7, 5 / 7
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert d.wilson_low is not None and d.wilson_high is not None
    assert math.isclose(d.wilson_low, 100 * (centre - half)) and math.isclose(d.wilson_high, 100 * (centre + half))
    assert wr.ci_low is not None and wr.ci_high is not None and wr.ci_low <= wr.win_rate <= wr.ci_high


def test_degenerate_inputs() -> None:
    empty = win_rate([])
    assert empty.n == 0 and empty.win_rate is None and empty.ci_low is None and empty.standard_error is None
    ties = win_rate([0.5, 0.5])
    assert ties.decisive.sign_test_p is None and ties.decisive.n == 0 and ties.win_rate == 50


def block_of(scores: list[float]) -> dict[str, object]:
    """The numbers the conclusion reads, for a judge that is consistent and unbiased."""
    wr = win_rate(scores)
    out: dict[str, object] = {**wr.as_dict(), "n_pairs": wr.n, "position_consistency": 1.0}
    out["pairs_with_both_orders"] = wr.n
    out["warnings"] = judge_warnings(out, Thresholds())
    return out


def test_one_winning_pair_is_not_certainty() -> None:
    wr = win_rate([1.0])
    assert wr.standard_error is None  # undefined for n = 1, not 0
    assert (wr.ci_low, wr.ci_high) != (100, 100)
    assert (wr.ci_low, wr.ci_high) == pytest.approx(wilson(1.0, 1))
    assert wr.ci_low == pytest.approx(100 * 1 / (1 + stats.norm.ppf(0.975) ** 2))  # Wilson at p=1: n / (n + z²)
    assert decide(block_of([1.0])) == "not_enough_evidence"
    # All pairs lost: the CI does not collapse at 0 either.
    lost = win_rate([0.0] * 5)
    assert lost.ci_low == 0 and lost.ci_high is not None and lost.ci_high > 0


def test_three_wins_and_a_tie_are_not_enough() -> None:
    wr = win_rate([1, 1, 1, 0.5])
    assert (wr.ci_low, wr.ci_high) == pytest.approx(wilson(3.5 / 4, 4))
    assert wr.decisive.sign_test_p == pytest.approx(stats.binomtest(3, 3).pvalue)  # 0.25
    block = block_of([1, 1, 1, 0.5])
    assert decide(block) == "not_enough_evidence"
    assert [w["code"] for w in block["warnings"]] == ["few_pairs"]  # type: ignore[union-attr]


def test_headline_and_decisive_quantities_are_labelled_apart() -> None:
    # 30 wins, 60 ties, 10 losses: the headline (ties half) is 60, the decisive share 30/40 = 75.
    scores = [1.0] * 30 + [0.5] * 60 + [0.0] * 10
    wr = win_rate(scores)
    assert wr.win_rate == pytest.approx(60.0) and wr.decisive.ft_share == pytest.approx(75.0)
    assert (wr.ci_low, wr.ci_high) == pytest.approx(wilson(0.6, 100))
    low, high = proportion_confint(30, 40, alpha=0.05, method="wilson")
    assert (wr.decisive.wilson_low, wr.decisive.wilson_high) == pytest.approx((100 * low, 100 * high))
    assert wr.decisive.sign_test_p == pytest.approx(stats.binomtest(30, 40).pvalue)
    assert wr.standard_error == pytest.approx(100 * np.std(scores, ddof=1) / 10)
    assert decide(block_of(scores)) == "ft_better"  # headline CI [50.2, 69.1] excludes 50; 40 decisive pairs


def test_soft_no_signal_scores_are_ties_not_wins() -> None:
    # The fast-mode case: every pair scores 0.5000000000000001.
    wr = win_rate([0.35 + 0.65 - 0.5] * 40)
    assert (wr.wins, wr.ties, wr.losses) == (0, 40, 0)
    assert wr.ci_low is not None and wr.ci_low < 50 < (wr.ci_high or 0)
    assert decide(block_of([0.5000000000000001] * 40)) == "not_enough_evidence"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=2, max_size=60))
def test_properties(scores: list[float]) -> None:
    wr = win_rate(scores)
    assert wr.win_rate is not None and wr.ci_low is not None and wr.ci_high is not None
    assert 0 <= wr.ci_low < wr.ci_high <= 100  # never collapses
    assert wr.ci_low - 1e-9 <= wr.win_rate <= wr.ci_high + 1e-9
    mirrored = win_rate([1 - s for s in scores])
    assert mirrored.win_rate is not None
    assert math.isclose(mirrored.win_rate, 100 - wr.win_rate, abs_tol=1e-9)
    assert (mirrored.wins, mirrored.losses) == (wr.losses, wr.wins)
    assert mirrored.standard_error == pytest.approx(wr.standard_error, abs=1e-9)
    # Wilson for a [0, 1] mean is at least as wide as the normal interval on its own SD (Bhatia–Davis).
    sd = float(np.std(scores, ddof=0))
    z = stats.norm.ppf(0.975)
    assert wr.ci_high - wr.ci_low >= 100 * 2 * z * sd / math.sqrt(len(scores)) / (1 + z * z / len(scores)) - 1e-6
