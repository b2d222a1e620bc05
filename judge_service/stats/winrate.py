"""Win rate with its uncertainty, over pair scores in [0, 1] (pure functions, no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class WinRate:
    """Win rate of FT over Base in percent, ties counting half, with CIs and a sign test."""

    n: int
    wins: int
    ties: int
    losses: int
    win_rate: float
    discrete_win_rate: float
    standard_error: float
    ci_low: float
    ci_high: float
    wilson_low: float | None
    wilson_high: float | None
    sign_test_p: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def histogram(values: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts: the form SQL aggregation returns pair scores in."""
    distinct, counts = np.unique(np.asarray(values, dtype=float), return_counts=True)
    return distinct, counts.astype(np.int64)


def bootstrap_mean_ci(
    values: np.ndarray, counts: np.ndarray, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling pairs from their histogram.

    Drawing n pairs with replacement is a multinomial draw over the distinct values, so
    500,000 pairs cost no more than 5 distinct scores. Seeded, so reports are reproducible.
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


def win_rate_from_histogram(values: np.ndarray, counts: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> WinRate:
    """Win rate from pair scores given as (distinct value, count) histogram.

    standard_error = 100 * sample std / sqrt(n), as AlpacaEval reports it.
    """
    values = np.asarray(values, dtype=float)
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        nan = float("nan")
        return WinRate(0, 0, 0, 0, nan, nan, nan, nan, nan, None, None, None)
    wins = int(counts[values > 0.5].sum())
    losses = int(counts[values < 0.5].sum())
    ties = n - wins - losses
    mean = float(counts @ values / n)
    se = float(np.sqrt(counts @ (values - mean) ** 2 / (n - 1) / n)) if n > 1 else 0.0
    low, high = bootstrap_mean_ci(values, counts, n_resamples, seed)
    decisive = wins + losses
    wilson_low = wilson_high = p_value = None
    if decisive:
        test = stats.binomtest(wins, decisive, 0.5)
        ci = test.proportion_ci(confidence_level=0.95, method="wilson")
        wilson_low, wilson_high, p_value = 100 * float(ci.low), 100 * float(ci.high), float(test.pvalue)
    return WinRate(
        n=n,
        wins=wins,
        ties=ties,
        losses=losses,
        win_rate=100 * mean,
        discrete_win_rate=100 * (wins + 0.5 * ties) / n,
        standard_error=100 * se,
        ci_low=100 * low,
        ci_high=100 * high,
        wilson_low=wilson_low,
        wilson_high=wilson_high,
        sign_test_p=p_value,
    )


def win_rate(pair_scores: np.ndarray | list[float], n_resamples: int = 2000, seed: int = 0) -> WinRate:
    """Win rate over pair scores (1 = FT better, 0.5 = tie, 0 = Base better, or soft scores)."""
    values, counts = histogram(pair_scores)
    return win_rate_from_histogram(values, counts, n_resamples, seed)
