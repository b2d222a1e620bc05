"""Length-controlled win rate (docs/statistics.md, "Length-controlled win rate"); pure functions, no I/O.

In the spirit of AlpacaEval 2's LC win rate: a logistic model of the pair score on the normalised
length difference ``d = (len_ft - len_base) / (len_ft + len_base)``, and the win rate predicted at
``d = 0`` (both answers equally long). The model is fitted on grouped cells (pairs with the same
length bin and score), which gives the per-pair fit's estimates up to the spread of ``d`` inside a
bin, so a report over 500,000 pairs fits a few hundred rows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import statsmodels.api as sm
from scipy.special import expit
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

FloatArray = npt.NDArray[np.float64]

HALF_BINS = 20
N_BINS = 2 * HALF_BINS + 1  # bins of width 0.05 over d in [-1, 1]; bin HALF_BINS holds d near 0
# Beyond this many cells the fit runs on one row per length bin (same estimate when d is constant in a bin).
MAX_CELLS = 5000


def length_diff(base_len: int, ft_len: int) -> float:
    """Normalised length difference in [-1, 1]: positive when FT's answer is longer; 0 for two empty answers."""
    total = base_len + ft_len
    return (ft_len - base_len) / total if total else 0.0


def length_bin(d: float) -> int:
    """The bin (0 .. N_BINS - 1) of a length difference: floor((d + 1) * HALF_BINS + 0.5), as SQL computes it."""
    return math.floor((d + 1.0) * HALF_BINS + 0.5)


@dataclass(frozen=True)
class LengthControlled:
    """LC win rate in percent with its CI, the logit-scale length coefficient, and the pairs it covers.

    Every number is None when the model has no finite estimate (fewer than 2 pairs, every pair the same
    score, no spread of lengths away from d = 0, or a length difference that separates wins from losses).
    """

    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    length_coef: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def _collapse_by_bin(d: FloatArray, y: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One row per length bin: weighted mean d and mean score (scale-1 likelihood depends on y only by its sum)."""
    bins = np.floor((d + 1.0) * HALF_BINS + 0.5).astype(np.int64)
    weight = np.asarray(np.bincount(bins, w, N_BINS), dtype=np.float64)
    keep = weight > 0
    d_sum = np.asarray(np.bincount(bins, w * d, N_BINS), dtype=np.float64)
    y_sum = np.asarray(np.bincount(bins, w * y, N_BINS), dtype=np.float64)
    return d_sum[keep] / weight[keep], y_sum[keep] / weight[keep], weight[keep]


def length_controlled_win_rate(
    d: npt.ArrayLike, score: npt.ArrayLike, count: npt.ArrayLike, level: float = 0.95
) -> LengthControlled:
    """Fit ``logit E[score] = b0 + b1 * d`` (Binomial GLM, fractional response, scale 1) on weighted cells.

    ``d``, ``score`` and ``count`` are per cell: the cell's mean length difference, its pair score in
    [0, 1] and how many pairs it holds (frequency weights; one pair per cell is the per-pair fit).
    LC win rate = 100 * expit(b0), its CI = 100 * expit of the Wald CI of b0 (at ``level``).
    The Binomial variance mu(1 - mu) is the largest a [0, 1] score with mean mu can have, so for ties and
    soft scores the interval is conservative, and it is exact for hard wins and losses.
    """
    x = np.asarray(d, dtype=np.float64)
    y = np.asarray(score, dtype=np.float64)
    w = np.asarray(count, dtype=np.float64)
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    n = round(float(w.sum()))
    none = LengthControlled(None, None, None, None, n)
    total = float(w @ y)
    if n < 2 or total <= 0.0 or total >= float(w.sum()):
        return none
    if x.size > MAX_CELLS:
        x, y, w = _collapse_by_bin(x, y, w)
    with_length = float(np.ptp(x)) > 1e-12
    if not with_length and abs(float(x[0])) > 1e-12:
        return none  # every pair has the same non-zero length difference: nothing predicts d = 0
    exog = np.column_stack([np.ones_like(x), x]) if with_length else np.ones((x.size, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            fit = sm.GLM(y, exog, family=sm.families.Binomial(), freq_weights=w).fit()
        except (PerfectSeparationWarning, ConvergenceWarning, np.linalg.LinAlgError, ValueError):
            return none
    params = np.asarray(fit.params, dtype=np.float64)
    ci = np.asarray(fit.conf_int(alpha=1.0 - level), dtype=np.float64)
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(ci))):
        return none
    # A near-separated fit leaves a huge, meaningless coefficient: treat it like separation.
    if np.any(np.abs(params) > 30):
        return none
    return LengthControlled(
        win_rate=100.0 * float(expit(params[0])),
        ci_low=100.0 * float(expit(ci[0, 0])),
        ci_high=100.0 * float(expit(ci[0, 1])),
        length_coef=float(params[1]) if with_length else None,
        n=n,
    )
