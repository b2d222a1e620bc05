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


def bootstrap_ci(
    values: np.ndarray, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling pairs; seeded so reports are reproducible."""
    if values.size == 0:
        return (float("nan"), float("nan"))
    if values.size == 1 or np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    result = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def win_rate(pair_scores: np.ndarray | list[float], n_resamples: int = 2000, seed: int = 0) -> WinRate:
    """Win rate over pair scores (1 = FT better, 0.5 = tie, 0 = Base better, or soft scores).

    standard_error = 100 * sample std / sqrt(n), as AlpacaEval reports it.
    """
    scores = np.asarray(pair_scores, dtype=float)
    n = int(scores.size)
    wins = int(np.sum(scores > 0.5))
    losses = int(np.sum(scores < 0.5))
    ties = n - wins - losses
    if n == 0:
        nan = float("nan")
        return WinRate(0, 0, 0, 0, nan, nan, nan, nan, nan, None, None, None)
    mean = float(np.mean(scores))
    se = float(stats.sem(scores)) if n > 1 else 0.0
    low, high = bootstrap_ci(scores, n_resamples, seed)
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
