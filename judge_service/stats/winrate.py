"""Win rate with its uncertainty, over pair scores in [0, 1] (pure functions, no I/O).

Every quantity is defined in docs/statistics.md ("Headline win rate", "Decisive pairs").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from judge_service.stats.pairs import DEFAULT_TIE_MARGIN

Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Decisive:
    """Wins against losses only (ties left out): FT's share of decisive pairs, its Wilson CI and the sign test."""

    n: int = 0
    ft_share: float | None = None
    wilson_low: float | None = None
    wilson_high: float | None = None
    sign_test_p: float | None = None


@dataclass(frozen=True)
class WinRate:
    """Headline win rate of FT over Base in percent (mean pair score, ties counting half) with its CI and SE.

    `decisive` covers another quantity, wins / (wins + losses); its numbers are never the headline's.
    `win_rate`, `ci_low`, `ci_high` are None without pairs; `standard_error` is None below 2 pairs.
    """

    n: int
    wins: int
    ties: int
    losses: int
    tie_margin: float
    win_rate: float | None
    discrete_win_rate: float | None
    standard_error: float | None
    ci_low: float | None
    ci_high: float | None
    decisive: Decisive = field(default_factory=Decisive)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def histogram(values: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts: the form SQL aggregation returns pair scores in."""
    distinct, counts = np.unique(np.asarray(values, dtype=float), return_counts=True)
    return distinct, counts.astype(np.int64)


def wilson_interval(mean: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a mean of n values in [0, 1].

    For a proportion it is the usual Wilson interval. For [0, 1]-valued scores it is conservative:
    their variance is at most mean * (1 - mean) (Bhatia & Davis 2000), the variance Wilson assumes.
    It never collapses to a point, not at n = 1 and not at a mean of 0 or 1.
    """
    if n <= 0:
        raise ValueError("the Wilson interval needs at least one observation")
    p = min(max(mean, 0.0), 1.0)
    alpha = 2 * float(stats.norm.sf(z))
    low, high = proportion_confint(p * n, n, alpha=alpha, method="wilson")
    return max(0.0, float(low)), min(1.0, float(high))


def bootstrap_mean_ci(
    values: np.ndarray, counts: np.ndarray, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling pairs from their histogram.

    Drawing n pairs with replacement is a multinomial draw over the distinct values, so
    500,000 pairs cost no more than 5 distinct scores. Seeded, so reports are reproducible.
    Used for unbounded quantities (per-dimension score differences), not for the headline.
    """
    n = int(counts.sum())
    if n == 0:
        return (float("nan"), float("nan"))
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_resamples)
    means = draws @ values / n
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return (float(low), float(high))


def decisive_stats(wins: int, losses: int) -> Decisive:
    """FT's share of decisive pairs with its Wilson 95% CI (percent) and the two-sided sign test (scipy)."""
    n = wins + losses
    if not n:
        return Decisive()
    test = stats.binomtest(wins, n, 0.5)
    ci = test.proportion_ci(confidence_level=0.95, method="wilson")
    return Decisive(n, 100 * wins / n, 100 * float(ci.low), 100 * float(ci.high), float(test.pvalue))


def win_rate_from_histogram(values: np.ndarray, counts: np.ndarray, tie_margin: float = DEFAULT_TIE_MARGIN) -> WinRate:
    """Win rate from the scores of complete pairs given as a (distinct value, count) histogram.

    win / loss: score beyond 0.5 ± tie_margin. standard_error = 100 * sample SD / sqrt(n), as
    AlpacaEval reports it, undefined (None) below 2 pairs.
    """
    values = np.asarray(values, dtype=float)
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return WinRate(0, 0, 0, 0, tie_margin, None, None, None, None, None)
    wins = int(counts[values > 0.5 + tie_margin].sum())
    losses = int(counts[values < 0.5 - tie_margin].sum())
    ties = n - wins - losses
    mean = float(counts @ values / n)
    se = 100 * float(np.sqrt(counts @ (values - mean) ** 2 / (n - 1) / n)) if n > 1 else None
    low, high = wilson_interval(mean, n)
    return WinRate(
        n=n,
        wins=wins,
        ties=ties,
        losses=losses,
        tie_margin=tie_margin,
        win_rate=100 * mean,
        discrete_win_rate=100 * (wins + 0.5 * ties) / n,
        standard_error=se,
        ci_low=100 * low,
        ci_high=100 * high,
        decisive=decisive_stats(wins, losses),
    )


def win_rate(pair_scores: np.ndarray | list[float], tie_margin: float = DEFAULT_TIE_MARGIN) -> WinRate:
    """Win rate over complete pairs' scores (1 = FT better, 0.5 = tie, 0 = Base better, or soft scores)."""
    values, counts = histogram(pair_scores)
    return win_rate_from_histogram(values, counts, tie_margin)
