"""Pair aggregation and win-rate statistics against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from judge_service.stats.pairs import JudgmentPoint, summarize_pair
from judge_service.stats.winrate import win_rate


def test_pair_outcomes() -> None:
    win = summarize_pair(
        [JudgmentPoint("base_first", 1.0, {"x": (2, 4)}), JudgmentPoint("ft_first", 1.0, {"x": (3, 5)})]
    )
    assert (win.score, win.outcome, win.inconsistent, win.dimensions["x"]) == (1.0, "win", False, (2.5, 4.5))
    flip = summarize_pair([JudgmentPoint("base_first", 1.0), JudgmentPoint("ft_first", 0.0)])
    assert (flip.score, flip.outcome, flip.inconsistent) == (0.5, "tie", True)
    half = summarize_pair([JudgmentPoint("base_first", 1.0), JudgmentPoint("ft_first", 0.5)])
    assert (half.score, half.outcome, half.inconsistent) == (0.75, "win", False)
    # Repeats: base_first leans FT (2 of 3), ft_first leans Base: inconsistent.
    mixed = summarize_pair(
        [JudgmentPoint("base_first", s) for s in (1, 1, 0)] + [JudgmentPoint("ft_first", s) for s in (0, 0, 0)]
    )
    assert mixed.inconsistent and mixed.outcome == "loss"
    assert summarize_pair([]).outcome is None


def test_win_rate_hand_computed() -> None:
    scores = [1, 1, 1, 0.5, 0, 0.75, 0.25, 1]
    wr = win_rate(scores)
    assert (wr.n, wr.wins, wr.ties, wr.losses) == (8, 5, 1, 2)
    assert wr.win_rate == 100 * 5.5 / 8
    assert wr.discrete_win_rate == 100 * 5.5 / 8
    assert math.isclose(wr.standard_error, 100 * np.std(scores, ddof=1) / math.sqrt(8))
    assert math.isclose(wr.sign_test_p, stats.binomtest(5, 7).pvalue)
    assert math.isclose(wr.sign_test_p, 2 * sum(math.comb(7, k) for k in range(0, 3)) / 2**7)
    # Wilson 95% for 5/7 by its closed form.
    z, n, p = stats.norm.ppf(0.975), 7, 5 / 7
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wr.wilson_low is not None and wr.wilson_high is not None
    assert math.isclose(wr.wilson_low, 100 * (centre - half)) and math.isclose(wr.wilson_high, 100 * (centre + half))
    assert wr.ci_low <= wr.win_rate <= wr.ci_high
    assert win_rate(scores).ci_low == wr.ci_low  # seeded bootstrap: reproducible


def test_degenerate_inputs() -> None:
    assert win_rate([]).n == 0
    one = win_rate([1.0])
    assert one.win_rate == 100 and one.standard_error == 0 and one.ci_low == one.ci_high == 100
    ties = win_rate([0.5, 0.5])
    assert ties.sign_test_p is None and ties.win_rate == 50


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=2, max_size=60))
def test_properties(scores: list[float]) -> None:
    wr = win_rate(scores, n_resamples=300)
    assert 0 <= wr.win_rate <= 100
    assert wr.ci_low - 1e-9 <= wr.win_rate <= wr.ci_high + 1e-9
    mirrored = win_rate([1 - s for s in scores], n_resamples=300)
    assert math.isclose(mirrored.win_rate, 100 - wr.win_rate, abs_tol=1e-9)
    assert (mirrored.wins, mirrored.losses) == (wr.losses, wr.wins)
    assert math.isclose(mirrored.standard_error, wr.standard_error, abs_tol=1e-9)
