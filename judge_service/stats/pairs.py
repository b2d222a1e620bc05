"""Pair-level aggregation of judgments (DESIGN.md definitions): pair score, outcome, inconsistency."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Outcome = Literal["win", "tie", "loss"]


@dataclass(frozen=True)
class JudgmentPoint:
    """A valid judgment in FT's view: s_ft in [0, 1] and per-dimension (base, ft) scores."""

    order: str
    s_ft: float
    scores: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class PairSummary:
    """A pair's score (mean valid s_j), outcome for FT, inconsistency flag and dimension means."""

    score: float | None
    outcome: Outcome | None
    inconsistent: bool
    n_valid: int
    order_scores: dict[str, float]
    dimensions: dict[str, tuple[float, float]]


def outcome_of(score: float) -> Outcome:
    """win / tie / loss for FT by the pair score."""
    if score > 0.5:
        return "win"
    if score < 0.5:
        return "loss"
    return "tie"


def summarize_pair(points: Iterable[JudgmentPoint]) -> PairSummary:
    """Aggregate the valid judgments of one pair over orders and repeats.

    Inconsistent = the two orders lean to opposite sides (one order's mean s > 0.5, the other's < 0.5);
    with one repeat per order that is exactly "opposite decisive verdicts". Such a pair scores about
    0.5, i.e. counts as a tie in the win rate, and is flagged.
    """
    points = list(points)
    if not points:
        return PairSummary(None, None, False, 0, {}, {})
    score = float(np.mean([p.s_ft for p in points]))
    by_order: dict[str, list[float]] = {}
    for p in points:
        by_order.setdefault(p.order, []).append(p.s_ft)
    order_scores = {o: float(np.mean(v)) for o, v in by_order.items()}
    means = list(order_scores.values())
    inconsistent = len(means) > 1 and min(means) < 0.5 < max(means)
    dims: dict[str, list[tuple[float, float]]] = {}
    for p in points:
        for key, pair_scores in p.scores.items():
            dims.setdefault(key, []).append(pair_scores)
    dimensions = {k: (float(np.mean([b for b, _ in v])), float(np.mean([f for _, f in v]))) for k, v in dims.items()}
    return PairSummary(score, outcome_of(score), inconsistent, len(points), order_scores, dimensions)
