"""Pair-level aggregation of judgments: pair score, completeness, outcome, inconsistency.

Definitions: docs/statistics.md, "Pair score and outcome".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Outcome = Literal["win", "tie", "loss"]

# |score - 0.5| must exceed this for a win or a loss (docs/statistics.md, "Tie margin").
DEFAULT_TIE_MARGIN = 0.1


@dataclass(frozen=True)
class JudgmentPoint:
    """A valid judgment in FT's view: s_ft in [0, 1] and per-dimension (base, ft) scores."""

    order: str
    s_ft: float
    scores: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class PairSummary:
    """One pair: score (None unless complete), outcome, inconsistency flag, order means and dimension means.

    `complete` is False when some order that was asked for has no valid judgment; such a pair
    has no score, no outcome and no dimensions, and `missing_orders` names the orders without one.
    """

    score: float | None
    outcome: Outcome | None
    inconsistent: bool
    n_valid: int
    order_scores: dict[str, float]
    dimensions: dict[str, tuple[float, float]]
    complete: bool = False
    missing_orders: tuple[str, ...] = ()


def outcome_of(score: float, tie_margin: float = DEFAULT_TIE_MARGIN) -> Outcome:
    """win / tie / loss for FT: a win or a loss only when the score is more than `tie_margin` from 0.5."""
    if score > 0.5 + tie_margin:
        return "win"
    if score < 0.5 - tie_margin:
        return "loss"
    return "tie"


def tie_margin_of(meta: Mapping[str, object] | None, default: float = DEFAULT_TIE_MARGIN) -> float:
    """An experiment's tie margin (its metadata `tie_margin`, when a number in [0, 0.5)), else `default`."""
    value = (meta or {}).get("tie_margin")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 0.5:
        return float(value)
    return default


def _mean_of_order_means(by_order: Mapping[str, list[float]]) -> float:
    return float(np.mean([np.mean(v) for v in by_order.values()]))


def summarize_pair(
    points: Iterable[JudgmentPoint],
    asked_orders: Iterable[str] | None = None,
    tie_margin: float = DEFAULT_TIE_MARGIN,
) -> PairSummary:
    """Aggregate the valid judgments of one pair: each order averages its repeats, then the orders are averaged.

    `asked_orders` are the orders the pair was judged in (every order with a judgment row,
    failed or pending included); default: the orders that have valid judgments. A pair with an
    asked order that has no valid judgment is incomplete: it gets no score, so one order never
    decides it.

    Inconsistent = the two order means lean to opposite sides of 0.5 (with one repeat per order:
    opposite decisive verdicts). Such a pair scores about 0.5 and is flagged.
    """
    points = list(points)
    by_order: dict[str, list[float]] = {}
    for p in points:
        by_order.setdefault(p.order, []).append(p.s_ft)
    order_scores = {o: float(np.mean(v)) for o, v in by_order.items()}
    asked = set(asked_orders) if asked_orders is not None else set(by_order)
    missing = tuple(sorted(asked - set(by_order)))
    means = list(order_scores.values())
    inconsistent = len(means) > 1 and min(means) < 0.5 < max(means)
    if not points or missing:
        return PairSummary(None, None, inconsistent, len(points), order_scores, {}, False, missing)
    score = _mean_of_order_means(by_order)
    dims: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for p in points:
        for key, pair_scores in p.scores.items():
            dims.setdefault(key, {}).setdefault(p.order, []).append(pair_scores)
    dimensions = {
        k: (
            float(np.mean([np.mean([b for b, _ in v]) for v in per_order.values()])),
            float(np.mean([np.mean([f for _, f in v]) for v in per_order.values()])),
        )
        for k, per_order in dims.items()
    }
    return PairSummary(
        score, outcome_of(score, tie_margin), inconsistent, len(points), order_scores, dimensions, True, ()
    )


def dimension_score(per_order: Mapping[str, list[tuple[float, float]]]) -> float:
    """A pair's win score on one dimension: per judgment 1 / 0.5 / 0 (FT higher / equal / lower), orders averaged."""
    return float(
        np.mean([np.mean([1.0 if f > b else 0.0 if f < b else 0.5 for b, f in v]) for v in per_order.values()])
    )
