"""Slot-A share of decisive verdicts with a CI clustered by pair (docs/statistics.md, "Position bias").

Repeats and the two orders of one pair are not independent verdicts, so the interval treats the pair
as the unit: the share is a ratio estimator sum(a_i) / sum(m_i) over pairs (a_i slot-A picks among m_i
decisive verdicts of pair i), its variance the cluster-robust (linearised) one, and the Wilson interval is
taken at the effective sample size sum(m_i) / deff. Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from statsmodels.stats.proportion import proportion_confint


@dataclass(frozen=True)
class SlotAShare:
    """Slot-A share (0-1) of decisive verdicts, its clustered Wilson CI, SE (None for < 2 pairs) and design effect."""

    rate: float | None
    ci_low: float | None
    ci_high: float | None
    standard_error: float | None
    design_effect: float | None
    n_pairs: int
    n_verdicts: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def slot_a_share(
    a_sum: float,
    m_sum: float,
    a_sq: float,
    m_sq: float,
    am: float,
    n_pairs: int,
    level: float = 0.95,
) -> SlotAShare:
    """Clustered slot-A share from per-pair sums over the pairs with at least one decisive verdict.

    ``a_sum`` = sum a_i, ``m_sum`` = sum m_i, ``a_sq`` = sum a_i**2, ``m_sq`` = sum m_i**2, ``am`` = sum a_i*m_i,
    ``n_pairs`` = number of such pairs. With p = a_sum / m_sum:
    var_cluster = n / (n - 1) * sum (a_i - p m_i)**2 / m_sum**2, var_binomial = p (1 - p) / m_sum,
    deff = max(1, var_cluster / var_binomial) (m_sum / n_pairs, each pair one observation, when p is 0 or 1
    or n < 2), and the Wilson interval of p at n_eff = m_sum / deff.
    """
    n_verdicts = round(m_sum)
    if m_sum <= 0 or n_pairs <= 0:
        return SlotAShare(None, None, None, None, None, n_pairs, n_verdicts)
    p = a_sum / m_sum
    se: float | None = None
    per_pair = m_sum / n_pairs  # deff when each pair counts as one observation
    deff = per_pair
    if n_pairs >= 2:
        residual_sq = max(0.0, a_sq - 2.0 * p * am + p * p * m_sq)
        var_cluster = n_pairs / (n_pairs - 1) * residual_sq / m_sum**2
        se = math.sqrt(var_cluster)
        var_binomial = p * (1.0 - p) / m_sum
        if var_binomial > 0:
            deff = max(1.0, var_cluster / var_binomial)
    n_eff = m_sum / deff
    low, high = proportion_confint(p * n_eff, n_eff, alpha=1.0 - level, method="wilson")
    return SlotAShare(p, float(low), float(high), se, deff, n_pairs, n_verdicts)
