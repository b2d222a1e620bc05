"""Which pairs people label: all, N at random, or N stratified by the judge's outcome (pure, seeded)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

SampleKind = Literal["all", "random", "stratified"]
UNJUDGED = "unjudged"


@dataclass(frozen=True)
class PairOutcome:
    """What the judge made of one pair: verdict ("ft" | "base" | "tie" | None), inconsistency, flip share."""

    pair_id: int
    verdict: str | None = None
    inconsistent: bool = False
    flip_share: float = 0.0

    @property
    def hard(self) -> bool:
        """Pairs the judge was unsure of: inconsistent across orders, or whose verdicts flipped."""
        return self.inconsistent or self.flip_share > 0


@dataclass(frozen=True)
class Sample:
    """The chosen pair ids (sorted) and a record of how they were drawn."""

    pair_ids: list[int]
    record: dict[str, Any]


def _largest_remainder(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` over strata proportionally to their sizes, capped by each size (Hamilton's method)."""
    available = sum(sizes.values())
    if available == 0 or total <= 0:
        return dict.fromkeys(sizes, 0)
    quotas = {k: total * v / available for k, v in sizes.items()}
    taken = {k: min(sizes[k], math.floor(q)) for k, q in quotas.items()}
    order = sorted(sizes, key=lambda k: (-(quotas[k] - math.floor(quotas[k])), k))
    while sum(taken.values()) < min(total, available):
        progressed = False
        for key in order:
            if sum(taken.values()) >= min(total, available):
                break
            if taken[key] < sizes[key]:
                taken[key] += 1
                progressed = True
        if not progressed:
            break
    return taken


def sample_pairs(
    outcomes: Sequence[PairOutcome], kind: SampleKind, n: int | None, seed: int, hard_share: float = 0.5
) -> Sample:
    """Draw the sample. Stratified: up to `hard_share` of N goes to hard pairs (most flipped first, then
    inconsistent), the rest is split over the judge's verdicts in proportion to their sizes."""
    rng = random.Random(seed)
    ids = sorted(o.pair_id for o in outcomes)
    record: dict[str, Any] = {"kind": kind, "n": n, "seed": seed, "available": len(ids)}
    if kind == "all" or n is None or n >= len(ids):
        record["taken"] = len(ids)
        return Sample(ids, record)
    if kind == "random":
        chosen = sorted(rng.sample(ids, n))
        record["taken"] = len(chosen)
        return Sample(chosen, record)
    ordered = sorted(outcomes, key=lambda o: o.pair_id)
    tiebreak = {o.pair_id: rng.random() for o in ordered}
    hard = sorted(
        (o for o in ordered if o.hard), key=lambda o: (-o.flip_share, not o.inconsistent, tiebreak[o.pair_id])
    )
    n_hard = min(len(hard), math.ceil(n * hard_share))
    chosen_ids = [o.pair_id for o in hard[:n_hard]]
    taken_ids = set(chosen_ids)
    strata: dict[str, list[int]] = {}
    for o in ordered:
        if o.pair_id not in taken_ids:
            strata.setdefault(o.verdict or UNJUDGED, []).append(o.pair_id)
    quota = _largest_remainder({k: len(v) for k, v in strata.items()}, n - n_hard)
    for key in sorted(strata):
        chosen_ids.extend(rng.sample(strata[key], quota[key]))
    record.update(
        hard_share=hard_share,
        hard_available=len(hard),
        hard_taken=n_hard,
        strata={k: {"available": len(v), "taken": quota[k]} for k, v in sorted(strata.items())},
        taken=len(chosen_ids),
    )
    return Sample(sorted(chosen_ids), record)
